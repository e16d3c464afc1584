// LoRA runs served as their ft: models through the official `openai` client: two LoRA SFT runs on one uploaded
// tiny Llama (real API, stage worker and inference consumer) answer chat completions with base + their own adapter,
// unmerged, token for token and log-prob for log-prob what their merged models (uploaded as models) answer, and
// the inference consumer holds one loaded base for both.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '@rlhf/config';
import { createApiClient, waitForRun } from '@rlhf/demo';
import { type RunningInferenceWorker, type RunningWorker, startInferenceWorker } from '@rlhf/worker';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  registerModel,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

const logger = createLogger('openai-lora-test', process.env.TEST_LOG_LEVEL ?? 'silent');
const ASK = [{ role: 'user' as const, content: 'sort: 3 1 2' }];
const ALL_LINEARS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

describe('LoRA runs as ft: models', () => {
  let api: TestApi;
  let worker: RunningWorker;
  let inference: RunningInferenceWorker;
  let team: TestTeam;
  let client: OpenAI;
  beforeAll(async () => {
    api = await startApi();
    worker = await startTestWorker(api, 'lora-stage-worker');
    inference = await startInferenceWorker({
      redisUrl: api.options.redisUrl,
      artifactDir: api.artifactDir,
      device: 'cpu',
      workerId: 'lora-inference',
      logger,
      prefix: api.prefix,
      models: 3,
    });
    team = await createTestTeam(api.app, { requestsPerMinute: 10_000 });
    client = new OpenAI({ baseURL: `${await baseUrl(api.app)}/v1`, apiKey: team.key, maxRetries: 0 });
  }, 120_000);
  afterAll(async () => {
    await inference?.close();
    await worker?.close();
    await api?.close();
  });

  test('two adapters of one base answer as their merged models do, from one loaded base', async () => {
    const base = await registerModel(api.app, team.headers, 'base-llama');
    const runs = createApiClient(await baseUrl(api.app), team.key);
    // Two adapters taught different answers, so their outputs differ.
    const keys: string[] = [];
    for (const answer of ['1 1 1 1', '9 9 9 9']) {
      const rows = ['3 1 2', '9 7', '5 4 6', '8 2'].map((digits) => ({
        prompt: `sort: ${digits}`,
        response: answer,
      }));
      const datasetId = await uploadDataset(api.app, team.headers, 'sft', rows);
      const submitted = await runs.createRun({
        model: { modelId: base.id },
        stages: [
          {
            kind: 'sft',
            datasetId,
            config: { maxSteps: 30, batchSize: 2, lr: 1e-2, lora: { r: 4, targetModules: ALL_LINEARS } },
          },
        ],
      });
      const run = await waitForRun(runs, submitted.id);
      expect(run.error).toBeNull();
      const stage = await api.app.services.prisma.stage.findUniqueOrThrow({
        where: { id: run.stages[0].id },
      });
      keys.push(stage.modelKey as string);
    }
    const listed = (await client.models.list()).data.map((m) => m.id).filter((id) => id.startsWith('ft:'));
    expect(listed).toHaveLength(2);
    const ask = (model: string) =>
      client.chat.completions.create({ model, messages: ASK, max_tokens: 8, temperature: 0, logprobs: true });
    const answers = [];
    for (const model of [...listed].reverse()) answers.push(await ask(model)); // oldest run first, as `keys`
    const registered = await api.app.services.prisma.model.findUniqueOrThrow({ where: { id: base.id } });
    expect(inference.loadedModels()).toEqual([registered.key]);
    expect(inference.loadedAdapters()).toEqual(keys);

    // The references: each run's merged model (its hf/ directory) uploaded as a model of its own.
    for (const [i, key] of keys.entries()) {
      const dir = join(api.artifactDir, key, 'hf');
      const files = Object.fromEntries(
        readdirSync(dir)
          .filter((name) => name !== 'README.md' && !name.startsWith('.')) // the store's .sha256 sidecars
          .map((name) => [name, new Uint8Array(readFileSync(join(dir, name)))]),
      );
      await registerModel(api.app, team.headers, `merged-${i}`, files);
      const merged = await ask(`merged-${i}`);
      const served = answers[i].choices[0];
      expect(served.message.content).toBe(merged.choices[0].message.content);
      const got = served.logprobs?.content ?? [];
      const want = merged.choices[0].logprobs?.content ?? [];
      expect(got.length).toBe(want.length);
      got.forEach((token, t) => {
        expect(Math.abs(token.logprob - want[t].logprob)).toBeLessThan(1e-4);
      });
    }
    expect(answers[0].choices[0].message.content).not.toBe(answers[1].choices[0].message.content);
  }, 600_000);
});
