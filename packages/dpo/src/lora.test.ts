// DPO with a LoRA adapter: the reference is the frozen base with the adapter off (one scoring graph, one copy of
// the base), checked against a separately loaded base; on sort-digits it raises the ground truth as full DPO
// does; only the adapter has AdamW state and only the adapter is checkpointed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DpoConfigInput, DpoMetrics, type RankedRow } from '@rlhf/contracts';
import { generatePromptRows, generateRankedRows } from '@rlhf/examples';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  adapterSize,
  ByteTokenizer,
  countParams,
  createLoraScorer,
  createScorer,
  initLora,
  initParams,
  loraSettingsOf,
  mergeLora,
  peftAdapterFromFiles,
  presetConfig,
  readSafetensors,
} from '@rlhf/model';
import { meanGroundTruth, sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import {
  directoryCheckpointStore,
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  type RankedExample,
  tokenizeRanking,
} from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { trainDpo } from './dpo.js';
import { trainPro } from './pro.js';
import { loraSequenceLogps } from './lora.js';
import { sequenceLogps } from './rankings.js';

const tiny = presetConfig('tiny');
const tokenizer = new ByteTokenizer();
const lora = { r: 8, alpha: 16, targetModules: ['c_attn', 'c_proj', 'c_fc'] };
const settings = loraSettingsOf({ ...lora, dropout: 0, useRslora: false, modulesToSave: [] }, tiny);
let runtime: Runtime;
let dir: string;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  dir = await mkdtemp(join(tmpdir(), 'dpo-lora-'));
});
afterAll(async () => {
  await runtime.close();
  await rm(dir, { recursive: true, force: true });
});

const examplesOf = (rows: readonly RankedRow[]): RankedExample[] =>
  rows.flatMap((row) => tokenizeRanking(tokenizer, row, 32)?.example ?? []);
const maxDiff = (a: readonly number[], b: readonly number[]) =>
  a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

