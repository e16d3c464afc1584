import { type RunSpec, validateRunSpec } from '@rlhf/contracts';
import type { GptConfig } from '@rlhf/model';
import { expect, test } from 'vitest';
import { loraErrors, loraErrorsOf } from './lora-checks.js';

const spec = (stages: unknown[]): RunSpec => {
  const result = validateRunSpec(
    { model: { preset: 'tiny' }, stages },
    { datasets: { demos: 'sft', lists: 'ranked', prompts: 'prompt' } },
  );
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.spec;
};

/** A Llama-family architecture as a registered model's config.json is stored (parsed). */
const llama: GptConfig = {
  architecture: 'llama',
  vocabSize: 64,
  maxPositions: 32,
  nEmbd: 16,
  nLayer: 1,
  nHead: 2,
  intermediateSize: 32,
  numKvHeads: 1,
  headDim: 8,
  rmsNormEps: 1e-6,
  ropeTheta: 10_000,
  tieWordEmbeddings: false,
  qkvBias: false,
  oBias: false,
  qkNorm: false,
};

test('a module of another decoder family is refused at submission, naming the stage and field', () => {
  const run = spec([
    { kind: 'sft', datasetId: 'demos', config: { lora: { r: 4 } } },
    { kind: 'reward_model', datasetId: 'lists', config: { lora: { targetModules: ['q_proj'] } } },
    { kind: 'dpo', datasetId: 'lists', config: { lora: { targetModules: ['c_attn', 'mlp.c_fc'] } } },
    { kind: 'raft', datasetId: 'prompts', config: { lora: { modulesToSave: ['classifier'] } } },
  ]);
  const errors = loraErrors(run, 'tiny');
  expect(errors.map((e) => e.path)).toEqual([
    '/stages/1/config/lora/targetModules',
    '/stages/3/config/lora/modulesToSave',
  ]);
  expect(errors[0].message).toBe(
    "'q_proj' is no linear layer of this GPT-2 model (known: c_attn, c_proj, c_fc)",
  );
  expect(errors[1].message).toBe("'classifier' is no module of this model");
});

test('a reward model may name its score head; a policy stage may not (it has none)', () => {
  const run = spec([
    { kind: 'sft', datasetId: 'demos' },
    { kind: 'reward_model', datasetId: 'lists', config: { lora: { modulesToSave: ['score'] } } },
    { kind: 'dpo', datasetId: 'lists', config: { lora: { modulesToSave: ['score'] } } },
  ]);
  expect(loraErrors(run, 'tiny').map((e) => e.path)).toEqual(['/stages/2/config/lora/modulesToSave']);
});

test('a registered model is checked on its own architecture; no architecture known = no check', () => {
  const run = spec([
    { kind: 'sft', datasetId: 'demos' },
    { kind: 'dpo', datasetId: 'lists', config: { lora: { targetModules: ['c_attn'] } } },
  ]);
  expect(loraErrorsOf(run, null, llama).map((e) => e.path)).toEqual(['/stages/1/config/lora/targetModules']);
  expect(loraErrorsOf(run, 'tiny', null)).toEqual([]);
  expect(loraErrorsOf(run, null, undefined)).toEqual([]);
  const llamaRun = spec([
    { kind: 'sft', datasetId: 'demos' },
    { kind: 'dpo', datasetId: 'lists', config: { lora: { targetModules: ['q_proj', 'down_proj'] } } },
  ]);
  expect(loraErrorsOf(llamaRun, null, llama)).toEqual([]);
});
