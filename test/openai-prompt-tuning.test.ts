// Prompt-tuning runs served (issue 14): two prompt-tuning SFT runs on one uploaded tiny Llama (real API, stage
// worker and inference consumer) answer OpenAI text completions, through the official `openai` client, as a
// float64 reference forward on [virtual tokens ; prompt] decodes greedily (tokens and log-probs), from one loaded
// base; the run's POST /v1/runs/:id/generate samples with the same virtual tokens; the prompt's PEFT files uploaded
// alone on the registered base, and the stage's model.tar re-imported, answer as the run does; bad ones are 400
// naming the field.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeTar } from '@rlhf/artifacts';
import { createLogger } from '@rlhf/config';
import { createApiClient, waitForRun } from '@rlhf/demo';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  loadCheckpoint,
  PROMPT_EMBEDDINGS,
  promptTuningFromFiles,
  readSafetensors,
  tensorToFloat32,
} from '@rlhf/model';
import { referenceLlamaForward } from '@rlhf/model/testing/reference';
import { framingOf, promptTokens } from '@rlhf/stage-kit';
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
  tinyLlamaFiles,
  uploadDataset,
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

const logger = createLogger('openai-prompt-tuning-test', process.env.TEST_LOG_LEVEL ?? 'silent');
const PROMPT = 'sort: 3 1 2';
const NEW = 6;
const P = 4;

/** log softmax of one row, in float64. */
function logSoftmax(row: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(row));
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  const log = Math.log(sum) + max;
  return Array.from(row, (x) => x - log);
}

