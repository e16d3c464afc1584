// A PEFT adapter as a registered model's starting point, over REST with a real worker: the adapter a LoRA SFT run
// exported (final/adapter/) is uploaded beside the same base (adapter/ in the model's tar); base + that adapter,
// merged here by hand in float64, gives the run's merged model's logits; a LoRA SFT run on it continues the
// adapter (its step-0 eval loss is the exporting run's last, not the base's). Bad adapters are 400 naming the file
// and field or tensor, nothing stored; a run whose lora does not describe the adapter is 400 naming the field.
// The stage's model.tar re-imports as its merged checkpoint (adapter/ dropped) and answers as the stage's ft: model.
// The adapter uploaded alone, naming the registered base, registers with the base's files linked in and answers as
// the upload of both; bad ones (config, tensors, base name) are 400 naming the field, nothing stored.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeTar } from '@rlhf/artifacts';
import { SftMetrics } from '@rlhf/contracts';
import { createApiClient, stageOf, waitForRun } from '@rlhf/demo';
import { sortDigitsFiles } from '@rlhf/examples';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  readSafetensors,
  tensorToFloat32,
  writeSafetensors,
} from '@rlhf/model';
import { referenceLlamaForward } from '@rlhf/model/testing/reference';
import { createLogger } from '@rlhf/config';
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
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

const text = (value: string) => new TextEncoder().encode(value);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const FIELD = 'adapter/adapter_config.json/base_model_name_or_path';

/** HF-named float tensors of a safetensors file. */
function tensorsOf(bytes: Uint8Array): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [key, t] of readSafetensors(bytes).tensors) out.set(key, tensorToFloat32(t, key));
  return out;
}

/** W + (α/r)·B·A on each adapted HF weight, in float64 (written here, apart from the model package's merge). */
function mergeByHand(
  base: Map<string, Float32Array>,
  adapter: Map<string, Float32Array>,
  rank: number,
  scale: number,
) {
  const merged = new Map<string, Float32Array | Float64Array>(base);
  for (const [key, a] of adapter) {
    if (!key.endsWith('.lora_A.weight')) continue;
    const module = key.slice('base_model.model.'.length, -'.lora_A.weight'.length);
    const b = adapter.get(`base_model.model.${module}.lora_B.weight`) as Float32Array;
    const w = base.get(`${module}.weight`) as Float32Array;
    const inF = a.length / rank; // A is [r, in], B [out, r], W [out, in]
    const out = b.length / rank;
    const m = new Float64Array(w.length);
    for (let o = 0; o < out; o++)
      for (let i = 0; i < inF; i++) {
        let delta = 0;
        for (let k = 0; k < rank; k++) delta += b[o * rank + k] * a[k * inF + i];
        m[o * inF + i] = w[o * inF + i] + scale * delta;
      }
    merged.set(`${module}.weight`, m);
  }
  return merged;
}

