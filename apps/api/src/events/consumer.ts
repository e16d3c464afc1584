// Reads the workers' events stream with a consumer group, persists each event, then acks it: an
// event read by a process that died before its ack is claimed again (readEvents' XAUTOCLAIM), and
// persisting is idempotent, so every event lands exactly once. After persisting it is fanned out to
// SSE streams, and a finished stage triggers admission.
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
import type { EventHub } from './hub.js';
import { type Applied, applyEvent } from './persist.js';

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
  /** Pause after a failed read or write (default 1 s). */
  retryDelayMs?: number;
  hub?: EventHub;
  logger: Logger;
  onPersisted?: (event: StreamEvent['event']) => void;
  /** Called after a batch, once per team one of whose stages finished in it. */
  onStageFinished?: (teamId: string) => Promise<void>;
}

export interface EventConsumer {
  start(): Promise<void>;
  /** Finishes the event in hand, acks it and returns; unread events wait in Redis. */
  stop(): Promise<void>;
}

export const EVENTS_GROUP = 'api';

// A stream id is `<ms>-<seq>`: the time Redis received the event.
const timeOf = (id: string) => new Date(Number(id.split('-')[0]));

/** An event that fails this many times while the database answers is logged and dropped (a bad event). */
const MAX_TRIES = 3;

export function createEventConsumer(options: EventConsumerOptions): EventConsumer {
  const { redis, prefix, logger } = options;
  const group = options.group ?? EVENTS_GROUP;
  const failures = new Map<string, number>();
  let running: Promise<void> | undefined;
  let stopping = false;
  let reading = false;
  let retryNow = false;

  const databaseAnswers = () =>
    options.prisma.$queryRaw`SELECT 1`.then(
      () => true,
      () => false,
    );

  // Applies one event (null: dropped); throws when it is to be tried again. While the database is down
  // nothing is dropped; an event that keeps failing while the database answers is logged and skipped.
  async function apply(id: string, event: StageEvent): Promise<Applied | null> {
    try {
      const applied = await applyEvent(options, event, timeOf(id));
      failures.delete(id);
      return applied;
    } catch (error) {
      if (!(await databaseAnswers())) throw error;
      const tries = (failures.get(id) ?? 0) + 1;
      failures.set(id, tries);
      if (tries < MAX_TRIES) throw error;
      failures.delete(id);
      logger.error({ err: error, event }, `event consumer: dropped event ${id} after ${tries} failures`);
      return null;
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
      await options.hub?.publish({ runId: event.runId, type: event.type, id, data: event });
      if (stopping) break; // the rest of the batch stays pending and is claimed again later
    }
    return finished;
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      try {
        reading = true;
        const batch = await readEvents(redis, {
          group,
          consumer: options.consumer,
          prefix,
          blockMs: options.blockMs ?? 5000,
          // After a failure the unacked events are taken again at once, in order.
          claimIdleMs: retryNow ? 0 : (options.claimIdleMs ?? 30_000),
        });
        reading = false;
        retryNow = false;
        if (stopping) break; // unacked: delivered again after claimIdleMs
        for (const teamId of await handle(batch)) await options.onStageFinished?.(teamId);
      } catch (error) {
        reading = false;
        if (stopping) break;
        retryNow = true;
        logger.error({ err: error }, 'event consumer: will retry');
        await new Promise((resolve) => setTimeout(resolve, options.retryDelayMs ?? 1000));
      }
    }
  }

  return {
    async start() {
      if (running) return;
      await createEventGroup(redis, group, prefix);
      running = loop();
    },
    async stop() {
      stopping = true;
      if (reading) redis.disconnect(); // interrupts the blocking read
      await running;
      redis.disconnect();
    },
  };
}
