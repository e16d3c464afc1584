// The chaos suite's service: a real API (its own database, Redis namespace and artifact directory), real
// workers (child processes running the real trainers, so they can be killed with SIGKILL, or in-process ones
// for disk faults), the sort-digits datasets, and a log of every worker event with the time it was seen.
import { readFile } from 'node:fs/promises';
import type { ApiOptions } from '@rlhf/api';
import { createLogger } from '@rlhf/config';
import { sortDigitsFiles } from '@rlhf/examples';
import { createRedis, type StageEvent, tailEvents } from '@rlhf/queue';
import type { RunningWorker, WorkerOptions } from '@rlhf/worker';
import { createTestTeam, startApi, type TestApi, type TestTeam, waitFor } from '../api-helpers.js';
import { spawnTestWorker, startTestWorker, type WorkerLocks, type WorkerProcess } from '../worker-helpers.js';

export type { WorkerProcess };

/**
 * Crash recovery in seconds instead of a minute (BullMQ lock, stall check, heartbeat). The lock is 10 s, not
 * less: building a stage's graphs blocks the worker's event loop for seconds on a loaded machine, and a lock
 * not renewed in time makes BullMQ take the live job for stalled (a 1.5 s lock failed a finished stage).
 */
export const FAST_LOCKS: WorkerLocks = {
  lockDuration: 10_000,
  stalledInterval: 1000,
  heartbeatIntervalMs: 200,
};

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface SeenEvent {
  event: StageEvent;
  /** Date.now() when the collector read it from the stream. */
  at: number;
}

export type StageKind = 'sft' | 'reward_model' | 'dpo' | 'pro' | 'raft' | 'grpo' | 'ppo';
export const ALL_KINDS: readonly StageKind[] = ['sft', 'reward_model', 'dpo', 'pro', 'raft', 'grpo', 'ppo'];

/**
 * Small configs of every stage kind, long enough to be killed between two checkpoints: each stage has several
 * checkpoints and every step reports metrics (the checks compare steps, not values).
 */
export const STAGE_CONFIGS: Record<StageKind, Record<string, unknown>> = {
  sft: { maxSteps: 60, batchSize: 8, stepsPerCall: 5, checkpointEvery: 10, evalEvery: 1000, lr: 3e-3 },
  reward_model: { maxSteps: 60, batchSize: 8, stepsPerCall: 5, checkpointEvery: 10, evalEvery: 1000 },
  dpo: { maxSteps: 60, batchSize: 4, stepsPerCall: 5, checkpointEvery: 10, evalEvery: 1000 },
  pro: { maxSteps: 60, batchSize: 4, stepsPerCall: 5, checkpointEvery: 10, evalEvery: 1000 },
  raft: {
    iterations: 8,
    promptsPerIteration: 4,
    samplesPerPrompt: 2,
    stepsPerIteration: 2,
    batchSize: 4,
    maxNewTokens: 8,
    checkpointEvery: 2,
  },
  grpo: {
    iterations: 8,
    promptsPerIteration: 4,
    groupSize: 2,
    maxNewTokens: 8,
    reward: 'sort-digits',
    checkpointEvery: 2,
  },
  ppo: { iterations: 8, rolloutBatchSize: 4, maxNewTokens: 8, checkpointEvery: 2, sampleEvery: 100 },
};

export interface ChaosEnvOptions {
  api?: Partial<ApiOptions>;
  /** Redis of the workers and the event log (default: the API's). */
  redisUrl?: string;
  /** Stage configs over STAGE_CONFIGS (e.g. shorter stages for the fast suite). */
  configs?: Partial<Record<StageKind, object>>;
  /** Called with the artifact directory before anything is stored in it (e.g. to mount a tmpfs there). */
  prepareArtifactDir?: (dir: string) => void;
}

