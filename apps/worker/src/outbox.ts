// The events a worker sent for its current and previous stage, sent again when Redis comes back without its
// data (a restart without persistence wipes the events stream, and with it the events the API had not read
// yet). The API stores every event idempotently, so sending one twice costs nothing; losing one loses a
// metric for good. A marker key tells a reconnect to the same data from one to an empty Redis.
import { randomUUID } from 'node:crypto';
import type { Logger } from '@rlhf/config';
import { publishEvent, type StageEvent } from '@rlhf/queue';
import type { Redis } from 'ioredis';

/** Events kept per stage at most (the newest). */
const KEPT = 50_000;

export function createOutbox(redis: Redis, prefix: string, log: Logger) {
  const marker = `${prefix}:instance`;
  let instance: string | null = null;
  let previous: StageEvent[] = [];
  let current: StageEvent[] = [];

  // The marker's value, set first if this Redis has none (any process may set it; all compare).
  const mark = async () => {
    await redis.set(marker, randomUUID(), 'NX');
    return redis.get(marker);
  };
  const checkAfterReconnect = async () => {
    const now = await redis.get(marker);
    if (instance !== null && now === instance) return;
    instance = await mark();
    const again = [...previous, ...current];
    if (again.length === 0) return;
    log.warn(
      { events: again.length },
      'Redis came back without its data: sending the recent stage events again',
    );
    for (const event of again) await publishEvent(redis, event, prefix);
  };

  return {
    async start(): Promise<void> {
      instance = await mark();
      redis.on('ready', () => {
        checkAfterReconnect().catch((err: unknown) => log.warn({ err }, 'could not resend events'));
      });
    },
    async publish(event: StageEvent): Promise<string> {
      const id = await publishEvent(redis, event, prefix);
      current.push(event);
      if (current.length > KEPT) current.splice(0, current.length - KEPT);
      return id;
    },
    /** A new stage starts: the one before it is kept too (its last events may not have been read). */
    newStage(): void {
      previous = current;
      current = [];
    },
  };
}
