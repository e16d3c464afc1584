import type { Redis } from 'ioredis';
import { DEFAULT_PREFIX, redisKeys } from './keys.js';

// Only the process holding a job can abort it (BullMQ's AbortSignal is per process), so a cancel request is
// broadcast to every worker; a flag also catches a job taken after the broadcast.

/** How long the cancelled flag stays (a worker starting a job of the run later still sees it). */
const CANCELLED_TTL_S = 7 * 24 * 3600;

/** Marks the run cancelled and tells every worker; the holder of one of its jobs stops it within seconds. */
export async function requestCancel(redis: Redis, runId: string, prefix = DEFAULT_PREFIX): Promise<void> {
  const k = redisKeys(prefix);
  await redis.set(k.cancelled(runId), '1', 'EX', CANCELLED_TTL_S);
  await redis.publish(k.cancel, runId);
}

export async function isCancelRequested(
  redis: Redis,
  runId: string,
  prefix = DEFAULT_PREFIX,
): Promise<boolean> {
  return (await redis.exists(redisKeys(prefix).cancelled(runId))) === 1;
}

/**
 * Calls onCancel(runId) for every cancel request. `subscriber` becomes a subscriber-mode connection: give it a
 * dedicated one. Resolves once subscribed; the returned function unsubscribes.
 */
export async function subscribeCancel(
  subscriber: Redis,
  onCancel: (runId: string) => void,
  prefix = DEFAULT_PREFIX,
): Promise<() => Promise<void>> {
  const channel = redisKeys(prefix).cancel;
  const listener = (from: string, message: string) => {
    if (from === channel) onCancel(message);
  };
  subscriber.on('message', listener);
  await subscriber.subscribe(channel);
  return async () => {
    subscriber.off('message', listener);
    await subscriber.unsubscribe(channel);
  };
}
