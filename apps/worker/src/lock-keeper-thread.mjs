// The lock keeper's thread (lock-keeper.ts): renews the BullMQ locks of the jobs the main thread holds, so a main
// thread blocked by synchronous work (a big graph build) keeps its job. It stops renewing once the main thread's
// beat is older than maxBlockMs, so a hung process still loses its jobs. Plain .mjs (ioredis and message passing
// only) so it starts unchanged under node, tsx and vitest, as the runtime's ORT thread does.
//
// Messages (main -> thread): { kind: 'hold', lockKey, jobId, token } | { kind: 'release', jobId } | { kind: 'close' }
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';

const { redisUrl, stalledKey, lockDurationMs, intervalMs, maxBlockMs, beat } = workerData;
const mainBeat = new BigInt64Array(beat);
const held = new Map(); // jobId -> { lockKey, token }
// BullMQ's extendLock script: the lock is extended only while it is still this token's.
const EXTEND = `if redis.call("GET", KEYS[1]) == ARGV[1] then
  if redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2]) then
    redis.call("SREM", KEYS[2], ARGV[3])
    return 1
  end
end
return 0`;
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false });
redis.on('error', () => {}); // a Redis outage: the renewals fail until it is back; BullMQ reports it on the main side

async function renew() {
  const blockedMs = Date.now() - Number(Atomics.load(mainBeat, 0));
  if (blockedMs > maxBlockMs) return;
  for (const [jobId, { lockKey, token }] of held)
    await redis.eval(EXTEND, 2, lockKey, stalledKey, token, lockDurationMs, jobId).catch(() => {});
}

const timer = setInterval(() => void renew(), intervalMs);
parentPort.on('message', (message) => {
  if (message.kind === 'hold') {
    held.set(message.jobId, { lockKey: message.lockKey, token: message.token });
    void renew();
  } else if (message.kind === 'release') held.delete(message.jobId);
  else if (message.kind === 'close') {
    clearInterval(timer);
    held.clear();
    redis.disconnect();
    parentPort.close();
  }
});
