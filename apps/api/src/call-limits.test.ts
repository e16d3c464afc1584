import { type RunSpec, validateRunSpec } from '@rlhf/contracts';
import { countParams, presetConfig } from '@rlhf/model';
import { expect, test } from 'vitest';
import { callLimitErrors, DEFAULT_CALL_LIMITS } from './call-limits.js';

const spec = (preset: string, stages: unknown[]): RunSpec => {
  const result = validateRunSpec(
    { model: { preset }, stages },
    { datasets: { demos: 'sft', lists: 'ranked', prompts: 'prompt' } },
  );
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.spec;
};
const paths = (s: RunSpec, preset: 'tiny' | 'gpt2') => callLimitErrors(s, preset).map((e) => e.path);

test("issue 18 item 7's examples are refused at the field that sizes the call", () => {
  // tiny: 4096 rows × 64 positions × 128 fused steps = 33,554,432 tokens in one call, past 2^24.
  const tiny = spec('tiny', [
    { kind: 'sft', datasetId: 'demos', config: { batchSize: 4096, stepsPerCall: 128 } },
  ]);
  const [error] = callLimitErrors(tiny, 'tiny');
  expect(error.path).toBe('/stages/0/config/stepsPerCall');
  expect(error.message).toMatch(/carries 33554432 tokens, more than a worker's 16777216 per call/);
  // gpt2: 4096 × 1024 × 1024 fused steps.
  const gpt2 = spec('gpt2', [
    { kind: 'sft', datasetId: 'demos', config: { batchSize: 4096, maxSeqLen: 1024, stepsPerCall: 1024 } },
  ]);
  expect(paths(gpt2, 'gpt2')).toEqual(['/stages/0/config/stepsPerCall']);
});

test('a call within the token cap but past the time budget is refused; the message gives the estimate', () => {
  // gpt2, 64 rows × 1024 tokens × 8 steps = 524,288 tokens: 6 × 124,439,808 × 524,288 FLOPs ≈ 39 s at 1e13 FLOP/s.
  const s = spec('gpt2', [
    { kind: 'sft', datasetId: 'demos', config: { batchSize: 64, maxSeqLen: 1024, stepsPerCall: 8 } },
  ]);
  const seconds =
    (6 * countParams(presetConfig('gpt2')) * 64 * 1024 * 8) / DEFAULT_CALL_LIMITS.flopsPerSecond;
  expect(seconds).toBeCloseTo(39.1, 1);
  const [error] = callLimitErrors(s, 'gpt2');
  expect(error.path).toBe('/stages/0/config/stepsPerCall');
  expect(error.message).toMatch(/needs about 39 s on a fast worker/);
  // One step per call: the batch itself is what to lower.
  const one = spec('gpt2', [
    { kind: 'sft', datasetId: 'demos', config: { batchSize: 512, maxSeqLen: 1024, stepsPerCall: 1 } },
  ]);
  expect(paths(one, 'gpt2')).toEqual(['/stages/0/config/batchSize']);
});

test('sampling stages: the generation sizes promptsPerIteration / rolloutBatchSize, one update step minibatches', () => {
  const base = [
    { kind: 'sft', datasetId: 'demos' },
    { kind: 'reward_model', datasetId: 'lists' },
  ];
  const long = { maxPromptLen: 512, maxNewTokens: 512 };
  // GRPO on gpt2: 512 × 16 rows × 1024 tokens = 8.4M tokens: 2 × P × 8.4M ≈ 209 s of generation.
  const grpo = spec('gpt2', [
    ...base,
    { kind: 'grpo', datasetId: 'prompts', config: { promptsPerIteration: 512, groupSize: 16, ...long } },
  ]);
  expect(paths(grpo, 'gpt2')).toEqual(['/stages/2/config/promptsPerIteration']);
  // 8 × 32 rows generate in time (~6.5 s), but one update step over all 256 rows (minibatches 1) does not (~19.6 s).
  const update = spec('gpt2', [
    ...base,
    { kind: 'grpo', datasetId: 'prompts', config: { promptsPerIteration: 8, groupSize: 32, ...long } },
  ]);
  expect(paths(update, 'gpt2')).toEqual(['/stages/2/config/minibatches']);
  const ppo = spec('gpt2', [
    ...base,
    { kind: 'ppo', datasetId: 'prompts', config: { rolloutBatchSize: 1024, ...long } },
  ]);
  expect(paths(ppo, 'gpt2')).toEqual(['/stages/2/config/rolloutBatchSize']);
  const raft = spec('gpt2', [
    ...base,
    { kind: 'raft', datasetId: 'prompts', config: { promptsPerIteration: 4096, samplesPerPrompt: 64 } },
  ]);
  expect(paths(raft, 'gpt2')).toEqual(['/stages/2/config/promptsPerIteration']);
});

test('default configs of every stage kind pass on tiny and gpt2', () => {
  const stages = [
    { kind: 'sft', datasetId: 'demos' },
    { kind: 'reward_model', datasetId: 'lists' },
    { kind: 'dpo', datasetId: 'lists' },
    { kind: 'raft', datasetId: 'prompts' },
    { kind: 'grpo', datasetId: 'prompts' },
    { kind: 'ppo', datasetId: 'prompts' },
  ];
  expect(callLimitErrors(spec('tiny', stages), 'tiny')).toEqual([]);
  expect(callLimitErrors(spec('gpt2', stages), 'gpt2')).toEqual([]);
});
