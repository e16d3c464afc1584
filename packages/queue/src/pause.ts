// Pausing a run (OpenAI's fine-tuning job pause): a flag while it is paused, broadcast to every worker like a
// cancel. The worker holding one of its jobs checkpoints and parks the job: delayed far in the future, so it
// keeps its place in the run's flow (later stages still wait for it) and no worker takes it. Resume clears the
// flag and promotes the parked jobs; the stage starts again from its checkpoint.
import type { Redis } from 'ioredis';
import type { StageQueue } from './flows.js';
import { DEFAULT_PREFIX, redisKeys } from './keys.js';

/** How long the paused flag stays: a run paused longer than this resumes when a worker next looks (never, as its
 *  job is parked: resume it with the API). The flag only has to outlive the pause's broadcast. */
const PAUSED_TTL_S = 30 * 24 * 3600;

/** How far ahead a parked job is delayed: never reached; resume promotes it. */
export const PARKED_DELAY_MS = 10 * 365 * 24 * 3600 * 1000;

/** Marks the run paused and tells every worker; the holder of one of its jobs parks it at its next step. */
export async function requestPause(redis: Redis, runId: string, prefix = DEFAULT_PREFIX): Promise<void> {
  const k = redisKeys(prefix);
  await redis.set(k.paused(runId), '1', 'EX', PAUSED_TTL_S);
  await redis.publish(k.pause, runId);
}

export async function isPauseRequested(
  redis: Redis,
  runId: string,
  prefix = DEFAULT_PREFIX,
): Promise<boolean> {
  return (await redis.exists(redisKeys(prefix).paused(runId))) === 1;
}

/**
 * Resumes a paused run: clears the flag first, then promotes its parked jobs. A worker parking a job meanwhile
 * checks the flag after parking and promotes the job itself (resumeIfUnpaused), so no job stays parked.
 * Returns the stage ids promoted here.
 */
export async function resumeRunJobs(
  redis: Redis,
  queue: StageQueue,
  runId: string,
  stageIds: string[],
  prefix = DEFAULT_PREFIX,
): Promise<string[]> {
  await redis.del(redisKeys(prefix).paused(runId));
  const promoted: string[] = [];
  for (const id of stageIds) {
    const job = await queue.getJob(id);
    if (!job || (await job.getState()) !== 'delayed') continue;
    try {
      await job.promote();
      promoted.push(id);
    } catch {
      // promoted by the worker that parked it (it saw the flag cleared)
    }
  }
  return promoted;
}

/** Calls onPause(runId) for every pause request (on a subscriber-mode connection; see subscribeCancel). */
export async function subscribePause(
  subscriber: Redis,
  onPause: (runId: string) => void,
  prefix = DEFAULT_PREFIX,
): Promise<() => Promise<void>> {
  const channel = redisKeys(prefix).pause;
  const listener = (from: string, message: string) => {
    if (from === channel) onPause(message);
  };
  subscriber.on('message', listener);
  await subscriber.subscribe(channel);
  return async () => {
    subscriber.off('message', listener);
    await subscriber.unsubscribe(channel);
  };
}
