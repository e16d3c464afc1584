// Shared setup of the API tests: an app with its own database, Redis namespace and artifact directory,
// and teams with keys.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ApiOptions, type App, buildApp, createApiKey, createTeam, type TeamLimits } from '@rlhf/api';
import { writeTar } from '@rlhf/artifacts';
import { createLogger } from '@rlhf/config';
import { ByteTokenizer, hfModelFiles, initParams, presetConfig } from '@rlhf/model';
import { createTestDatabase, type Team } from '@rlhf/db';
import { Redis } from 'ioredis';
import { inject } from 'vitest';

export const ADMIN_KEY = 'test-admin-key-0123456789abcdef';

export interface TestApi {
  app: App;
  prefix: string;
  artifactDir: string;
  options: ApiOptions;
  /** Builds another app on the same database, Redis namespace and artifacts (a restarted API). */
  restart(overrides?: Partial<ApiOptions>): Promise<App>;
  close(): Promise<void>;
}

/**
 * An API with a database, Redis namespace and artifact directory of its own, as a deployment has:
 * admission and reconciliation look at every run in their database.
 */
export async function startApi(overrides: Partial<ApiOptions> = {}): Promise<TestApi> {
  const prefix = `rlhf-test-${randomBytes(5).toString('hex')}`;
  const artifactDir = await mkdtemp(join(tmpdir(), 'rlhf-api-'));
  const database = await createTestDatabase({ serverUrl: inject('databaseUrl') });
  const options: ApiOptions = {
    databaseUrl: database.url,
    redisUrl: inject('redisUrl'),
    artifactDir,
    adminKey: ADMIN_KEY,
    logger: createLogger('api-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    redisPrefix: prefix,
    consumerName: 'test',
    ...overrides,
  };
  const apps: App[] = [];
  const open = async (more: Partial<ApiOptions> = {}) => {
    const app = await buildApp({ ...options, ...more });
    apps.push(app);
    await app.ready();
    return app;
  };
  const app = await open();
  return {
    app,
    prefix,
    artifactDir,
    options,
    restart: open,
    async close() {
      for (const a of apps) await a.close(); // closing a closed app again is a no-op
      await deleteRedisKeys(options.redisUrl, prefix);
      await rm(artifactDir, { recursive: true, force: true });
      await database.drop();
    },
  };
}

async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      if (found.length > 0) await redis.del(...found);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export interface TestTeam {
  team: Team;
  key: string;
  headers: { authorization: string };
}

export async function createTestTeam(app: App, limits: TeamLimits = {}): Promise<TestTeam> {
  const name = `team-${randomBytes(6).toString('hex')}`;
  const team = await createTeam(app.services.prisma, name, limits);
  const { key } = await createApiKey(app.services.prisma, { teamId: team.id, name: 'test' });
  return { team, key, headers: { authorization: `Bearer ${key}` } };
}

export const jsonl = (rows: unknown[]): string => `${rows.map((row) => JSON.stringify(row)).join('\n')}\n`;

export const SFT_ROWS = [
  { prompt: 'sort: 3 1 2', response: '1 2 3' },
  { prompt: 'sort: 9 7', response: '7 9' },
];
export const PREFERENCE_ROWS = [{ prompt: 'sort: 2 1', chosen: '1 2', rejected: '2 1' }];
export const PROMPT_ROWS = [{ prompt: 'sort: 5 4 6' }, { prompt: 'sort: 8 2' }];

/** Uploads a dataset and returns its id. */
export async function uploadDataset(
  app: App,
  headers: { authorization: string },
  kind: string,
  rows: unknown[],
): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: `/v1/datasets?name=${kind}-data&kind=${kind}`,
    headers: { ...headers, 'content-type': 'application/jsonl' },
    payload: jsonl(rows),
  });
  if (response.statusCode !== 201 && response.statusCode !== 200) {
    throw new Error(`upload failed: ${response.statusCode} ${response.body}`);
  }
  return response.json().id;
}

/** The three datasets of a full pipeline and a run spec using them. */
export async function pipelineSpec(app: App, headers: { authorization: string }) {
  const [sft, preference, prompt] = [
    await uploadDataset(app, headers, 'sft', SFT_ROWS),
    await uploadDataset(app, headers, 'preference', PREFERENCE_ROWS),
    await uploadDataset(app, headers, 'prompt', PROMPT_ROWS),
  ];
  return {
    name: 'pipeline',
    model: { preset: 'tiny' },
    stages: [
      { kind: 'sft', datasetId: sft, config: { maxSteps: 10 } },
      { kind: 'reward_model', datasetId: preference },
      { kind: 'ppo', datasetId: prompt, config: { iterations: 3, rolloutBatchSize: 4 } },
    ],
  };
}

/** Polls `read` until it returns a truthy value (the event consumer works in the background). */
export async function waitFor<T>(
  read: () => Promise<T | null | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`waitFor: nothing after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The app's HTTP address, listening on a free port first if it is not yet. */
export async function baseUrl(app: App): Promise<string> {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  return `http://127.0.0.1:${address.port}`;
}

/** A tiny random Llama in HF layout as transformers writes it: config, generation config, weights, tokenizer files. */
export function tinyLlamaFiles(): Record<string, Uint8Array> {
  const config = presetConfig('tiny-llama');
  const files = hfModelFiles({ config, params: initParams(config, 7) }, { tokenizer: new ByteTokenizer() });
  const { 'README.md': _readme, ...rest } = files;
  return rest;
}

/** Registers `files` as a model of the team (POST /v1/models with a tar body); returns its view. */
export async function registerModel(
  app: App,
  headers: { authorization: string },
  name: string,
  files: Record<string, Uint8Array> = tinyLlamaFiles(),
): Promise<{ id: string; name: string }> {
  const response = await app.inject({
    method: 'POST',
    url: `/v1/models?name=${encodeURIComponent(name)}`,
    headers: { ...headers, 'content-type': 'application/x-tar' },
    payload: Buffer.from(writeTar(files)),
  });
  if (response.statusCode !== 201)
    throw new Error(`model upload failed: ${response.statusCode} ${response.body}`);
  return response.json();
}