describe('a PEFT adapter as a registered model', () => {
  let api: TestApi;
  let worker: RunningWorker;
  let inference: RunningInferenceWorker;
  let team: TestTeam;
  const upload = (name: string, files: Record<string, Uint8Array>) =>
    api.app.inject({
      method: 'POST',
      url: `/v1/models?name=${encodeURIComponent(name)}`,
      headers: { ...team.headers, 'content-type': 'application/x-tar' },
      payload: Buffer.from(writeTar(files)),
    });

  beforeAll(async () => {
    api = await startApi();
    team = await createTestTeam(api.app, { requestsPerMinute: 10_000 });
    worker = await startTestWorker(api, 'lora-import-worker');
    inference = await startInferenceWorker({
      redisUrl: api.options.redisUrl,
      artifactDir: api.artifactDir,
      device: 'cpu',
      workerId: 'lora-import-inference',
      logger: createLogger('lora-import-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
      prefix: api.prefix,
      models: 3,
    });
  }, 120_000);
  afterAll(async () => {
    await inference?.close();
    await worker?.close();
    await api?.close();
  });

  test('re-imports with identical outputs, continues training, refuses bad adapters', async () => {
    const url = await baseUrl(api.app);
    const client = createApiClient(url, team.key);
    const baseFiles = tinyLlamaFiles();
    const base = await registerModel(api.app, team.headers, 'tiny-llama-base', baseFiles);
    const sft = (await client.uploadDataset('sort-sft', 'sft', await readFile(sortDigitsFiles.sft, 'utf8')))
      .id;
    const config = { maxSteps: 12, batchSize: 8, stepsPerCall: 4, evalEvery: 12, lr: 1e-2, lora: { r: 4 } };
    const runOn = (modelId: string, lora: object = config.lora) => ({
      model: { modelId },
      stages: [{ kind: 'sft', datasetId: sft, config: { ...config, lora } }],
    });

    const first = await waitForRun(client, (await client.createRun(runOn(base.id))).id);
    expect(first.error).toBeNull();
    const firstStage = stageOf(first, 'sft');
    const key = (await api.app.services.prisma.stage.findUniqueOrThrow({ where: { id: firstStage.id } }))
      .modelKey as string;
    const exported = {
      [ADAPTER_CONFIG]: new Uint8Array(await readFile(join(api.artifactDir, key, 'adapter', ADAPTER_CONFIG))),
      [ADAPTER_WEIGHTS]: new Uint8Array(
        await readFile(join(api.artifactDir, key, 'adapter', ADAPTER_WEIGHTS)),
      ),
    };
    const peftConfig = JSON.parse(decode(exported[ADAPTER_CONFIG]));
    const withAdapter = (files: Record<string, Uint8Array>) => ({
      ...baseFiles,
      ...Object.fromEntries(Object.entries(files).map(([name, bytes]) => [`adapter/${name}`, bytes])),
    });

    // Bad adapters: 400 naming the file and the field or tensor; nothing stored.
    const adapterTensors = readSafetensors(exported[ADAPTER_WEIGHTS]).tensors;
    const vProj = [...adapterTensors.keys()].find((k) => k.includes('v_proj.lora_A')) as string;
    const editConfig = (edit: object) => text(JSON.stringify({ ...peftConfig, ...edit }));
    const cases: [string, Record<string, Uint8Array>, string][] = [
      ['r = 0', { ...exported, [ADAPTER_CONFIG]: editConfig({ r: 0 }) }, 'adapter/adapter_config.json/r'],
      [
        'GPT-2 module on a Llama',
        { ...exported, [ADAPTER_CONFIG]: editConfig({ target_modules: ['c_attn'] }) },
        'adapter/adapter_config.json/target_modules',
      ],
      [
        'not LoRA',
        { ...exported, [ADAPTER_CONFIG]: editConfig({ peft_type: 'PREFIX_TUNING' }) },
        'adapter/adapter_config.json/peft_type',
      ],
      [
        'r in the config unlike the tensors',
        { ...exported, [ADAPTER_CONFIG]: editConfig({ r: 8 }) },
        'adapter/adapter_model.safetensors/base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
      ],
      [
        'a tensor of a module the config does not target',
        { ...exported, [ADAPTER_CONFIG]: editConfig({ target_modules: ['q_proj'] }) },
        `adapter/adapter_model.safetensors/${vProj}`,
      ],
      [
        'lora_B wider than the base',
        {
          ...exported,
          [ADAPTER_WEIGHTS]: writeSafetensors(
            new Map(
              [...adapterTensors].map(([k, t]) => {
                if (!k.endsWith('q_proj.lora_B.weight'))
                  return [k, { dtype: 'F32', shape: t.shape, data: tensorToFloat32(t, k) }];
                const [out, r] = t.shape;
                return [k, { dtype: 'F32', shape: [out + 1, r], data: new Float32Array((out + 1) * r) }];
              }),
            ),
            { format: 'pt' },
          ),
        },
        'adapter/adapter_model.safetensors/base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
      ],
      [
        'one of the two files',
        { [ADAPTER_CONFIG]: exported[ADAPTER_CONFIG] },
        'adapter/adapter_model.safetensors',
      ],
    ];
    for (const [what, files, field] of cases) {
      const refused = await upload(`bad-${what}`, withAdapter(files));
      expect(refused.statusCode, what).toBe(400);
      expect(refused.json().error.field, what).toBe(field);
      expect(await api.app.services.prisma.model.count({ where: { teamId: team.team.id } }), what).toBe(1);
      expect(await api.app.services.artifacts.list('uploads/models/'), what).toEqual([]);
    }

    // The stage's model.tar is its merged model with the adapter beside it: it re-imports as the merged checkpoint
    // alone (applying the adapter again would count it twice), the stage's model byte for byte.
    const download = await api.app.inject({
      method: 'GET',
      url: `/v1/runs/${first.id}/stages/${firstStage.id}/model.tar`,
      headers: team.headers,
    });
    expect(download.statusCode).toBe(200);
    const reimport = await api.app.inject({
      method: 'POST',
      url: '/v1/models?name=stage-model-tar',
      headers: { ...team.headers, 'content-type': 'application/x-tar' },
      payload: download.rawPayload,
    });
    expect(reimport.statusCode, reimport.body).toBe(201);
    const reimported = reimport.json() as { id: string; files: { name: string; sha256: string }[] };
    expect(reimported.files.some((f) => f.name.startsWith('adapter/'))).toBe(false);
    const reimportedRow = await api.app.services.prisma.model.findUniqueOrThrow({
      where: { id: reimported.id },
    });
    expect(existsSync(join(api.artifactDir, reimportedRow.key, 'adapter'))).toBe(false);
    expect(readFileSync(join(api.artifactDir, reimportedRow.key, 'model.safetensors'))).toEqual(
      readFileSync(join(api.artifactDir, key, 'hf', 'model.safetensors')),
    );
    expect(await api.app.services.artifacts.list('uploads/models/')).toEqual([]);

    // As a PEFT user's adapter names its hub base: the name plays no part (the API points it at the upload).
    const asPeftWrites = {
      ...exported,
      [ADAPTER_CONFIG]: editConfig({ base_model_name_or_path: 'org/tiny-llama' }),
    };
    const imported = await upload('tiny-llama-sorted', withAdapter(asPeftWrites));
    expect(imported.statusCode, imported.body).toBe(201);
    const model = imported.json() as { id: string; files: { name: string }[] };
    expect(model.files.map((f) => f.name)).toEqual(
      expect.arrayContaining([`adapter/${ADAPTER_CONFIG}`, `adapter/${ADAPTER_WEIGHTS}`]),
    );

    // Identical outputs: the run's merged model vs the base + the adapter as stored, merged here.
    const row = await api.app.services.prisma.model.findUniqueOrThrow({ where: { id: model.id } });
    const stored = tensorsOf(
      new Uint8Array(await readFile(join(api.artifactDir, row.key, 'adapter', ADAPTER_WEIGHTS))),
    );
    const hfConfig = JSON.parse(decode(baseFiles['config.json']));
    const byHand = mergeByHand(
      tensorsOf(baseFiles['model.safetensors']),
      stored,
      peftConfig.r,
      peftConfig.lora_alpha / peftConfig.r,
    );
    const runMerged = tensorsOf(
      new Uint8Array(await readFile(join(api.artifactDir, key, 'hf', 'model.safetensors'))),
    );
    const tokens = [
      [256, 51, 52, 49, 58, 32, 49, 50],
      [256, 57, 48, 55, 58, 32, 48, 55],
    ];
    const a = referenceLlamaForward(hfConfig, byHand, tokens);
    const b = referenceLlamaForward(hfConfig, runMerged, tokens);
    const baseLogits = referenceLlamaForward(hfConfig, tensorsOf(baseFiles['model.safetensors']), tokens);
    let diff = 0;
    let moved = 0;
    for (let r = 0; r < a.length; r++)
      for (let t = 0; t < a[r].length; t++)
        for (let v = 0; v < a[r][t].length; v++) {
          diff = Math.max(diff, Math.abs(a[r][t][v] - b[r][t][v]));
          moved = Math.max(moved, Math.abs(a[r][t][v] - baseLogits[r][t][v]));
        }
    console.log(
      `logits: merged by hand vs the run's merged model ${diff.toExponential(2)}; vs the base ${moved.toFixed(3)}`,
    );
    expect(diff).toBeLessThanOrEqual(1e-5);
    expect(moved).toBeGreaterThan(1e-2); // the adapter trained: the comparison is not of two bases

    expect(
      JSON.parse(await readFile(join(api.artifactDir, row.key, 'adapter', ADAPTER_CONFIG), 'utf8'))
        .base_model_name_or_path,
    ).toBe(row.key);

    // Served (chat completions): the upload answers as the run's merged model, uploaded as a plain model, does.
    const mergedFiles = Object.fromEntries(
      [
        'config.json',
        'generation_config.json',
        'model.safetensors',
        'tokenizer.json',
        'tokenizer_config.json',
      ]
        .filter((f) => existsSync(join(api.artifactDir, key, 'hf', f)))
        .map((f) => [f, new Uint8Array(readFileSync(join(api.artifactDir, key, 'hf', f)))]),
    );
    await registerModel(api.app, team.headers, 'run-merged', mergedFiles);
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: team.key, maxRetries: 0 });
    const ask = (name: string) =>
      openai.chat.completions.create({
        model: name,
        messages: [{ role: 'user', content: '3 1 2' }],
        max_tokens: 6,
        temperature: 0,
        logprobs: true,
      });
    const served = (await ask('tiny-llama-sorted')).choices[0];
    const reference = (await ask('run-merged')).choices[0];
    expect(served.message.content).toBe(reference.message.content);
    const got = served.logprobs?.content ?? [];
    const want = reference.logprobs?.content ?? [];
    expect(got.length).toBe(want.length);
    expect(got.length).toBeGreaterThan(0);
    const logprobDiff = Math.max(...got.map((t, i) => Math.abs(t.logprob - want[i].logprob)));
    console.log(
      `served base + adapter vs merged: ${got.length} tokens, log-probs within ${logprobDiff.toExponential(2)}`,
    );
    expect(logprobDiff).toBeLessThanOrEqual(1e-5);
    expect(inference.loadedAdapters()).toContain(row.key);

    // The re-imported model.tar answers greedily as the stage's own model does (its ft: model: base + adapter).
    const own = (await ask(`ft:tiny-llama-base:${team.team.name}::${first.id}`)).choices[0];
    const fromTar = (await ask('stage-model-tar')).choices[0];
    expect(fromTar.message.content).toBe(own.message.content);
    const ownLp = own.logprobs?.content ?? [];
    const tarLp = fromTar.logprobs?.content ?? [];
    expect(tarLp.map((t) => t.token)).toEqual(ownLp.map((t) => t.token));
    expect(tarLp.length).toBeGreaterThan(0);
    const tarDiff = Math.max(...tarLp.map((t, i) => Math.abs(t.logprob - ownLp[i].logprob)));
    console.log(
      `re-imported model.tar vs the stage's ft: model: ${tarLp.length} tokens, log-probs within ${tarDiff.toExponential(2)}`,
    );
    expect(tarDiff).toBeLessThanOrEqual(1e-5);

    // The adapter alone, as PEFT's save_pretrained lays it out (its files at the tar's top), on the registered base
    // that base_model_name_or_path names: the base's files are linked in, not uploaded again.
    const adapterOnly = (files: Record<string, Uint8Array>) =>
      Object.fromEntries(Object.entries(files).map(([name, bytes]) => [`my-adapter/${name}`, bytes]));
    const onBase = (edit: object = {}) => ({
      ...exported,
      [ADAPTER_CONFIG]: editConfig({ base_model_name_or_path: 'tiny-llama-base', ...edit }),
    });
    const other = await createTestTeam(api.app);
    const othersModel = await registerModel(api.app, other.headers, 'tiny-llama-base');
    const before = await api.app.services.prisma.model.count({ where: { teamId: team.team.id } });
    const adapterOnlyCases: [string, Record<string, Uint8Array>, string][] = [
      ['r = 0', onBase({ r: 0 }), 'adapter/adapter_config.json/r'],
      [
        'an unknown target module',
        onBase({ target_modules: ['c_attn'] }),
        'adapter/adapter_config.json/target_modules',
      ],
      [
        'lora_B wider than the base',
        {
          ...onBase(),
          [ADAPTER_WEIGHTS]: (
            cases.find(([w]) => w === 'lora_B wider than the base') as (typeof cases)[0]
          )[1][ADAPTER_WEIGHTS],
        },
        'adapter/adapter_model.safetensors/base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
      ],
      ['a hub name', onBase({ base_model_name_or_path: 'org/tiny-llama' }), FIELD],
      ['no base named', onBase({ base_model_name_or_path: null }), FIELD],
      ["another team's model", onBase({ base_model_name_or_path: othersModel.id }), FIELD],
      ['a model that carries an adapter', onBase({ base_model_name_or_path: 'tiny-llama-sorted' }), FIELD],
      [
        'one of the two files',
        { [ADAPTER_CONFIG]: onBase()[ADAPTER_CONFIG] },
        'adapter/adapter_model.safetensors',
      ],
    ];
    for (const [what, files, field] of adapterOnlyCases) {
      const refused = await upload(`adapter-only-${what}`, adapterOnly(files));
      expect(refused.statusCode, what).toBe(400);
      expect(refused.json().error.field, what).toBe(field);
      expect(await api.app.services.prisma.model.count({ where: { teamId: team.team.id } }), what).toBe(
        before,
      );
      expect(await api.app.services.artifacts.list('uploads/models/'), what).toEqual([]);
    }
    const alone = await upload('tiny-llama-sorted-alone', adapterOnly(onBase()));
    expect(alone.statusCode, alone.body).toBe(201);
    const aloneModel = alone.json() as { id: string; files: { name: string }[]; parameterCount: number };
    expect(aloneModel.files.map((f) => f.name).sort()).toEqual(model.files.map((f) => f.name).sort());
    expect(aloneModel.parameterCount).toBe((imported.json() as { parameterCount: number }).parameterCount);
    const aloneRow = await api.app.services.prisma.model.findUniqueOrThrow({ where: { id: aloneModel.id } });
    const baseRow = await api.app.services.prisma.model.findUniqueOrThrow({ where: { id: base.id } });
    const weightsOf = (k: string) => join(api.artifactDir, k, 'model.safetensors');
    expect(statSync(weightsOf(aloneRow.key)).ino).toBe(statSync(weightsOf(baseRow.key)).ino); // linked, not copied
    expect(Number(aloneRow.bytes)).toBeLessThan(statSync(weightsOf(baseRow.key)).size);
    const servedAlone = (await ask('tiny-llama-sorted-alone')).choices[0];
    expect(servedAlone.message.content).toBe(served.message.content);
    const aloneLp = servedAlone.logprobs?.content ?? [];
    expect(aloneLp.length).toBe(got.length);
    const aloneDiff = Math.max(...aloneLp.map((t, i) => Math.abs(t.logprob - got[i].logprob)));
    console.log(`adapter uploaded alone vs with its base: log-probs within ${aloneDiff.toExponential(2)}`);
    expect(aloneDiff).toBeLessThanOrEqual(1e-6);
    expect(inference.loadedAdapters()).toContain(aloneRow.key);
    // Its base files are the registered base's (hard links): served on that loaded base, not a second copy.
    expect(inference.loadedModels()).toContain(baseRow.key);
    expect(inference.loadedModels()).not.toContain(aloneRow.key);

    // A run whose lora is not the adapter's: 400 naming the field, no run stored.
    const runs = await api.app.services.prisma.run.count({ where: { teamId: team.team.id } });
    const mismatch = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${team.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(runOn(model.id, { r: 8, alpha: 64, targetModules: ['q_proj'] })),
    });
    expect(mismatch.status).toBe(400);
    const mismatchBody = JSON.stringify(await mismatch.json());
    expect(mismatchBody).toContain('/stages/0/config/lora/r');
    expect(mismatchBody).toContain('/stages/0/config/lora/targetModules');
    expect(mismatchBody).toContain('/stages/0/config/lora/alpha');
    expect(await api.app.services.prisma.run.count({ where: { teamId: team.team.id } })).toBe(runs);

    // Continuing: the second run (on the adapter uploaded alone) starts where the first stopped.
    const second = await waitForRun(client, (await client.createRun(runOn(aloneModel.id))).id);
    expect(second.error).toBeNull();
    const secondStage = stageOf(second, 'sft');
    const series = async (run: string, stageId: string, name: string) =>
      (await client.metrics(run, { stageId, name })).sort((x, y) => x.step - y.step);
    const firstEval = await series(first.id, firstStage.id, SftMetrics.evalLoss);
    const secondEval = await series(second.id, secondStage.id, SftMetrics.evalLoss);
    const firstLoss = await series(first.id, firstStage.id, SftMetrics.loss);
    const secondLoss = await series(second.id, secondStage.id, SftMetrics.loss);
    console.log(
      `eval loss: first run ${firstEval.map((p) => `${p.step}:${p.value.toFixed(4)}`).join(' ')}; second ${secondEval.map((p) => `${p.step}:${p.value.toFixed(4)}`).join(' ')}`,
    );
    console.log(
      `train loss: first run step 1 ${firstLoss[0].value.toFixed(4)}, last ${firstLoss.at(-1)?.value.toFixed(4)}; second step 1 ${secondLoss[0].value.toFixed(4)}`,
    );
    // The same held-out rows on the same weights: the second run's step-0 eval is the first's last.
    expect(secondEval[0].step).toBe(0);
    expect(Math.abs(secondEval[0].value - (firstEval.at(-1)?.value as number))).toBeLessThan(1e-4);
    expect(firstEval[0].value - secondEval[0].value).toBeGreaterThan(0.1);
    expect(secondLoss[0].step).toBe(1);
    const last = firstLoss.at(-1)?.value as number;
    expect(Math.abs(secondLoss[0].value - last)).toBeLessThan(
      Math.abs(secondLoss[0].value - firstLoss[0].value),
    );
    expect(Math.abs(secondLoss[0].value - last) / last).toBeLessThan(0.25);
  }, 600_000);
});
