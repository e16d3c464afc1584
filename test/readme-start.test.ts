// The README's local start, as a user types it: `npm start -w @rlhf/api` and `npm start -w @rlhf/worker`
// (npm runs each in its own workspace folder) and a worker started from the repository root, all with one
// relative ARTIFACT_DIR. A tiny SFT run succeeds with each worker, and both processes refuse to start
// (exit 1, one line naming ARTIFACT_DIR) when the directory cannot be written.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '@rlhf/config';
import { createTestDatabase, type TestDatabase } from '@rlhf/db';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { inject } from 'vitest';
import { ADMIN_KEY } from './api-helpers.js';

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

// detached: the process group (npm -> sh -> tsx -> node) is signalled as a whole.
function start(command: string, args: string[], env: Record<string, string>): Started {
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

const groupAlive = (pid: number): boolean => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

// SIGTERM to the whole group, then waits until every process in it is gone (SIGKILL after 20 s).
async function stop(started: Started | undefined): Promise<void> {
  const pid = started?.child.pid;
  if (pid === undefined || !groupAlive(pid)) return;
  process.kill(-pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (groupAlive(pid)) {
    if (Date.now() > deadline) process.kill(-pid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await started?.exited;
}

async function waitForOutput(
  started: Started,
  pattern: RegExp,
  timeoutMs = 60_000,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = started.output().match(pattern);
    if (match) return match;
    if (started.child.exitCode !== null || Date.now() > deadline)
      throw new Error(`no ${pattern} in the output:\n${started.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const prefix = `rlhf-readme-${randomBytes(4).toString('hex')}`;
// Relative on purpose: both processes must resolve it to the same place whatever their working directory.
const artifactDir = `.artifacts/readme-start-${randomBytes(4).toString('hex')}`;
const redisUrl = inject('redisUrl');
let database: TestDatabase;
let api: Started | undefined;
let baseUrl = '';
let headers: Record<string, string> = {};

async function call(method: string, path: string, body?: unknown, contentType = 'application/json') {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': contentType }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const json = (await response.json()) as Record<string, unknown>;
  if (response.status >= 300)
    throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function tinySftRun(datasetId: string): Promise<Record<string, unknown>> {
  const run = await call('POST', '/v1/runs', {
    model: { preset: 'tiny' },
    stages: [{ kind: 'sft', datasetId, config: { maxSteps: 2, batchSize: 4, stepsPerCall: 2 } }],
  });
  const deadline = Date.now() + 90_000;
  for (;;) {
    const now = await call('GET', `/v1/runs/${run.id}`);
    if (['succeeded', 'failed', 'cancelled'].includes(now.status as string)) return now;
    if (Date.now() > deadline) throw new Error(`run still ${now.status}: ${JSON.stringify(now)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const shared = {
  REDIS_URL: redisUrl,
  REDIS_PREFIX: prefix,
  ARTIFACT_DIR: artifactDir,
  LOG_LEVEL: 'info',
};

describe('the README local start', () => {
  beforeAll(async () => {
    database = await createTestDatabase({ serverUrl: inject('databaseUrl') });
    api = start('npm', ['start', '-w', '@rlhf/api'], {
      ...shared,
      DATABASE_URL: database.url,
      ADMIN_KEY,
      PORT: '0',
    });
    baseUrl = (await waitForOutput(api, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/))[1] as string;
    headers = { authorization: `Bearer ${ADMIN_KEY}` };
    const team = await call('POST', '/v1/admin/teams', { name: `readme-${randomBytes(4).toString('hex')}` });
    const { key } = await call('POST', `/v1/admin/teams/${team.id}/keys`, { name: 'readme' });
    headers = { authorization: `Bearer ${key}` };
  });

  afterAll(async () => {
    await stop(api);
    await rm(join(REPO_ROOT, artifactDir), { recursive: true, force: true });
    const redis = new Redis(redisUrl);
    const found = await redis.keys(`${prefix}:*`);
    if (found.length > 0) await redis.del(...found);
    redis.disconnect();
    await database?.drop();
  });

  test('a worker from its workspace folder, then one from the repository root, each finish a tiny SFT run', async () => {
    const rows = await readFile(join(REPO_ROOT, 'examples/sort-digits/data/sft.jsonl'), 'utf8');
    const dataset = await call('POST', '/v1/datasets?name=sft&kind=sft', rows, 'application/jsonl');
    // The upload went to the one store under the repository root, not under apps/api.
    expect(existsSync(join(REPO_ROOT, artifactDir, 'datasets'))).toBe(true);
    expect(existsSync(join(REPO_ROOT, 'apps', 'api', artifactDir))).toBe(false);

    const commands: [string, string[]][] = [
      ['npm', ['start', '-w', '@rlhf/worker', '--', '--device', 'cpu']],
      ['node', ['--import', 'tsx', 'apps/worker/src/main.ts', '--device', 'cpu']],
    ];
    for (const [command, args] of commands) {
      const worker = start(command, args, { ...shared, WORKER_ID: `readme-${command}` });
      try {
        const run = await tinySftRun(dataset.id as string);
        expect(run.error, worker.output()).toBeNull();
        expect(run.status).toBe('succeeded');
        const { items } = (await call('GET', `/v1/runs/${run.id}/artifacts`)) as { items: { key: string }[] };
        const model = items.find((a) => a.key.endsWith('/final/model.safetensors'));
        expect(model, JSON.stringify(items.map((a) => a.key))).toBeDefined();
        expect(existsSync(join(REPO_ROOT, artifactDir, ...(model as { key: string }).key.split('/')))).toBe(
          true,
        );
      } finally {
        await stop(worker);
      }
      // npm itself dies of the signal; the worker under it stops gracefully.
      expect(worker.output()).toMatch(/"msg":"stopping"/);
      if (command === 'node') expect(worker.child.exitCode).toBe(0);
    }
    expect(existsSync(join(REPO_ROOT, 'apps', 'worker', artifactDir))).toBe(false);
  });

  test('API and worker refuse to start when ARTIFACT_DIR cannot be written', async () => {
    const file = join(tmpdir(), `rlhf-not-a-dir-${randomBytes(4).toString('hex')}`);
    await writeFile(file, 'x');
    try {
      const bad = { ...shared, ARTIFACT_DIR: join(file, 'store') };
      const refusedApi = start('npm', ['start', '-w', '@rlhf/api'], {
        ...bad,
        DATABASE_URL: database.url,
        PORT: '0',
      });
      const refusedWorker = start('node', ['--import', 'tsx', 'apps/worker/src/main.ts'], bad);
      for (const refused of [refusedApi, refusedWorker]) {
        expect(await refused.exited).not.toBe(0);
        expect(refused.output()).toContain(
          `ARTIFACT_DIR: cannot write to ${join(file, 'store')} (ENOTDIR); API and workers need one shared, writable directory`,
        );
        expect(refused.output()).not.toMatch(/\n\s+at /); // a message, not a stack
      }
    } finally {
      await rm(file, { force: true });
    }
  });
});