describe('prompt-tuning runs as ft: models', () => {
  let api: TestApi;
  let worker: RunningWorker;
  let inference: RunningInferenceWorker;
  let team: TestTeam;
  let client: OpenAI;
  beforeAll(async () => {
    api = await startApi();
    worker = await startTestWorker(api, 'prompt-serving-worker');
    inference = await startInferenceWorker({
      redisUrl: api.options.redisUrl,
      artifactDir: api.artifactDir,
      device: 'cpu',
      workerId: 'prompt-serving-inference',
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

  test('two prompts of one base answer as the float64 reference with their virtual tokens, from one loaded base', async () => {
    const baseFiles = tinyLlamaFiles();
    const base = await registerModel(api.app, team.headers, 'prompt-base', baseFiles);
    const runs = createApiClient(await baseUrl(api.app), team.key);
    const hfConfig = JSON.parse(new TextDecoder().decode(baseFiles['config.json']));
    const weights = new Map<string, Float32Array>();
    for (const [name, t] of readSafetensors(baseFiles['model.safetensors']).tensors)
      weights.set(name, tensorToFloat32(t, name));

    const runIds: string[] = [];
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
            config: { maxSteps: 20, batchSize: 2, lr: 3e-2, promptTuning: { numVirtualTokens: P } },
          },
        ],
      });
      const run = await waitForRun(runs, submitted.id);
      expect(run.error).toBeNull();
      const stage = await api.app.services.prisma.stage.findUniqueOrThrow({
        where: { id: run.stages[0].id },
      });
      runIds.push(run.id);
      keys.push(stage.modelKey as string);
    }

    const dir = join(api.artifactDir, keys[0]);
    const { config, tokenizer } = await loadCheckpoint(dir);
    const ids = promptTokens(tokenizer, PROMPT, Number.POSITIVE_INFINITY, framingOf(tokenizer));
    const served: number[][] = [];
    for (const [i, key] of keys.entries()) {
      const files = {
        [ADAPTER_CONFIG]: new Uint8Array(readFileSync(join(api.artifactDir, key, 'adapter', ADAPTER_CONFIG))),
        [ADAPTER_WEIGHTS]: new Uint8Array(
          readFileSync(join(api.artifactDir, key, 'adapter', ADAPTER_WEIGHTS)),
        ),
      };
      const prompt = promptTuningFromFiles(config, files).adapter.get(PROMPT_EMBEDDINGS) as Float32Array;
      const d = config.nEmbd;
      const prefix = Array.from({ length: P }, (_, r) => Array.from(prompt.subarray(r * d, (r + 1) * d)));
      // The reference: greedy over full forwards of [virtual ; prompt ; generated so far] (no cache).
      const tokens = [...ids];
      const want: number[] = [];
      const wantIds: number[] = [];
      for (let t = 0; t < NEW; t++) {
        const row = logSoftmax(referenceLlamaForward(hfConfig, weights, [tokens], prefix)[0].at(-1) ?? []);
        const next = row.indexOf(Math.max(...row));
        if (next === tokenizer.eosId) break;
        tokens.push(next);
        wantIds.push(next);
        want.push(row[next]);
      }
      const model = `ft:prompt-base:${team.team.name}::${runIds[i]}`;
      const completion = await client.completions.create({
        model,
        prompt: PROMPT,
        max_tokens: NEW,
        temperature: 0,
        logprobs: 0,
      });
      const got = completion.choices[0].logprobs?.token_logprobs ?? [];
      expect(completion.choices[0].text).toBe(tokenizer.decode(wantIds, { skipSpecialTokens: true }));
      expect(got.length).toBe(want.length);
      expect(got.length).toBeGreaterThan(0);
      const diff = Math.max(...got.map((lp, t) => Math.abs((lp as number) - want[t])));
      console.log(
        `prompt ${i}: served ${JSON.stringify(completion.choices[0].text)}, ${got.length} tokens, log-probs within ${diff.toExponential(2)} of the float64 reference`,
      );
      expect(diff).toBeLessThanOrEqual(1e-4);
      served.push(got as number[]);

      // The run's own /generate samples with the same virtual tokens (its framing: bos + the prompt's tokens; a
      // temperature of 1e-6, the least it takes, is the argmax).
      const response = await fetch(`${await baseUrl(api.app)}/v1/runs/${runIds[i]}/generate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${team.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ prompts: [PROMPT], maxNewTokens: NEW, temperature: 1e-6, seed: 1 }),
      });
      expect(response.status).toBe(200);
      const generated = (await response.json()) as { completions: { response: string }[] };
      const framed = [tokenizer.bosId, ...tokenizer.encode(PROMPT)];
      const own: number[] = [];
      for (let t = 0; t < NEW; t++) {
        const row = logSoftmax(
          referenceLlamaForward(hfConfig, weights, [[...framed, ...own]], prefix)[0].at(-1) ?? [],
        );
        const next = row.indexOf(Math.max(...row));
        if (next === tokenizer.eosId) break;
        own.push(next);
      }
      expect(generated.completions[0].response).toBe(tokenizer.decode(own, { skipSpecialTokens: true }));
    }
    // Two prompts, one base: the base is loaded once, each prompt is its adapter.
    const registered = await api.app.services.prisma.model.findUniqueOrThrow({ where: { id: base.id } });
    expect(inference.loadedModels()).toEqual([registered.key]);
    expect(inference.loadedAdapters()).toEqual(keys);
    // The two prompts trained apart: their log-probs differ, so each was served with its own.
    expect(Math.max(...served[0].map((lp, t) => Math.abs(lp - (served[1][t] ?? 0))))).toBeGreaterThan(1e-3);

    // The first run's prompt uploaded alone on the registered base (PEFT's two files): served as that run is;
    // bad configs are 400 naming the field, nothing stored.
    const at = join(api.artifactDir, keys[0], 'adapter');
    const json = JSON.parse(readFileSync(join(at, ADAPTER_CONFIG), 'utf8'));
    const weightsFile = new Uint8Array(readFileSync(join(at, ADAPTER_WEIGHTS)));
    const upload = (name: string, edit: object) =>
      api.app.inject({
        method: 'POST',
        url: `/v1/models?name=${name}`,
        headers: { ...team.headers, 'content-type': 'application/x-tar' },
        payload: Buffer.from(
          writeTar({
            [`my-prompt/${ADAPTER_CONFIG}`]: new TextEncoder().encode(
              JSON.stringify({ ...json, base_model_name_or_path: 'prompt-base', ...edit }),
            ),
            [`my-prompt/${ADAPTER_WEIGHTS}`]: weightsFile,
          }),
        ),
      });
    const models = await api.app.services.prisma.model.count({ where: { teamId: team.team.id } });
    for (const [edit, field] of [
      [{ token_dim: 7 }, 'adapter/adapter_config.json/token_dim'],
      [{ num_virtual_tokens: 0 }, 'adapter/adapter_config.json/num_virtual_tokens'],
      [{ num_virtual_tokens: P + 1 }, `adapter/adapter_model.safetensors/${PROMPT_EMBEDDINGS}`],
      [{ base_model_name_or_path: 'nowhere' }, 'adapter/adapter_config.json/base_model_name_or_path'],
    ] as const) {
      const refused = await upload('bad-prompt', edit);
      expect(refused.statusCode, JSON.stringify(edit)).toBe(400);
      expect(refused.json().error.field).toBe(field);
    }
    expect(await api.app.services.prisma.model.count({ where: { teamId: team.team.id } })).toBe(models);
    expect(await api.app.services.artifacts.list('uploads/models/')).toEqual([]);
    const alone = await upload('prompt-alone', {});
    expect(alone.statusCode, alone.body).toBe(201);
    const fromUpload = await client.completions.create({
      model: 'prompt-alone',
      prompt: PROMPT,
      max_tokens: NEW,
      temperature: 0,
      logprobs: 0,
    });
    const uploaded = fromUpload.choices[0].logprobs?.token_logprobs ?? [];
    expect(uploaded.length).toBe(served[0].length);
    const uploadDiff = Math.max(...uploaded.map((lp, t) => Math.abs((lp as number) - served[0][t])));
    console.log(
      `the prompt uploaded alone vs its run's ft: model: log-probs within ${uploadDiff.toExponential(2)}`,
    );
    expect(uploadDiff).toBeLessThanOrEqual(1e-6);
    // Its base files are hard links of the registered base's: still the one loaded base.
    expect(inference.loadedModels()).toEqual([registered.key]);

    // A LoRA run on the model with the prompt starts from its base weights (a prompt is served, not continued).
    const aloneId = (alone.json() as { id: string }).id;
    const loraRun = await waitForRun(
      runs,
      (
        await runs.createRun({
          model: { modelId: aloneId },
          stages: [
            {
              kind: 'sft',
              datasetId: await uploadDataset(api.app, team.headers, 'sft', [
                { prompt: PROMPT, response: '1 2 3' },
              ]),
              config: { maxSteps: 2, batchSize: 1, lora: { r: 2 } },
            },
          ],
        })
      ).id,
    );
    expect(loraRun.error).toBeNull();
    expect(loraRun.status).toBe('succeeded');

    // The prompt stage's model.tar (its base unchanged + adapter/) re-imports as base + prompt: it answers the same.
    const stageId = (await runs.getRun(runIds[0])).stages[0].id;
    const download = await api.app.inject({
      method: 'GET',
      url: `/v1/runs/${runIds[0]}/stages/${stageId}/model.tar`,
      headers: team.headers,
    });
    expect(download.statusCode).toBe(200);
    const reimport = await api.app.inject({
      method: 'POST',
      url: '/v1/models?name=prompt-stage-tar',
      headers: { ...team.headers, 'content-type': 'application/x-tar' },
      payload: download.rawPayload,
    });
    expect(reimport.statusCode, reimport.body).toBe(201);
    const fromTar = await client.completions.create({
      model: 'prompt-stage-tar',
      prompt: PROMPT,
      max_tokens: NEW,
      temperature: 0,
      logprobs: 0,
    });
    const tarLogprobs = fromTar.choices[0].logprobs?.token_logprobs ?? [];
    expect(fromTar.choices[0].text).toBe(fromUpload.choices[0].text);
    expect(tarLogprobs.length).toBe(served[0].length);
    const tarDiff = Math.max(...tarLogprobs.map((lp, t) => Math.abs((lp as number) - served[0][t])));
    console.log(
      `the prompt stage's model.tar re-imported vs its ft: model: log-probs within ${tarDiff.toExponential(2)}`,
    );
    expect(tarDiff).toBeLessThanOrEqual(1e-5);
  }, 600_000);
});
