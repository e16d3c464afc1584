// BullMQ renews a job's lock from a timer on the main thread, so synchronous work longer than the lock (building a
// big model's graphs) let the lock lapse and other workers' stall checks take the live job (twice: failed). The
// keeper renews the held jobs' locks from a thread of its own, while the main thread's beat is at most maxBlockMs
// old: a blocked worker keeps its job, a dead process (the thread dies with it) or a hung one still loses it.
import { Worker as Thread } from 'node:worker_threads';

export interface LockKeeperOptions {
  redisUrl: string;
  /** The queue's stalled set (BullMQ's `worker.keys.stalled`). */
  stalledKey: string;
  /** The worker's lockDuration: each renewal sets the lock to this long. */
  lockDurationMs: number;
  /** Longest main-thread block the locks outlive (default 10 minutes). */
  maxBlockMs?: number;
}

export interface LockKeeper {
  /** Keep renewing this job's lock (BullMQ's lock key `<job key>:lock` and the worker's token). */
  hold(jobId: string, lockKey: string, token: string): void;
  release(jobId: string): void;
  close(): Promise<void>;
}

export const DEFAULT_MAX_BLOCK_MS = 10 * 60_000;

export function startLockKeeper(options: LockKeeperOptions): LockKeeper {
  // Renewing four times per lock, as BullMQ does: a renewal or two may fail without the lock lapsing.
  const intervalMs = Math.max(50, Math.floor(options.lockDurationMs / 4));
  const beat = new SharedArrayBuffer(8);
  const beats = new BigInt64Array(beat);
  const stamp = () => Atomics.store(beats, 0, BigInt(Date.now()));
  stamp();
  const beating = setInterval(stamp, intervalMs);
  beating.unref();
  const thread = new Thread(new URL('./lock-keeper-thread.mjs', import.meta.url), {
    workerData: {
      redisUrl: options.redisUrl,
      stalledKey: options.stalledKey,
      lockDurationMs: options.lockDurationMs,
      intervalMs,
      maxBlockMs: options.maxBlockMs ?? DEFAULT_MAX_BLOCK_MS,
      beat,
    },
  });
  thread.unref();
  const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
  return {
    hold(jobId, lockKey, token) {
      stamp();
      thread.postMessage({ kind: 'hold', jobId, lockKey, token });
    },
    release(jobId) {
      thread.postMessage({ kind: 'release', jobId });
    },
    async close() {
      clearInterval(beating);
      thread.postMessage({ kind: 'close' });
      await exited;
    },
  };
}