export async function createChaosEnv(options: ChaosEnvOptions = {}) {
  const api: TestApi = await startApi({ claimIdleMs: 1000, ...options.api });
  const redisUrl = options.redisUrl ?? api.options.redisUrl;
  options.prepareArtifactDir?.(api.artifactDir);
  let app = api.app;
  const team: TestTeam = await createTestTeam(app, { maxActiveStages: 8, requestsPerMinute: 100_000 });
  const seen: SeenEvent[] = [];
  const children: WorkerProcess[] = [];
  const inProcess: RunningWorker[] = [];
  const logger = createLogger('chaos', process.env.TEST_LOG_LEVEL ?? 'silent');

  // Every event of the namespace in order; survives a Redis restart (ids only grow, so `lastId` still works).
  let stopped = false;
  const tail = createRedis(redisUrl, { worker: true });
  tail.on('error', () => {}); // refused while Redis restarts: the loop below retries
  const collecting = (async () => {
    let lastId = '0';
    while (!stopped) {
      try {
        const batch = await tailEvents(tail, lastId, { blockMs: 100, prefix: api.prefix, count: 1000 });
        const at = Date.now();
        for (const e of batch) seen.push({ event: e.event, at });
        if (batch.length > 0) lastId = batch[batch.length - 1].id;
      } catch {
        await sleep(100);
      }
    }
  })();

  const datasets: Record<string, string> = {};
  for (const kind of ['sft', 'preference', 'ranked', 'prompt'] as const) {
    const text = await readFile(sortDigitsFiles[kind], 'utf8');
    const response = await app.inject({
      method: 'POST',
      url: `/v1/datasets?name=chaos-${kind}&kind=${kind}`,
      headers: { ...team.headers, 'content-type': 'application/jsonl' },
      payload: text,
    });
    if (response.statusCode !== 201)
      throw new Error(`upload ${kind}: ${response.statusCode} ${response.body}`);
    datasets[kind] = response.json().id;
  }
  const datasetOf: Record<StageKind, string> = {
    sft: datasets.sft,
    reward_model: datasets.preference,
    dpo: datasets.ranked,
    pro: datasets.ranked,
    raft: datasets.prompt,
    grpo: datasets.prompt,
    ppo: datasets.prompt,
  };

  return {
    api,
    team,
    redisUrl,
    get app() {
      return app;
    },
    /** Replaces the app the env talks to (after an API restart). */
    useApp(next: typeof app) {
      app = next;
    },
    seen,
    /** Submits a run of these stages (in pipeline order) with the chaos configs; returns its id and stages. */
    async submit(kinds: readonly StageKind[], configs: Partial<Record<StageKind, object>> = {}) {
      const stages = kinds.map((kind) => ({
        kind,
        datasetId: datasetOf[kind],
        config: { ...STAGE_CONFIGS[kind], ...options.configs?.[kind], ...configs[kind] },
      }));
      const response = await app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: team.headers,
        payload: { name: `chaos ${kinds.join(' ')}`, model: { preset: 'tiny' }, stages },
      });
      if (response.statusCode !== 201) throw new Error(`submit: ${response.statusCode} ${response.body}`);
      return response.json() as { id: string; stages: { id: string; kind: StageKind }[] };
    },
    async run(runId: string) {
      const response = await app.inject({ method: 'GET', url: `/v1/runs/${runId}`, headers: team.headers });
      return response.json() as {
        status: string;
        error: string | null;
        stages: { id: string; kind: StageKind; status: string; step: number; totalSteps: number | null }[];
      };
    },
    /** Waits for the run to finish; null when it has not within the timeout (a hang). */
    async finished(runId: string, timeoutMs: number) {
      try {
        return await waitFor(async () => {
          const run = await this.run(runId).catch(() => null);
          return run && ['succeeded', 'failed', 'cancelled'].includes(run.status) ? run : null;
        }, timeoutMs);
      } catch {
        return null;
      }
    },
    /** `main.ts` in a child process with the real trainers and the sort-digits task. */
    spawnWorker(workerId: string): WorkerProcess {
      const proc = spawnTestWorker(api, workerId, { locks: FAST_LOCKS, redisUrl });
      children.push(proc);
      return proc;
    },
    /** A worker in this process (the real trainers), e.g. with a file system hook on its artifact store. */
    async startWorker(workerId: string, overrides: Partial<WorkerOptions> = {}): Promise<RunningWorker> {
      const worker = await startTestWorker(api, workerId, { redisUrl, logger, ...FAST_LOCKS, ...overrides });
      inProcess.push(worker);
      return worker;
    },
    /** Events of one stage seen so far. */
    stageEvents(stageId: string): SeenEvent[] {
      return seen.filter((s) => s.event.stageId === stageId);
    },
    /** Waits until an event matches (seen from index `from` on); returns it with its index. */
    async waitForEvent(match: (e: StageEvent) => boolean, timeoutMs: number, from = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (let i = from; i < seen.length; i++) if (match(seen[i].event)) return { ...seen[i], index: i };
        if (Date.now() > deadline) return null;
        await sleep(20);
      }
    },
    async closeWorkers() {
      for (const proc of children.splice(0))
        if (proc.child.exitCode === null && proc.child.signalCode === null) {
          proc.child.kill('SIGKILL');
          await proc.exited;
        }
      await Promise.all(inProcess.splice(0).map((w) => w.close()));
    },
    async close() {
      await this.closeWorkers();
      stopped = true;
      await collecting;
      tail.disconnect();
      await api.close();
    },
  };
}

export type ChaosEnv = Awaited<ReturnType<typeof createChaosEnv>>;
