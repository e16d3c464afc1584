import type { Redis } from 'ioredis';
// Every name in Redis and in the artifact store, in one place. `prefix` namespaces a deployment (or a test):
// it is BullMQ's key prefix and the prefix of our own keys.

/** BullMQ queue holding every stage job (one job per stage, jobId = stage id). */
export const STAGE_QUEUE = 'rlhf-stages';
/** Default namespace of every Redis key below and of the BullMQ queue. */
export const DEFAULT_PREFIX = 'rlhf';

/** Our own Redis keys under a namespace. */
export function redisKeys(prefix: string = DEFAULT_PREFIX) {
  return {
    /** Stream of StageEvents for all runs (consumer group in the API). */
    events: `${prefix}:events`,
    /** List of events the API could not store (newest first, capped): the dead letters admins inspect. */
    deadEvents: `${prefix}:events:dead`,
    /** Pub/sub channel: message = runId to cancel. */
    cancel: `${prefix}:cancel`,
    /** Flag set when a run is cancelled, so a worker that takes one of its jobs later still sees it. */
    cancelled: (runId: string) => `${prefix}:cancelled:${runId}`,
    /** Pub/sub channel: message = runId to pause (checkpoint, then park its running stage). */
    pause: `${prefix}:pause`,
    /** Flag set while a run is paused: a worker taking one of its jobs parks it at once. */
    paused: (runId: string) => `${prefix}:paused:${runId}`,
    /** Set of worker ids that sent a heartbeat. */
    workers: `${prefix}:workers`,
    /** Hash per worker (expires unless refreshed). */
    worker: (workerId: string) => `${prefix}:worker:${workerId}`,
  };
}

export const EVENTS_STREAM = redisKeys().events;
export const CANCEL_CHANNEL = redisKeys().cancel;

/** Artifact store keys (one convention for api, worker and trainers). Ids are safe key segments. */
/** Beside a finished model: every setting the trainer resolved (defaults, caps, sizes), as JSON. */
export const HYPERPARAMETERS_FILE = 'hyperparameters.json';

export const keys = {
  dataset: (teamId: string, sha256: string) => `datasets/${teamId}/${sha256}.jsonl`,
  runDir: (runId: string) => `runs/${runId}`,
  stageDir: (runId: string, stageId: string) => `runs/${runId}/${stageId}`,
  /** The stage's finished model: StageJobResult.modelKey points here. */
  finalDir: (runId: string, stageId: string) => `runs/${runId}/${stageId}/final`,
  hyperparameters: (modelKey: string) => `${modelKey}/${HYPERPARAMETERS_FILE}`,
};

/** Deletes every Redis key of a namespace (BullMQ's and ours): test clean-up, never production. */
export async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  if (prefix === DEFAULT_PREFIX) throw new Error('refusing to delete the default namespace');
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (found.length > 0) await redis.del(...found);
    cursor = next;
  } while (cursor !== '0');
}