describe('LoRA DPO (tiny preset)', () => {
  test('the reference is the base with the adapter off: equal to a separately loaded base within 1e-6', async () => {
    const base: ModelWeights = { config: tiny, params: initParams(tiny, 5) };
    // A trained-looking adapter (B ≠ 0), so that adapter on and adapter off really differ.
    const adapter = initLora(tiny, settings, base.params, 1);
    for (const [name, t] of adapter)
      if (name.endsWith('.lora_B.weight')) for (let i = 0; i < t.length; i++) t[i] = 0.05 * Math.sin(i + 1);
    const separately = await modelFromFiles(await modelFiles(base)); // another copy, read back from its files
    const examples = examplesOf(generateRankedRows(12, { seed: 4 }));

    const reference = await loraSequenceLogps(
      runtime,
      base,
      settings,
      adapter,
      examples,
      tokenizer.padId,
      'reference',
    );
    const policy = await loraSequenceLogps(
      runtime,
      base,
      settings,
      adapter,
      examples,
      tokenizer.padId,
      'policy',
    );
    const loaded = await sequenceLogps(runtime, separately, examples, tokenizer.padId);
    const merged = await sequenceLogps(
      runtime,
      { config: tiny, params: mergeLora(tiny, settings, base.params, adapter) },
      examples,
      tokenizer.padId,
    );
    const flat = (x: { sums: number[][] }) => x.sums.flat();
    expect(maxDiff(flat(reference), flat(loaded))).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(flat(policy), flat(loaded))).toBeGreaterThan(1e-2); // the adapter on is another policy …
    expect(maxDiff(flat(policy), flat(merged))).toBeLessThanOrEqual(1e-4); // … the merged model's

    // Per token too, with the adapter's scale fed as 0 (the same graph as the policy's log-probs).
    const scorer = await createLoraScorer(runtime, tiny, settings);
    const plain = await createScorer(runtime, tiny, { outputs: ['logprobs'] });
    const e = examples[0];
    const request = {
      prompts: e.responses.map(() => e.prompt),
      padId: tokenizer.padId,
      responses: e.responses.map((r) => [...r, ...new Array(16 - r.length).fill(tokenizer.padId)]),
      responseMask: e.responses.map((r) => [...r.map(() => 1), ...new Array(16 - r.length).fill(0)]),
    };
    const off = await scorer.score({ ...request, base: base.params, adapter, adapterScale: 0 });
    const want = (await plain.score({ ...request, params: separately.params })).logprobs!;
    expect(maxDiff(off.logprobs!.flat(), want.flat())).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(off.refLogprobs!.flat(), want.flat())).toBeLessThanOrEqual(1e-6);
    await scorer.release();
    await plain.release();
  });

  test('the reference-free objectives (PRO, RRHF, SimPO) train an adapter too; a separate reference is refused', async () => {
    const base: ModelWeights = { config: tiny, params: initParams(tiny, 6) };
    const rows = generateRankedRows(40, { seed: 5 });
    const short = { maxSteps: 4, batchSize: 4, stepsPerCall: 2, evalEvery: 4, maxSeqLen: 32, lr: 1e-3, lora };
    const runs = [
      await trainPro({ config: { ...short, objective: 'pro' }, model: base, rows, runtime }),
      await trainPro({ config: { ...short, objective: 'rrhf' }, model: base, rows, runtime }),
      await trainDpo({ config: { ...short, lossType: 'simpo' }, model: base, rows, runtime }),
    ];
    for (const result of runs) {
      expect(result.step).toBe(4);
      expect(result.hyperparameters.effective).toMatchObject({ reference: 'none', lora: { r: 8 } });
      expect(result.adapter?.files[ADAPTER_WEIGHTS]).toBeDefined();
      // B was 0 at the start and 4 steps moved it: the merged model differs from the base.
      const moved = [...result.adapter!.params].some(
        ([name, t]) => name.endsWith('.lora_B.weight') && t.some((x) => x !== 0),
      );
      expect(moved).toBe(true);
    }
    await expect(
      trainDpo({ config: { ...short }, model: base, reference: base, rows, runtime }),
    ).rejects.toThrow(/with lora the reference is the base/);
  });

  test('raises the sort-digits ground truth as full DPO does; AdamW state and checkpoints scale with the adapter', async () => {
    const sft = await sftPolicy(runtime);
    const sftCopy = new Map([...sft.params].map(([k, v]) => [k, v.slice()]));
    const heldOut = generatePromptRows(96, { seed: 901 });
    const seeds = [1, 2];
    const sftTruth = await meanGroundTruth(runtime, sft, heldOut, seeds);
    const rows = generateRankedRows(800, { seed: 77 });
    const config: DpoConfigInput = {
      maxSteps: 120,
      batchSize: 16,
      schedule: 'constant',
      maxSeqLen: 32,
      validationFraction: 0.1,
      evalEvery: 1_000_000,
      checkpointEvery: 120,
      stepsPerCall: 10,
      seed: 3,
      beta: 1,
    };
    const store = directoryCheckpointStore(join(dir, 'lora'));
    const result = await trainDpo({
      // An adapter learns with a larger step than the full model (full DPO here: lr 2e-4, learning.test.ts).
      config: { ...config, lr: 2e-3, lora },
      model: sft,
      rows,
      runtime,
      hooks: { checkpoints: store },
    });
    const truth = await meanGroundTruth(runtime, result.model, heldOut, seeds);
    console.log(JSON.stringify({ lora: true, sftTruth, truth, ...result.summary }));
    // Full DPO's thresholds (learning.test.ts) are +0.1 and 0.9; LoRA's (r 8, the same 120 steps) are stated
    // lower, as the share of the gap to a perfect score it closes: over 0.15, and 0.85 accuracy (measured: 0.662 ->
    // 0.769, a share of 0.32, and 0.898; with the stronger SFT fixture 0.697 -> 0.766, a share of 0.23, and 0.908).
    expect((truth - sftTruth) / (1 - sftTruth)).toBeGreaterThan(0.15);
    expect(result.summary[DpoMetrics.evalRewardsAccuracies]).toBeGreaterThanOrEqual(0.85);

    // The base never changed: it was a shared input, not an optimizer variable.
    for (const [name, data] of sft.params) expect(data).toEqual(sftCopy.get(name));
    const size = adapterSize(tiny, settings);
    expect(result.hyperparameters.effective).toMatchObject({
      reference: 'the base, adapter off',
      lora: { r: 8, trainableParams: size, baseParams: countParams(tiny) },
    });
    // The checkpoint: PEFT files and AdamW's two moments of the adapter's values only.
    const saved = await store.latest();
    expect(Object.keys(saved?.files ?? {}).sort()).toEqual(
      [ADAPTER_CONFIG, ADAPTER_WEIGHTS, 'optimizer.safetensors', 'trainer.json'].sort(),
    );
    const moments = [
      ...readSafetensors(saved?.files['optimizer.safetensors'] as Uint8Array).tensors.values(),
    ];
    expect(moments.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0)).toBe(2 * size);
    expect(size).toBeLessThan(countParams(tiny) / 5);
    // The stage's adapter: PEFT files that read back to its tensors; the model is base + s·BA.
    const adapter = result.adapter!;
    const reread = peftAdapterFromFiles(tiny, adapter.files);
    expect(reread.settings).toEqual(settings);
    for (const [name, data] of adapter.params) expect(reread.adapter.get(name)).toEqual(data);
    const merged = mergeLora(tiny, settings, sft.params, adapter.params);
    for (const [name, data] of merged) expect(result.model.params.get(name)).toEqual(data);
  }, 900_000);
});
