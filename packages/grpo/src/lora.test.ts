// GRPO with a LoRA policy: the reference (the base, adapter off, in the rollout scoring graph) equals the base
// scored on its own; the policy's scores equal the merged model's; on sort-digits the adapter alone raises the
// held-out ground truth over the SFT fixture, with optimizer state the size of the adapter.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GrpoMetrics, type GrpoConfigInput } from '@rlhf/contracts';
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import {
  adapterSize,
  createRng,
  createScorer,
  initLora,
  initParams,
  type LoraSettings,
  loraSettingsOf,
  mergeLora,
  presetConfig,
  readSafetensors,
  shapeSize,
  paramShapes,
} from '@rlhf/model';
import { meanGroundTruth, ppoPrompts, sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { directoryCheckpointStore, type ModelWeights, modelFiles, modelFromFiles } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { trainGrpo } from './grpo.js';
import { createLoraRolloutScorer } from './lora.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
}, 600_000);
afterAll(() => runtime.close());

const maxAbsDiff = (a: number[][], b: number[][], mask: number[][]) => {
  let worst = 0;
  a.forEach((row, r) => {
    row.forEach((x, t) => {
      if (mask[r][t]) worst = Math.max(worst, Math.abs(x - b[r][t]));
    });
  });
  return worst;
};

describe('the LoRA rollout scorer', () => {
  test('reference = a separately loaded base (≤ 1e-6); policy = the merged model (≤ 1e-5)', async () => {
    const config = presetConfig('tiny');
    const base = initParams(config, 3);
    const settings: LoraSettings = {
      r: 4,
      alpha: 8,
      dropout: 0,
      targetModules: ['c_attn', 'c_proj', 'c_fc'],
      useRslora: false,
      modulesToSave: [],
    };
    // A trained-looking adapter: B ≠ 0, so adapter on and off differ.
    const adapter = initLora(config, settings, base, 5);
    const rng = createRng(9, 'lora-b');
    for (const [name, data] of adapter)
      if (name.endsWith('lora_B.weight'))
        for (let i = 0; i < data.length; i++) data[i] = 0.2 * (rng.uniform() - 0.5);
    const rows = {
      prompts: [
        [1, 40, 41, 42],
        [1, 50, 51],
      ],
      padId: 0,
      responses: [
        [60, 61, 62, 2],
        [70, 71, 0, 0],
      ],
      responseMask: [
        [1, 1, 1, 1],
        [1, 1, 0, 0],
      ],
    };
    const scorer = await createLoraRolloutScorer(runtime, config, settings, { reference: true });
    const lora = await scorer.score({ ...rows, base, adapter, temperature: 0.7 });
    await scorer.release();

    const loaded = await modelFromFiles(await modelFiles({ config, params: base }));
    const plain = await createScorer(runtime, config, { outputs: ['logprobs', 'entropy'] });
    const reference = await plain.score({ ...rows, params: loaded.params, temperature: 0.7 });
    const merged = await plain.score({
      ...rows,
      params: mergeLora(config, settings, base, adapter),
      temperature: 0.7,
    });
    await plain.release();
    expect(maxAbsDiff(lora.refLogprobs!, reference.logprobs!, rows.responseMask)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(lora.logprobs, merged.logprobs!, rows.responseMask)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(lora.entropy, merged.entropy!, rows.responseMask)).toBeLessThanOrEqual(1e-5);
    // The adapter changes the policy: the comparison above is not of two equal things.
    expect(maxAbsDiff(lora.logprobs, lora.refLogprobs!, rows.responseMask)).toBeGreaterThan(1e-3);
  });
});

describe('LoRA GRPO on sort-digits', () => {
  let sft: ModelWeights;
  let dir: string;
  const held = generatePromptRows(96, { seed: 901 });
  beforeAll(async () => {
    sft = await sftPolicy(runtime);
    dir = await mkdtemp(join(tmpdir(), 'grpo-lora-'));
  }, 600_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test('the adapter alone raises the held-out ground truth; optimizer state is the adapter’s size', async () => {
    const before = await meanGroundTruth(runtime, sft, held, [1, 2]);
    const lora = { r: 8, alpha: 16, targetModules: ['c_attn', 'c_proj', 'c_fc'] };
    const config: GrpoConfigInput = {
      iterations: 12,
      promptsPerIteration: 16,
      groupSize: 8,
      minibatches: 2,
      lr: 1e-3,
      maxNewTokens: 12,
      reward: 'sort-digits',
      checkpointEvery: 12,
      sampleEvery: 12,
      lora,
    };
    const metrics: Record<string, number>[] = [];
    const result = await trainGrpo({
      config,
      policy: sft,
      task: groundTruthScore,
      prompts: ppoPrompts(512),
      runtime,
      baseModel: 'sft-fixture',
      hooks: {
        checkpoints: directoryCheckpointStore(dir),
        onMetrics: (_, values) => void metrics.push(values),
      },
    });
    const after = await meanGroundTruth(runtime, result.model, held, [1, 2]);
    console.info(
      `LoRA GRPO sort-digits ground truth (held-out): SFT ${before.toFixed(3)} -> ${after.toFixed(3)}; ` +
        `KL ${metrics.at(-1)?.[GrpoMetrics.kl].toFixed(4)}`,
    );
    expect(after).toBeGreaterThan(before + 0.08); // full GRPO: + 0.1 at lr 1e-4; measured + 0.128 here
    expect(metrics.at(-1)![GrpoMetrics.kl]).toBeLessThan(1);

    // The adapter, its PEFT files, and AdamW moments for the adapter's tensors only (m and v: 2 × its size).
    const settings = loraSettingsOf({ ...lora, dropout: 0, useRslora: false, modulesToSave: [] }, sft.config);
    const size = adapterSize(sft.config, settings);
    const full = paramShapes(sft.config).reduce((n, p) => n + shapeSize(p.shape), 0);
    expect(result.adapter?.files['adapter_config.json']).toBeDefined();
    const moments = readSafetensors(await readFile(join(dir, 'step-12', 'optimizer.safetensors'))).tensors;
    const values = [...moments.values()].reduce((n, t) => n + shapeSize(t.shape), 0);
    expect(values).toBe(2 * size);
    expect(size).toBeLessThan(0.25 * full);
    console.info(`LoRA GRPO: adapter ${size} values, model ${full}; optimizer state ${values} values`);
  }, 900_000);
});
