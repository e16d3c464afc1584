// RAFT with a LoRA adapter on sort-digits: the frozen SFT policy is the base and the KL reference, only the adapter
// (and its AdamW moments) trains and is checkpointed, and the ground truth rises as with full RAFT.
import { mkdtemp, rm as remove } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftMetrics } from '@rlhf/contracts';
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  adapterSize,
  loraSettingsOf,
  mergeLora,
  presetConfig,
  readSafetensors,
} from '@rlhf/model';
import { meanGroundTruth, ppoPrompts, rewardModel, sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { directoryCheckpointStore, type ModelWeights } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { trainRaft } from './raft.js';

const tiny = presetConfig('tiny');
const lora = { r: 8, alpha: 16, targetModules: ['c_attn', 'c_proj', 'c_fc'] };
let runtime: Runtime;
let sft: ModelWeights;
let rm: ModelWeights;
let dir: string;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  sft = await sftPolicy(runtime);
  rm = await rewardModel(runtime);
  dir = await mkdtemp(join(tmpdir(), 'raft-lora-'));
}, 600_000);
afterAll(async () => {
  await runtime.close();
  await remove(dir, { recursive: true, force: true });
});

test('LoRA RAFT raises the ground truth; the base is the KL reference; only the adapter trains and is saved', async () => {
  const held = generatePromptRows(96, { seed: 901 });
  const before = await meanGroundTruth(runtime, sft, held, [1, 2]);
  const sftCopy = new Map([...sft.params].map(([k, v]) => [k, v.slice()]));
  const metrics: Record<string, number>[] = [];
  const store = directoryCheckpointStore(join(dir, 'ckpt'));
  const result = await trainRaft({
    config: {
      iterations: 8,
      promptsPerIteration: 32,
      samplesPerPrompt: 4,
      keepPerPrompt: 1,
      stepsPerIteration: 4,
      batchSize: 16,
      // An adapter learns with a larger step than the full policy (full RAFT: lr 1e-4, raft.test.ts); from the
      // 0.697 SFT fixture lr 2e-3 gained only +0.014, 4e-3 gains +0.058.
      lr: 4e-3,
      maxNewTokens: 12,
      checkpointEvery: 8,
      sampleEvery: 4,
      lora,
    },
    policy: sft,
    rewardModel: rm,
    prompts: ppoPrompts(512),
    runtime,
    groundTruth: groundTruthScore,
    hooks: { checkpoints: store, onMetrics: (_, values) => void metrics.push(values) },
  });
  const after = await meanGroundTruth(runtime, result.model, held, [1, 2]);
  console.log(JSON.stringify({ lora: true, before, after, first: metrics[0], last: metrics.at(-1) }));
  // Full RAFT's threshold (raft.test.ts) is +0.05; LoRA's is stated lower, +0.03 (0.697 -> 0.755 measured).
  expect(after).toBeGreaterThan(before + 0.03);
  for (const m of metrics) expect(m[RaftMetrics.rewardKept]).toBeGreaterThan(m[RaftMetrics.rewardAll]);
  // B = 0 at the start: the first samples come from the base itself, so their KL to the reference (the base) is 0.
  expect(Math.abs(metrics[0][RaftMetrics.kl])).toBeLessThan(1e-3);
  expect(result.summary[RaftMetrics.kl]).toBeGreaterThan(0);

  // The base never changed; the output is base + s·BA; the checkpoint is the adapter and its two moments.
  for (const [name, data] of sft.params) expect(data).toEqual(sftCopy.get(name));
  const settings = loraSettingsOf({ ...lora, dropout: 0, useRslora: false, modulesToSave: [] }, tiny);
  const adapter = result.adapter!;
  expect(adapter.settings).toEqual(settings);
  const merged = mergeLora(tiny, settings, sft.params, adapter.params);
  for (const [name, data] of merged) expect(result.model.params.get(name)).toEqual(data);
  const saved = await store.latest();
  expect(Object.keys(saved?.files ?? {}).sort()).toEqual(
    [ADAPTER_CONFIG, ADAPTER_WEIGHTS, 'optimizer.safetensors', 'trainer.json'].sort(),
  );
  const moments = [...readSafetensors(saved?.files['optimizer.safetensors'] as Uint8Array).tensors.values()];
  expect(moments.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0)).toBe(
    2 * adapterSize(tiny, settings),
  );
  expect(result.hyperparameters.effective).toMatchObject({
    lora: { trainableParams: adapterSize(tiny, settings) },
  });
}, 900_000);
