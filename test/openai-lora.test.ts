// LoRA runs served as their ft: models through the official `openai` client: two LoRA SFT runs on one uploaded
// tiny Llama (real API, stage worker and inference consumer) answer chat completions with base + their own adapter,
// unmerged, token for token and log-prob for log-prob what their merged models (uploaded as models) answer, and
// the inference consumer holds one loaded base for both; a LoRA GRPO stage after full SFT is served on the SFT
// stage's model.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createApiClient, waitForRun } from '@rlhf/demo';
import { generatePromptRows } from '@rlhf/examples';
import type { RunningInferenceWorker } from '@rlhf/worker';
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { baseUrl, registerModel, type TestApi, type TestTeam, uploadDataset } from './api-helpers.js';
import { type Serving, startServing } from './serving-helpers.js';

const ASK = [{ role: 'user' as const, content: 'sort: 3 1 2' }];
const ALL_LINEARS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

describe('LoRA runs as ft: models', () => {
  let serving: Serving;
  let api: TestApi;
  let inference: RunningInferenceWorker;
  let team: TestTeam;
  let client: OpenAI;
  beforeAll(async () => {
    serving = await startServing('lora', { models: 3 });
    ({ api, inference, team, client } = serving);
  }, 120_000);
  afterAll(() => serving?.close());

  const ask = (model: string) =>
    client.chat.completions.create({ model, messages: ASK, max_tokens: 8, temperature: 0, logprobs: true });

  /** Uploads the merged model of a run's final directory (its hf/) as `name`: it answers as `served` did. */
  async function expectMergedAnswers(
    key: string,
    name: string,
    served: Awaited<ReturnType<typeof ask>>,
  ): Promise<void> {
    const dir = join(api.artifactDir, key, 'hf');
    const files = Object.fromEntries(
      readdirSync(dir)
        .filter((file) => file !== 'README.md' && !file.startsWith('.')) // the store's .sha256 sidecars
        .map((file) => [file, new Uint8Array(readFileSync(join(dir, file)))]),
    );
    await registerModel(api.app, team.headers, name, files);
    const merged = (await ask(name)).choices[0];
    const choice = served.choices[0];
    expect(choice.message.content).toBe(merged.message.content);
    const got = choice.logprobs?.content ?? [];
    const want = merged.logprobs?.content ?? [];
    expect(got.length).toBe(want.length);
    got.forEach((token, t) => {
      expect(Math.abs(token.logprob - want[t].logprob)).toBeLessThan(1e-4);
    });
  }

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
    const answers = [];
    for (const model of [...listed].reverse()) answers.push(await ask(model)); // oldest run first, as `keys`
    const registered = await api.app.services.prisma.model.findUniqueOrThrow({ where: { id: base.id } });
    expect(inference.loadedModels()).toEqual([registered.key]);
    expect(inference.loadedAdapters()).toEqual(keys);

    // The references: each run's merged model uploaded as a model of its own.
    for (const [i, key] of keys.entries()) await expectMergedAnswers(key, `merged-${i}`, answers[i]);
    expect(answers[0].choices[0].message.content).not.toBe(answers[1].choices[0].message.content);
  }, 600_000);

  test("a LoRA GRPO stage after full SFT: its ft: model is the SFT stage's model + the adapter", async () => {
    const base = await registerModel(api.app, team.headers, 'grpo-base');
    const runs = createApiClient(await baseUrl(api.app), team.key);
    const sft = await uploadDataset(api.app, team.headers, 'sft', [
      { prompt: 'sort: 3 1 2', response: '1 2 3' },
      { prompt: 'sort: 9 7', response: '7 9' },
    ]);
    const prompts = await uploadDataset(api.app, team.headers, 'prompt', generatePromptRows(8, { seed: 3 }));
    const submitted = await runs.createRun({
      model: { modelId: base.id },
      stages: [
        { kind: 'sft', datasetId: sft, config: { maxSteps: 4, batchSize: 2, lr: 1e-3 } },
        {
          kind: 'grpo',
          datasetId: prompts,
          config: {
            iterations: 2,
            promptsPerIteration: 2,
            groupSize: 4,
            maxNewTokens: 8,
            lr: 1e-2,
            reward: 'sort-digits',
            lora: { r: 4, targetModules: ALL_LINEARS },
          },
        },
      ],
    });
    const run = await waitForRun(runs, submitted.id);
    expect(run.error).toBeNull();
    const [sftKey, grpoKey] = await Promise.all(
      run.stages.map(
        async (stage) =>
          (await api.app.services.prisma.stage.findUniqueOrThrow({ where: { id: stage.id } }))
            .modelKey as string,
      ),
    );
    const adapterConfig = JSON.parse(
      readFileSync(join(api.artifactDir, grpoKey, 'adapter', 'adapter_config.json'), 'utf8'),
    );
    expect(adapterConfig.base_model_name_or_path).toBe(sftKey);
    const model = `ft:grpo-base:${team.team.name}::${run.id}`;
    expect((await client.models.list()).data.map((m) => m.id)).toContain(model);
    const answer = await ask(model);
    expect(inference.loadedModels().at(-1)).toBe(sftKey);
    expect(inference.loadedAdapters()).toContain(grpoKey);
    await expectMergedAnswers(grpoKey, 'grpo-merged', answer);
  }, 600_000);
});
