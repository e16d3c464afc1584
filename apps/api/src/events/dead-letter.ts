// Events the API could not store: kept in a capped Redis list (newest first) instead of blocking the
// stream, so one bad event never delays other teams' events; admins read them at /v1/admin/dead-events.
import { redisKeys, type StageEvent } from '@rlhf/queue';
import type { Redis } from 'ioredis';

/** Dead letters kept (oldest dropped beyond this). */
export const DEAD_LETTERS_KEPT = 10_000;

export interface DeadLetter {
  /** Redis stream id of the event. */
  id: string;
  /** Why it could not be stored (the last error's first line). */
  error: string;
  /** ISO time it was given up on. */
  at: string;
  event: StageEvent;
}

export async function deadLetter(redis: Redis, prefix: string, letter: DeadLetter): Promise<void> {
  const key = redisKeys(prefix).deadEvents;
  await redis
    .multi()
    .lpush(key, JSON.stringify(letter))
    .ltrim(key, 0, DEAD_LETTERS_KEPT - 1)
    .exec();
}

/** Newest first; `total` counts every dead letter kept. */
export async function listDeadLetters(
  redis: Redis,
  prefix: string,
  limit: number,
): Promise<{ items: DeadLetter[]; total: number }> {
  const key = redisKeys(prefix).deadEvents;
  const [items, total] = await Promise.all([redis.lrange(key, 0, limit - 1), redis.llen(key)]);
  return { items: items.map((text) => JSON.parse(text) as DeadLetter), total };
}
