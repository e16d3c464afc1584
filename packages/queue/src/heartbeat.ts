import type { Redis } from 'ioredis';
import { DEFAULT_PREFIX, redisKeys } from './keys.js';

export interface WorkerHeartbeat {
  workerId: string;
  hostname: string;
  pid: number;
  /** 'cpu' or 'cuda:N' (the device sessions really run on). */
  device: string;
  currentRunId: string | null;
  currentStageId: string | null;
  /** ISO time the worker started. */
  startedAt: string;
  /** ISO time of this heartbeat. */
  lastHeartbeat: string;
}

/** Workers send one every HEARTBEAT_INTERVAL_MS; an entry expires after HEARTBEAT_TTL_MS without one. */
export const HEARTBEAT_INTERVAL_MS = 5000;
export const HEARTBEAT_TTL_MS = 3 * HEARTBEAT_INTERVAL_MS;

export async function writeHeartbeat(
  redis: Redis,
  info: WorkerHeartbeat,
  opts: { ttlMs?: number; prefix?: string } = {},
): Promise<void> {
  const k = redisKeys(opts.prefix);
  const key = k.worker(info.workerId);
  await redis
    .multi()
    .hset(key, 'info', JSON.stringify(info))
    .pexpire(key, opts.ttlMs ?? HEARTBEAT_TTL_MS)
    .sadd(k.workers, info.workerId)
    .exec();
}

/** Graceful exit: the worker disappears from listWorkers at once. */
export async function removeHeartbeat(
  redis: Redis,
  workerId: string,
  prefix = DEFAULT_PREFIX,
): Promise<void> {
  const k = redisKeys(prefix);
  await redis.multi().del(k.worker(workerId)).srem(k.workers, workerId).exec();
}

/** Live workers (heartbeat within its TTL), sorted by id; expired ids are dropped from the set. */
export async function listWorkers(redis: Redis, prefix = DEFAULT_PREFIX): Promise<WorkerHeartbeat[]> {
  const k = redisKeys(prefix);
  const ids = (await redis.smembers(k.workers)).sort();
  const out: WorkerHeartbeat[] = [];
  for (const id of ids) {
    const info = await redis.hget(k.worker(id), 'info');
    if (info === null) await redis.srem(k.workers, id);
    else out.push(JSON.parse(info) as WorkerHeartbeat);
  }
  return out;
}
