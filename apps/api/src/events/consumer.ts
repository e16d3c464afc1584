// Reads the workers' events stream with a consumer group, persists each event, then acks it: an
// event read by a process that died before its ack is claimed again (readEvents' XAUTOCLAIM), and
// persisting is idempotent, so every event lands exactly once. After persisting it is fanned out to
// SSE streams, and a finished stage triggers admission. An event that cannot be stored is retried a
// few times at once, then dead-lettered (never a pause for the whole stream); a stream or group wiped
// by a Redis restart is recreated.
import type { ArtifactStore } from '@rlhf/artifacts';
import type { Logger } from '@rlhf/config';
import type { PrismaClient } from '@rlhf/db';
import {
  ackEvents,
  createEventGroup,
  readEvents,
  requestCancel,
  type StageEvent,
  type StreamEvent,
} from '@rlhf/queue';
import type { Redis } from 'ioredis';
import { deadLetter } from './dead-letter.js';
import { recordRunEvent } from './history.js';
import type { EventHub } from './hub.js';
import { type Applied, applyEvent, PoisonEventError, redisStartLog } from './persist.js';

export interface EventConsumerOptions {
  prisma: PrismaClient;
  artifacts: ArtifactStore;
  /** A dedicated connection (blocking reads); the consumer closes it. */
  redis: Redis;
  /** For cancel requests (not the blocking connection). */
  commands: Redis;
  prefix: string;
  group?: string;
  consumer: string;
  claimIdleMs?: number;
  blockMs?: number;
  /** Pause after a failed read, or while the database is down (default 1 s). */
  retryDelayMs?: number;
  hub?: EventHub;
  logger: Logger;
  onPersisted?: (event: StreamEvent['event']) => void;
  /** Called after a batch, once per team one of whose stages finished in it. */
  onStageFinished?: (teamId: string) => Promise<void>;
}

export interface EventConsumer {
  start(): Promise<void>;
  /** 'ok' while the consumer reads the stream, else why not (readiness). */
  health(): string;
  /** Finishes the event in hand, acks it and returns; unread events wait in Redis. */
  stop(): Promise<void>;
}

export const EVENTS_GROUP = 'api';

// A stream id is `<ms>-<seq>`: the time Redis received the event.
const timeOf = (id: string) => new Date(Number(id.split('-')[0]));

/** An event that fails this many times while the database answers is dead-lettered (a bad event). */
const MAX_TRIES = 3;
/** Pauses between those tries: short, as every other team's events wait behind them. */
const TRY_DELAYS_MS = [10, 50];
/** A read that has not come back for blockMs + this is a consumer that cannot read. */
const STALE_READ_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// One line, at most 500 characters: Prisma's messages start with a blank line and name the cause last.
const oneLine = (error: unknown) =>
  (error instanceof Error ? error.message : String(error))
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .join(' ')
    .slice(0, 500);

/** Redis' answers when the stream or the consumer group does not exist or was deleted under a blocked read. */
export const isNoGroupError = (error: unknown): boolean =>
  error instanceof Error && /^(NOGROUP|UNBLOCKED)/.test(error.message);

export function createEventConsumer(options: EventConsumerOptions): EventConsumer {
  const { redis, prefix, logger } = options;
  const group = options.group ?? EVENTS_GROUP;
  let running: Promise<void> | undefined;
  let stopping = false;
  let reading = false;
  let retryNow = false;

  const databaseAnswers = () =>
    options.prisma.$queryRaw`SELECT 1`.then(
      () => true,
      () => false,
    );

  const stores = { ...options, starts: redisStartLog(options.commands, prefix) };

  // Applies one event and stores it in its run's history (null: dead-lettered; seq: its place in the history,
  // null when its run is gone); throws only while the database is down, so the event is read again once it
  // is back. Any other failure is tried MAX_TRIES times, then dead-lettered.
  async function apply(id: string, event: StageEvent): Promise<(Applied & { seq: string | null }) | null> {
    for (let tries = 1; ; tries++) {
      try {
        const applied = await applyEvent(stores, event, timeOf(id), id);
        const message = { runId: event.runId, type: event.type, data: event };
        return { ...applied, seq: await recordRunEvent(options.prisma, message, id) };
      } catch (error) {
        if (!(await databaseAnswers())) throw error;
        if (!(error instanceof PoisonEventError) && tries < MAX_TRIES) {
          await sleep(TRY_DELAYS_MS[tries - 1] ?? 50);
          continue;
        }
        await deadLetter(options.commands, prefix, {
          id,
          error: oneLine(error),
          at: new Date().toISOString(),
          event,
        });
        logger.error({ err: error, event }, `event consumer: event ${id} dead-lettered after ${tries} tries`);
        return null;
      }
    }
  }

  async function handle(batch: StreamEvent[]): Promise<Set<string>> {
    const finished = new Set<string>();
    for (const { id, event } of batch) {
      const applied = await apply(id, event);
      await ackEvents(redis, group, [id], prefix);
      if (!applied) continue;
      options.onPersisted?.(event);
      if (applied.cancelAgain) await requestCancel(options.commands, event.runId, prefix);
      if (applied.finishedTeamId) finished.add(applied.finishedTeamId);
      if (applied.seq !== null)
        await options.hub?.publish({ runId: event.runId, type: event.type, id: applied.seq, data: event });
      if (stopping) break; // the rest of the batch stays pending and is claimed again later
    }
    return finished;
  }

  const blockMs = options.blockMs ?? 5000;
  let readError: string | null = 'not started';
  let lastReadAt = 0;

  async function loop(): Promise<void> {
    while (!stopping) {
      try {
        reading = true;
        const batch = await readEvents(redis, {
          group,
          consumer: options.consumer,
          prefix,
          blockMs,
          // After a failure the unacked events are taken again at once, in order.
          claimIdleMs: retryNow ? 0 : (options.claimIdleMs ?? 30_000),
        });
        reading = false;
        retryNow = false;
        readError = null;
        lastReadAt = Date.now();
        if (stopping) break; // unacked: delivered again after claimIdleMs
        for (const teamId of await handle(batch)) await options.onStageFinished?.(teamId);
      } catch (error) {
        const readFailed = reading; // else storing failed (the database is down): reads still work
        reading = false;
        if (stopping) break;
        retryNow = true;
        if (readFailed) readError = oneLine(error);
        if (isNoGroupError(error)) {
          // The stream or the group is gone (a Redis restart without persistence): recreate and go on.
          logger.warn('event consumer: events stream or group missing; recreating the group');
          try {
            await createEventGroup(redis, group, prefix);
            continue;
          } catch (again) {
            readError = oneLine(again);
          }
        }
        logger.error({ err: error }, 'event consumer: will retry');
        await sleep(options.retryDelayMs ?? 1000);
      }
    }
  }

  return {
    async start() {
      if (running) return;
      await createEventGroup(redis, group, prefix);
      readError = null;
      lastReadAt = Date.now();
      running = loop();
    },
    health() {
      if (!stopping && redis.status !== 'ready') return `Redis connection ${redis.status}`;
      if (readError !== null) return readError;
      const quiet = Date.now() - lastReadAt;
      if (quiet > blockMs + STALE_READ_MS) return `no read for ${Math.round(quiet / 1000)} s`;
      return 'ok';
    },
    async stop() {
      stopping = true;
      if (reading) redis.disconnect(); // interrupts the blocking read
      await running;
      redis.disconnect();
    },
  };
}
