// Reads the workers' events stream with a consumer group, persists each event, then acks it: an
// event read by a process that died before its ack is claimed again (readEvents' XAUTOCLAIM), and
// persisting is idempotent, so every event lands exactly once. After persisting it is fanned out to
// SSE streams, and a finished stage triggers admission.
import type { Logger } from '@rlhf/config';
import type { PrismaClient } from '@rlhf/db';
import { ackEvents, createEventGroup, readEvents, requestCancel, type StreamEvent } from '@rlhf/queue';
import type { Redis } from 'ioredis';
import type { EventHub } from './hub.js';
import { applyEvent } from './persist.js';

export interface EventConsumerOptions {
  prisma: PrismaClient;
  /** A dedicated connection (blocking reads); the consumer closes it. */
  redis: Redis;
  /** For cancel requests (not the blocking connection). */
  commands: Redis;
  prefix: string;
  group?: string;
  consumer: string;
  claimIdleMs?: number;
  blockMs?: number;
  hub?: EventHub;
  logger: Logger;
  onPersisted?: (event: StreamEvent['event']) => void;
  /** Called after a batch in which a stage finished. */
  onStageFinished?: () => Promise<void>;
}

export interface EventConsumer {
  start(): Promise<void>;
  /** Finishes the event in hand, acks it and returns; unread events wait in Redis. */
  stop(): Promise<void>;
}

export const EVENTS_GROUP = 'api';

// A stream id is `<ms>-<seq>`: the time Redis received the event.
const timeOf = (id: string) => new Date(Number(id.split('-')[0]));

export function createEventConsumer(options: EventConsumerOptions): EventConsumer {
  const { prisma, redis, prefix, logger } = options;
  const group = options.group ?? EVENTS_GROUP;
  let running: Promise<void> | undefined;
  let stopping = false;
  let reading = false;

  async function handle(batch: StreamEvent[]): Promise<boolean> {
    let stageFinished = false;
    for (const { id, event } of batch) {
      const applied = await applyEvent(prisma, event, timeOf(id));
      await ackEvents(redis, group, [id], prefix);
      options.onPersisted?.(event);
      if (applied.cancelAgain) await requestCancel(options.commands, event.runId, prefix);
      stageFinished ||= applied.stageFinished;
      await options.hub?.publish({ runId: event.runId, type: event.type, id, data: event });
      if (stopping) break; // the rest of the batch stays pending and is claimed again later
    }
    return stageFinished;
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
          claimIdleMs: options.claimIdleMs ?? 30_000,
        });
        reading = false;
        if (stopping) break; // unacked: delivered again after claimIdleMs
        if ((await handle(batch)) && options.onStageFinished) await options.onStageFinished();
      } catch (error) {
        reading = false;
        if (stopping) break;
        logger.error({ err: error }, 'event consumer: will retry in 1 s');
        await new Promise((resolve) => setTimeout(resolve, 1000));
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
