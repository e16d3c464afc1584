// One worker process = one device = one stage at a time. BullMQ hands out stage jobs; this file turns a job
// into a runner call (inputs, resume checkpoint, runtime, reporting, cancellation) and a result or an event.
import { hostname } from 'node:os';
import {
  type ArtifactFs,
  type ArtifactStore,
  checkpointStore,
  createArtifactStore,
  latestCheckpoint,
} from '@rlhf/artifacts';
import type { Logger } from '@rlhf/config';
import type { StageJobData, StageJobResult } from '@rlhf/contracts';
import {
  createRedis,
  createStageQueue,
  DEFAULT_PREFIX,
  HEARTBEAT_INTERVAL_MS,
  isCancelRequested,
  isPauseRequested,
  keys,
  PARKED_DELAY_MS,
  removeHeartbeat,
  resolveInputs,
  STAGE_QUEUE,
  type StageEvent,
  type StageJob,
  subscribeCancel,
  subscribePause,
  upstreamResults,
  type WorkerHeartbeat,
  writeHeartbeat,
} from '@rlhf/queue';
import { createRuntime, type Device, type Runtime } from '@rlhf/runtime';
import { PAUSE, SHUTDOWN, StageAbortedError } from '@rlhf/stage-kit';
import { DelayedError, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { StageContext, StageRunners } from './context.js';
import { startLockKeeper } from './lock-keeper.js';
import { createOutbox } from './outbox.js';
import { retryOnStoreFault, STORE_RETRY_DELAYS_MS } from './store-faults.js';
import type { Tasks } from './tasks.js';

/** Why a stage stopped: the worker shutting down (checkpoint, re-queue), the run paused (checkpoint, park), a cancel. */
type StopReason = 'cancel' | 'shutdown' | 'pause';
const reasonOf = (reason: unknown): StopReason =>
  reason === SHUTDOWN ? 'shutdown' : reason === PAUSE ? 'pause' : 'cancel';
const stopReason = (signal: AbortSignal): StopReason | null =>
  signal.aborted ? reasonOf(signal.reason) : null;

export interface WorkerOptions {
  redisUrl: string;
  artifactDir: string;
  /** 'cpu', 'cuda' or 'cuda:N'. */
  device: string;
  workerId: string;
  runners: StageRunners;
  /** Programmatic rewards by name, for stages whose config names one (default none). */
  tasks?: Tasks;
  logger: Logger;
  /** Redis namespace (default 'rlhf'); tests use a unique one. */
  prefix?: string;
  /** BullMQ job lock: a job whose worker died is retried this long after the last renewal (default 30 s). */
  lockDuration?: number;
  /** How often this worker looks for stalled jobs of dead workers (default 30 s). */
  stalledInterval?: number;
  /** Times a job may be re-taken after its worker died before it fails (default 1). */
  maxStalledCount?: number;
  /** Longest synchronous block of the main thread the job's lock outlives (lock-keeper.ts; default 10 minutes). */
  maxBlockMs?: number;
  heartbeatIntervalMs?: number;
  /** Least time between two progress reports of a stage (default 2 s). */
  progressIntervalMs?: number;
  /** Checkpoints kept per stage (default 2). */
  keepCheckpoints?: number;
  /** Waits before each new try of a stage whose artifact writes hit a full or read-only store. */
  storeRetryDelaysMs?: readonly number[];
  /** The store's file system calls (tests inject a full or read-only disk). */
  artifactFs?: Partial<ArtifactFs>;
}

export interface RunningWorker {
  workerId: string;
  /** The device sessions run on. */
  device: Device;
  /**
   * Graceful stop: takes no new job, asks the running stage to checkpoint and stop, puts its job back in the
   * queue (resumed by another worker), closes the runtime and connections, removes the heartbeat.
   */
  close(): Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const { workerId, runners, logger } = options;
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const progressIntervalMs = options.progressIntervalMs ?? 2000;
  const keepCheckpoints = options.keepCheckpoints ?? 2;
  const artifacts = createArtifactStore(options.artifactDir, { fs: options.artifactFs });
  const runtimeLogger = { warn: (message: string) => logger.warn(message) };

  // Probe the device once: a GPU worker that silently fell back to the CPU would be worse than none.
  const probe = await createRuntime({ device: options.device, logger: runtimeLogger });
  const device = probe.device;
  await probe.close();
  if (probe.requestedDevice !== device) {
    throw new Error(
      `worker ${workerId}: ${probe.requestedDevice} requested but unavailable (see warning above)`,
    );
  }

  const redis = createRedis(options.redisUrl, { worker: true });
  const subscriber = createRedis(options.redisUrl, { worker: true });
  const queue = createStageQueue(redis, prefix);
  // Every event goes through the outbox: sent again if Redis comes back without its data.
  const outbox = createOutbox(redis, prefix, logger);
  const publish = (event: StageEvent) => outbox.publish(event);

  // The job this process holds (concurrency 1), for cancellation and heartbeats.
  let active: { jobId: string; runId: string; stageId: string } | null = null;

  const startedAt = new Date().toISOString();
  const heartbeat = (): WorkerHeartbeat => ({
    workerId,
    hostname: hostname(),
    pid: process.pid,
    device,
    currentRunId: active?.runId ?? null,
    currentStageId: active?.stageId ?? null,
    startedAt,
    lastHeartbeat: new Date().toISOString(),
  });
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
  const beat = () =>
    writeHeartbeat(redis, heartbeat(), { ttlMs: 3 * heartbeatIntervalMs, prefix }).catch((error: unknown) =>
      logger.warn({ err: error }, 'heartbeat failed'),
    );
  // Each tick also re-reads the cancelled flag: a broadcast missed during a reconnect still stops the stage.
  const tick = async () => {
    await beat();
    const held = active;
    if (held && (await isCancelRequested(redis, held.runId, prefix).catch(() => false))) {
      worker.cancelJob(held.jobId, 'cancel');
    } else if (held && (await isPauseRequested(redis, held.runId, prefix).catch(() => false))) {
      worker.cancelJob(held.jobId, PAUSE);
    }
  };

  async function processStage(job: StageJob, token: string | undefined, signal: AbortSignal) {
    const data = job.data;
    const stage = { runId: data.runId, stageId: data.stageId };
    const log = logger.child({ runId: data.runId, stageId: data.stageId, kind: data.kind });
    active = { jobId: job.id ?? data.stageId, ...stage };
    // The lock is renewed off the main thread too: a long graph build does not let it lapse.
    if (job.id && token) keeper.hold(job.id, `${worker.toKey(job.id)}:lock`, token);
    outbox.newStage();
    void beat();
    try {
      // A cancel broadcast before `active` was set is caught by the flag.
      if (await isCancelRequested(redis, data.runId, prefix)) throw new StageAbortedError('cancel', 0, false);
      if (await isPauseRequested(redis, data.runId, prefix)) throw new StageAbortedError(PAUSE, 0, false);
      const runner = runners[data.kind];
      if (!runner)
        throw new UnrecoverableError(`worker ${workerId} has no runner for stage kind '${data.kind}'`);
      const input = resolveInputs(data, await upstreamResults(queue, job));
      const resume = await latestCheckpoint(artifacts, stage);
      const attempt = job.attemptsMade + 1;
      const started = (resumedFromStep: number | null) =>
        publish({
          type: 'stage.started',
          ...stage,
          workerId,
          attempt,
          resumedFromStep,
          totalSteps: null,
          hyperparameters: data.config as Record<string, unknown>,
        });
      await started(resume?.step ?? null);
      log.info({ attempt, resumedFromStep: resume?.step ?? null }, 'stage started');

      const progress = throttledProgress(job, stage, progressIntervalMs, publish);
      const runtime = await createRuntime({ device, logger: runtimeLogger });
      const ctx = stageContext({
        stage,
        runtime,
        artifacts,
        signal,
        log,
        keepCheckpoints,
        publish,
        progress: progress.report,
        tasks: options.tasks ?? {},
      });
      let result: StageJobResult;
      try {
        if (signal.aborted) throw new StageAbortedError(signal.reason, 0, false);
        // A full or read-only store: wait, then resume from the newest checkpoint (same attempt).
        result = await retryOnStoreFault(() => runner(input, ctx), {
          artifacts,
          stage,
          delaysMs: options.storeRetryDelaysMs ?? STORE_RETRY_DELAYS_MS,
          signal,
          log,
          beforeRetry: async () => {
            const again = await latestCheckpoint(artifacts, stage);
            await started(again?.step ?? null);
            log.info({ resumedFromStep: again?.step ?? null }, 'stage resumed after a store fault');
          },
        });
      } finally {
        await runtime.close(); // waits for an ORT run still in flight
      }
      await progress.flush();
      await publish({ type: 'stage.completed', ...stage, result });
      log.info({ step: result.step, modelKey: result.modelKey }, 'stage completed');
      return result;
    } catch (error) {
      // Once the signal aborted, whatever the runner threw is the stop, not a failure.
      const reason = error instanceof StageAbortedError ? reasonOf(error.reason) : stopReason(signal);
      if (reason === 'cancel') {
        await publish({ type: 'stage.cancelled', ...stage });
        log.info('stage cancelled');
        throw new UnrecoverableError('cancelled');
      }
      if (reason === 'shutdown') {
        // Back to the queue as if never taken: no attempt used, resumed from the checkpoint just written. If
        // that fails (lock lost), the job stays active without a lock and the stall check re-queues it.
        // requeued is published first: once the job is back in the queue another worker's stage.started may follow.
        const latest = await latestCheckpoint(artifacts, stage);
        await publish({ type: 'stage.requeued', ...stage, workerId, step: latest?.step ?? null });
        await job.moveToWait(token).catch((err: unknown) => log.warn({ err }, 'could not requeue the stage'));
        log.info({ step: latest?.step ?? null }, 'stage requeued for shutdown');
        throw new WaitingError();
      }
      if (reason === 'pause') {
        // Parked (delayed far ahead: no attempt used, the flow keeps waiting on it) until the run resumes. A resume
        // that came while the checkpoint was written cleared the flag first: then the job goes back at once.
        const latest = await latestCheckpoint(artifacts, stage);
        await publish({ type: 'stage.paused', ...stage, workerId, step: latest?.step ?? null });
        await job.moveToDelayed(Date.now() + PARKED_DELAY_MS, token);
        if (!(await isPauseRequested(redis, data.runId, prefix)))
          await job.promote().catch((err: unknown) => log.warn({ err }, 'could not resume the stage'));
        log.info({ step: latest?.step ?? null }, 'stage paused');
        throw new DelayedError();
      }
      const message = error instanceof Error ? error.message : String(error);
      const attempts = job.opts.attempts ?? 1;
      const willRetry = !(error instanceof UnrecoverableError) && job.attemptsMade + 1 < attempts;
      await publish({ type: 'stage.failed', ...stage, error: message, willRetry });
      log.error({ err: error, willRetry }, 'stage failed');
      throw error;
    } finally {
      if (job.id) keeper.release(job.id);
      active = null;
      void beat();
    }
  }

  const lockDuration = options.lockDuration ?? 30_000;
  const worker = new Worker<StageJobData, StageJobResult>(
    STAGE_QUEUE,
    (job, token, signal) => processStage(job, token, signal ?? new AbortController().signal),
    {
      connection: redis,
      prefix,
      concurrency: 1,
      name: workerId,
      lockDuration,
      stalledInterval: options.stalledInterval ?? 30_000,
      maxStalledCount: options.maxStalledCount ?? 1,
      autorun: false,
    },
  );
  const keeper = startLockKeeper({
    redisUrl: options.redisUrl,
    stalledKey: worker.keys.stalled,
    lockDurationMs: lockDuration,
    ...(options.maxBlockMs === undefined ? {} : { maxBlockMs: options.maxBlockMs }),
  });
  worker.on('error', (error) => logger.error({ err: error }, 'worker error'));

  const unsubscribe = await subscribeCancel(
    subscriber,
    (runId) => {
      if (active?.runId === runId) worker.cancelJob(active.jobId, 'cancel');
    },
    prefix,
  );
  const unsubscribePause = await subscribePause(
    subscriber,
    (runId) => {
      if (active?.runId === runId) worker.cancelJob(active.jobId, PAUSE);
    },
    prefix,
  );
  await outbox.start();
  await beat();
  const timer = setInterval(tick, heartbeatIntervalMs);
  worker.run().catch((error: unknown) => logger.error({ err: error }, 'worker stopped taking jobs'));
  logger.info({ workerId, device, prefix }, 'worker started');

  let closing: Promise<void> | undefined;
  return {
    workerId,
    device,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        const closed = worker.close(); // takes no new job; resolves when the running one has returned
        worker.cancelAllJobs('shutdown');
        await closed;
        await keeper.close();
        await unsubscribe();
        await unsubscribePause();
        await removeHeartbeat(redis, workerId, prefix);
        await queue.close();
        subscriber.disconnect();
        await redis.quit();
        logger.info({ workerId }, 'worker stopped');
      })();
      return closing;
    },
  };
}

