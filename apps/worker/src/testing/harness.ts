// Test plumbing: a namespace per test file, an event collector, worker child processes, run flows.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '@rlhf/config';
import {
  resolvePpoConfig,
  resolveDpoConfig,
  resolveProConfig,
  resolveGrpoConfig,
  resolveRaftConfig,
  resolveRewardModelConfig,
  resolveSftConfig,
  type SftConfigInput,
  type StageJobData,
} from '@rlhf/contracts';
import {
  addRunFlow,
  createFlowProducer,
  createRedis,
  createStageQueue,
  deletePrefix,
  type StageEvent,
  type StageQueue,
  type StreamEvent,
  tailEvents,
} from '@rlhf/queue';
import type { Redis } from 'ioredis';
import type { StageRunners } from '../context.js';
import { type RunningWorker, startWorker, type WorkerOptions } from '../worker.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));
export const LINEAR_RUNNERS = fileURLToPath(new URL('./linear-runner.ts', import.meta.url));

export const uid = () => randomUUID().replaceAll('-', '').slice(0, 12);

/** Settings that make crash recovery take seconds instead of a minute. */
export const FAST_LOCKS = { lockDuration: 1500, stalledInterval: 1000, heartbeatIntervalMs: 200 };

/** Everything one test file needs: its own Redis namespace and artifact dir, an event log, clean-up. */
export async function createHarness(name: string) {
  const prefix = `test-${name}-${uid()}`;
  const artifactDir = await mkdtemp(join(tmpdir(), `worker-${name}-`));
  const redis = createRedis(REDIS_URL, { worker: true });
  const tail = createRedis(REDIS_URL, { worker: true });
  const queue: StageQueue = createStageQueue(redis, prefix);
  const events: StreamEvent[] = [];
  const workers: RunningWorker[] = [];
  const children: ChildProcess[] = [];
  let stopped = false;

  // Collects every event of the namespace in order.
  const collecting = (async () => {
    let lastId = '0';
    while (!stopped) {
      const batch = await tailEvents(tail, lastId, { blockMs: 100, prefix });
      for (const e of batch) events.push(e);
      if (batch.length > 0) lastId = batch[batch.length - 1].id;
    }
  })();

  const logger = createLogger('worker-test', process.env.TEST_LOG_LEVEL ?? 'silent');

  return {
    prefix,
    artifactDir,
    redis,
    queue,
    logger,
    events: () => events.map((e) => e.event),
    /** Events of one stage, in order. */
    stageEvents: (stageId: string) => events.map((e) => e.event).filter((e) => e.stageId === stageId),
    /** Waits for the first event of a type for a stage (among those collected so far and later ones). */
    async waitFor<K extends StageEvent['type']>(
      type: K,
      stageId: string,
      match: (e: Extract<StageEvent, { type: K }>) => boolean = () => true,
      timeoutMs = 30_000,
    ): Promise<Extract<StageEvent, { type: K }>> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = events
          .map((e) => e.event)
          .find(
            (e): e is Extract<StageEvent, { type: K }> =>
              e.type === type && e.stageId === stageId && match(e as Extract<StageEvent, { type: K }>),
          );
        if (found) return found;
        if (Date.now() > deadline) {
          const seen = events.filter((e) => e.event.stageId === stageId).map((e) => e.event.type);
          throw new Error(`no ${type} event for ${stageId} within ${timeoutMs} ms; saw ${seen.join(', ')}`);
        }
        await sleep(20);
      }
    },
    async startWorker(runners: StageRunners, overrides: Partial<WorkerOptions> = {}): Promise<RunningWorker> {
      const worker = await startWorker({
        redisUrl: REDIS_URL,
        artifactDir,
        device: 'cpu',
        workerId: `w-${uid()}`,
        runners,
        logger,
        prefix,
        ...FAST_LOCKS,
        ...overrides,
      });
      workers.push(worker);
      return worker;
    },
    /** `main.ts` in a child process on this namespace with the linear runners. */
    spawnWorker(args: string[], env: Record<string, string> = {}) {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', MAIN, '--runners', LINEAR_RUNNERS, '--prefix', prefix, ...args],
        {
          env: {
            ...process.env,
            REDIS_URL,
            ARTIFACT_DIR: artifactDir,
            LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
            ...env,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      children.push(child);
      let output = '';
      child.stdout?.on('data', (chunk) => {
        output += chunk;
      });
      child.stderr?.on('data', (chunk) => {
        output += chunk;
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      return { child, exited, output: () => output };
    },
    async addRun(stages: StageJobData[], options: { priority?: number; attempts?: number } = {}) {
      const flows = createFlowProducer(redis, prefix);
      await addRunFlow(flows, {
        runId: stages[0].runId,
        stages,
        priority: options.priority ?? 1,
        ...options,
      });
      await flows.close();
    },
    /** Closes the in-process workers started so far (afterEach: a failed test leaves none behind). */
    async closeWorkers() {
      await Promise.all(workers.splice(0).map((w) => w.close()));
    },
    async close() {
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await Promise.all(workers.splice(0).map((w) => w.close()));
      stopped = true;
      await collecting;
      await queue.close();
      await deletePrefix(redis, prefix);
      redis.disconnect();
      tail.disconnect();
      await rm(artifactDir, { recursive: true, force: true });
    },
  };
}

export type Harness = Awaited<ReturnType<typeof createHarness>>;

/** Stages of one run whose configs drive the linear runner (steps, fused steps per call, checkpoints, lr). */
export function linearRun(
  kinds: Exclude<StageJobData['kind'], 'eval'>[],
  training: { maxSteps?: number; stepsPerCall?: number; checkpointEvery?: number; lr?: number } = {},
): StageJobData[] {
  const runId = `run${uid()}`;
  const supervised: SftConfigInput = {
    maxSteps: 40,
    stepsPerCall: 5,
    checkpointEvery: 10,
    lr: 0.2,
    ...training,
  };
  const common = { runId, teamId: 'team1', modelPreset: 'tiny' as const, inputs: {} };
  return kinds.map((kind): StageJobData => {
    const stageId = `${kind.replace('_', '')}${uid()}`;
    if (kind === 'sft') {
      return {
        ...common,
        stageId,
        kind,
        config: resolveSftConfig(supervised),
        dataset: { id: 'd1', key: 'datasets/t/a.jsonl', kind: 'sft' },
      };
    }
    const preferences = { id: 'd2', key: 'datasets/t/b.jsonl', kind: 'preference' as const };
    if (kind === 'reward_model')
      return { ...common, stageId, kind, config: resolveRewardModelConfig(supervised), dataset: preferences };
    if (kind === 'dpo')
      return { ...common, stageId, kind, config: resolveDpoConfig(supervised), dataset: preferences };
    if (kind === 'pro')
      return { ...common, stageId, kind, config: resolveProConfig(supervised), dataset: preferences };
    const prompts = { id: 'd3', key: 'datasets/t/c.jsonl', kind: 'prompt' as const };
    if (kind === 'grpo') {
      const config = resolveGrpoConfig({
        iterations: training.maxSteps ?? 20,
        checkpointEvery: training.checkpointEvery ?? 5,
        lr: training.lr ?? 0.2,
      });
      return { ...common, stageId, kind, config, dataset: prompts };
    }
    if (kind === 'raft') {
      const config = resolveRaftConfig({
        iterations: training.maxSteps ?? 20,
        checkpointEvery: training.checkpointEvery ?? 5,
        lr: training.lr ?? 0.2,
      });
      return { ...common, stageId, kind, config, dataset: prompts };
    }
    return {
      ...common,
      stageId,
      kind,
      config: resolvePpoConfig({
        iterations: training.maxSteps ?? 20,
        checkpointEvery: training.checkpointEvery ?? 5,
        lr: training.lr ?? 0.2,
      }),
      dataset: { id: 'd3', key: 'datasets/t/c.jsonl', kind: 'prompt' },
    };
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `done` holds (or the timeout passes) and returns the last value read. */
export async function until<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(50);
  }
}

export type { Redis };
