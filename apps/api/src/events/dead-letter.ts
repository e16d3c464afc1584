// Events the API could not store: kept in a capped Redis list (newest first) instead of blocking the
// stream, so one bad event never delays other teams' events; admins read them at /v1/admin/dead-events.
import { EVENTS_MAXLEN, redisKeys, type StageEvent } from '@rlhf/queue';
import type { Redis } from 'ioredis';

/** Dead letters kept (oldest dropped beyond this). */
export const DEAD_LETTERS_KEPT = 10_000;

export interface DeadLetter {
  /** Redis stream id of the event. */
  id: string;
  /** Why it could not be stored (the last error, on one line). */
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

// Removes each letter from the list and, only if this call removed it, adds its event to the stream as a
// worker would: a letter is sent again at most once however many replays race.
const REPLAY = `
local out = {}
for i = 2, #ARGV, 3 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
    out[#out + 1] = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[i + 1], 'event', ARGV[i + 2])
  else
    out[#out + 1] = false
  end
end
return out`;

/**
 * Sends dead letters back to the events stream (oldest first, so a stage's events keep their order), once
 * their cause is fixed; the consumer stores them (idempotently) or dead-letters them again. `ids` picks
 * letters by stream id (default all); ids not (or no longer) in the list are returned as missing.
 */
export async function replayDeadLetters(
  redis: Redis,
  prefix: string,
  ids?: readonly string[],
): Promise<{ replayed: { id: string; streamId: string }[]; missing: string[] }> {
  const names = redisKeys(prefix);
  const texts = (await redis.lrange(names.deadEvents, 0, -1)).reverse();
  const wanted = ids ? new Set(ids) : null;
  const chosen = texts
    .map((text) => ({ text, letter: JSON.parse(text) as DeadLetter }))
    .filter(({ letter }) => wanted === null || wanted.has(letter.id));
  const replayed: { id: string; streamId: string }[] = [];
  const found = new Set<string>();
  for (let i = 0; i < chosen.length; i += 300) {
    const batch = chosen.slice(i, i + 300);
    const args = batch.flatMap(({ text, letter }) => [text, letter.event.type, JSON.stringify(letter.event)]);
    const streamIds = (await redis.eval(
      REPLAY,
      2,
      names.deadEvents,
      names.events,
      EVENTS_MAXLEN,
      ...args,
    )) as (string | null)[];
    batch.forEach(({ letter }, j) => {
      const streamId = streamIds[j];
      if (typeof streamId === 'string') {
        replayed.push({ id: letter.id, streamId });
        found.add(letter.id);
      }
    });
  }
  return { replayed, missing: (ids ?? []).filter((id) => !found.has(id)) };
}