interface ContextParts {
  stage: { runId: string; stageId: string };
  runtime: Runtime;
  artifacts: ArtifactStore;
  signal: AbortSignal;
  log: Logger;
  keepCheckpoints: number;
  publish: (event: StageEvent) => Promise<string>;
  progress: (step: number, totalSteps: number | null) => Promise<void>;
  tasks: Tasks;
}

// What a runner sees: stage-kit hooks whose every report is an event on the stream.
function stageContext(parts: ContextParts): StageContext {
  const { stage, artifacts, publish, log } = parts;
  return {
    runtime: parts.runtime,
    artifacts,
    logger: log,
    tasks: parts.tasks,
    hooks: {
      signal: parts.signal,
      checkpoints: checkpointStore(artifacts, stage, {
        keep: parts.keepCheckpoints,
        async onSaved(checkpoint) {
          const bytes = Object.values(checkpoint.files).reduce((sum, f) => sum + f.bytes, 0);
          await publish({
            type: 'artifact',
            ...stage,
            kind: 'checkpoint',
            key: checkpoint.dir,
            bytes,
            step: checkpoint.step,
          });
        },
      }),
      onMetrics: async (step, values) => {
        await publish({ type: 'metrics', ...stage, step, values, time: new Date().toISOString() });
      },
      onSamples: async (step, rows) => {
        await publish({ type: 'samples', ...stage, step, rows });
      },
      // Progress is advisory: a failed report (e.g. a lost lock) is logged, never an unhandled rejection.
      onProgress: (step, total) =>
        void parts.progress(step, total).catch((err: unknown) => log.warn({ err }, 'progress report failed')),
      log: (message) => log.info(message),
    },
    async saveFinal(files) {
      const dir = keys.finalDir(stage.runId, stage.stageId);
      let bytes = 0;
      for (const [name, content] of Object.entries(files))
        bytes += (await artifacts.put(`${dir}/${name}`, content)).bytes;
      await publish({ type: 'artifact', ...stage, kind: 'final', key: dir, bytes });
      return dir;
    },
  };
}

// Job progress and stage.progress events at most once per interval (BullMQ's events stream is trimmed at ~10k
// entries); flush() sends the last step if it was held back.
function throttledProgress(
  job: StageJob,
  stage: { runId: string; stageId: string },
  intervalMs: number,
  publish: (event: StageEvent) => Promise<string>,
) {
  let lastSent = 0;
  let pending: { step: number; totalSteps: number | null } | null = null;
  const send = async (step: number, totalSteps: number | null) => {
    lastSent = Date.now();
    pending = null;
    // Advisory: a job wiped with Redis has no progress to update, and its stage goes on.
    await job.updateProgress({ step, totalSteps }).catch(() => {});
    await publish({ type: 'stage.progress', ...stage, step, totalSteps });
  };
  return {
    async report(step: number, totalSteps: number | null) {
      if (Date.now() - lastSent >= intervalMs) await send(step, totalSteps);
      else pending = { step, totalSteps };
    },
    async flush() {
      if (pending) await send(pending.step, pending.totalSteps);
    },
  };
}
