// Real workers for tests that train over the API (kept apart from api-helpers: it loads the trainers): in the test
// process, or `main.ts` in a child process a test can SIGKILL.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { createLogger } from '@rlhf/config';
import { type ApiClient, createApiClient } from '@rlhf/demo';
import { sortDigitsFiles, tasks } from '@rlhf/examples';
import {
  type InferenceWorkerOptions,
  type RunningEvaluationWorker,
  type RunningInferenceWorker,
  type RunningWorker,
  runners,
  startEvaluationWorker,
  startInferenceWorker,
  startWorker,
  type WorkerOptions,
} from '@rlhf/worker';
import { afterAll, beforeAll } from 'vitest';
import { baseUrl, createTestTeam, startApi, type TestApi, type TestTeam } from './api-helpers.js';

const WORKER_MAIN = fileURLToPath(new URL('../apps/worker/src/main.ts', import.meta.url));
const EXAMPLE_TASKS = fileURLToPath(new URL('../examples/sort-digits/index.ts', import.meta.url));

/** BullMQ lock, stall check and heartbeat of a test worker (shorter than the defaults: recovery in seconds). */
export type WorkerLocks = Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'heartbeatIntervalMs'>;

/** A real worker in this process on the API's Redis namespace and artifact directory (the example tasks known). */
export function startTestWorker(
  api: TestApi,
  workerId: string,
  overrides: Partial<WorkerOptions> = {},
): Promise<RunningWorker> {
  return startWorker({
    redisUrl: api.options.redisUrl,
    artifactDir: api.artifactDir,
    device: 'cpu',
    workerId,
    runners,
    tasks,
    logger: createLogger(workerId, process.env.TEST_LOG_LEVEL ?? 'silent'),
    prefix: api.prefix,
    ...overrides,
  });
}

/** The inference consumer (OpenAI-compatible serving) in this process, on the API's namespace and artifacts. */
export function startTestInferenceWorker(
  api: TestApi,
  workerId: string,
  overrides: Partial<InferenceWorkerOptions> = {},
): Promise<RunningInferenceWorker> {
  return startInferenceWorker({
    redisUrl: api.options.redisUrl,
    artifactDir: api.artifactDir,
    device: 'cpu',
    workerId,
    logger: createLogger(workerId, process.env.TEST_LOG_LEVEL ?? 'silent'),
    prefix: api.prefix,
    ...overrides,
  });
}

/** An API and a stage worker for a test file (its beforeAll / afterAll); read them once beforeAll has run. */
export function useTrainingApi(workerId: string): { readonly api: TestApi; readonly worker: RunningWorker } {
  let api: TestApi | undefined;
  let worker: RunningWorker | undefined;
  beforeAll(async () => {
    api = await startApi();
    worker = await startTestWorker(api, workerId);
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useTrainingApi: read before beforeAll ran');
    return value;
  };
  return {
    get api() {
      return ready(api);
    },
    get worker() {
      return ready(worker);
    },
  };
}

/** A new team on the API with its demo client; `upload(kind)` stores that sort-digits file as a dataset. */
export async function sortDigitsTeam(api: TestApi): Promise<{
  team: TestTeam;
  url: string;
  client: ApiClient;
  upload(kind: keyof typeof sortDigitsFiles): Promise<string>;
}> {
  const team = await createTestTeam(api.app);
  const url = await baseUrl(api.app);
  const client = createApiClient(url, team.key);
  const upload = async (kind: keyof typeof sortDigitsFiles) =>
    (await client.uploadDataset(`sort-digits-${kind}`, kind, await readFile(sortDigitsFiles[kind], 'utf8')))
      .id;
  return { team, url, client, upload };
}

export interface WorkerProcess {
  workerId: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last 20,000 characters of its stdout and stderr. */
  output(): string;
}

/** `main.ts` in a child process with the real trainers and the sort-digits task, on the API's namespace. */
export function spawnTestWorker(
  api: TestApi,
  workerId: string,
  options: { locks?: WorkerLocks; redisUrl?: string } = {},
): WorkerProcess {
  const locks = Object.entries({
    '--lock-duration': options.locks?.lockDuration,
    '--stalled-interval': options.locks?.stalledInterval,
    '--heartbeat-interval': options.locks?.heartbeatIntervalMs,
  }).flatMap(([flag, value]) => (value === undefined ? [] : [flag, String(value)]));
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      WORKER_MAIN,
      '--device',
      'cpu',
      '--prefix',
      api.prefix,
      '--tasks',
      EXAMPLE_TASKS,
      ...locks,
    ],
    {
      env: {
        ...process.env,
        REDIS_URL: options.redisUrl ?? api.options.redisUrl,
        ARTIFACT_DIR: api.artifactDir,
        WORKER_ID: workerId,
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { workerId, child, exited, output: () => output };
}

/** The evaluation consumer (worker --evaluations) in this process, on the API's namespace and artifacts. */
export function startTestEvaluationWorker(
  api: TestApi,
  locks: { lockDuration?: number; stalledInterval?: number } = {},
): Promise<RunningEvaluationWorker> {
  return startEvaluationWorker({
    redisUrl: api.options.redisUrl,
    artifactDir: api.artifactDir,
    device: 'cpu',
    tasks,
    logger: createLogger('evaluator', process.env.TEST_LOG_LEVEL ?? 'silent'),
    prefix: api.prefix,
    ...locks,
  });
}
