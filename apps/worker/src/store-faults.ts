// A full or read-only artifact store mid-stage (ENOSPC, EDQUOT, EROFS) is a condition of the machine, not of
// the stage: the stage waits with backoff and runs again from its newest complete checkpoint once the store
// takes writes, instead of failing the run for good (issue 18 item 9).
import {
  type ArtifactStore,
  isStoreFull,
  isStoreReadOnly,
  removeIncompleteCheckpoints,
} from '@rlhf/artifacts';
import type { Logger } from '@rlhf/config';

/** Waits before each new try after a store fault (default: 5 s doubling to 60 s, ~10 minutes in all). */
export const STORE_RETRY_DELAYS_MS: readonly number[] = [
  5_000,
  10_000,
  20_000,
  40_000,
  ...Array(8).fill(60_000),
];

/** Whether an error (or one it was caused by) says the store refuses writes. */
export function isStoreFault(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++)
    if (isStoreFull(e) || isStoreReadOnly(e)) return true;
  return false;
}

export interface StoreRetryOptions {
  artifacts: ArtifactStore;
  stage: { runId: string; stageId: string };
  delaysMs: readonly number[];
  /** Aborts a wait (cancel or shutdown); the caller's signal handling takes over. */
  signal: AbortSignal;
  log: Logger;
  /** Called before each new try (the stage resumes from its newest complete checkpoint). */
  beforeRetry(): Promise<void>;
}

const wait = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Runs `attempt`; after a store fault, cleans the cut-short checkpoint, waits and runs it again. */
export async function retryOnStoreFault<T>(
  attempt: () => Promise<T>,
  options: StoreRetryOptions,
): Promise<T> {
  const { delaysMs, signal, log } = options;
  for (let retry = 0; ; retry++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isStoreFault(error) || retry >= delaysMs.length || signal.aborted) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      log.warn(
        { err: error, code, retry: retry + 1, delayMs: delaysMs[retry] },
        'artifact store refused a write; the stage waits and resumes from its newest checkpoint',
      );
      await cleanUp(options);
      await wait(delaysMs[retry], signal);
      if (signal.aborted) throw error;
      await cleanUp(options); // the store may refuse deletes while read-only: again once it may take them
      await options.beforeRetry();
    }
  }
}

// A checkpoint cut short is never resumed from (no state.json), but its files take the space that is short.
async function cleanUp({ artifacts, stage, log }: StoreRetryOptions): Promise<void> {
  try {
    const removed = await removeIncompleteCheckpoints(artifacts, stage);
    if (removed.length > 0) log.info({ steps: removed }, 'removed incomplete checkpoints');
  } catch (err) {
    log.warn({ err }, 'could not remove incomplete checkpoints yet');
  }
}
