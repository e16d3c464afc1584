import { type RunSpec, validateRunSpec } from '@rlhf/contracts';
import { expect, test } from 'vitest';
import { stepBytes, stepMemoryErrors } from './limits.js';

const spec = (preset: string, stages: unknown[]): RunSpec => {
  const result = validateRunSpec(
    { model: { preset }, stages },
    { datasets: { demos: 'sft', lists: 'ranked', prompts: 'prompt' } },
  );
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.spec;
};

test('a step over the vocabulary is 3 float32 copies of its logits', () => {
  // 16 × 256 tokens of GPT-2's 50,257-token vocabulary: 2.47 GB.
  expect(stepBytes(16 * 256, 50_257)).toBe(16 * 256 * 50_257 * 12);
});

test('refuses a step the worker cannot hold, naming the field; default configs pass', () => {
  // Issue 18 item 7: gpt2 at batch 4096 × 1024 tokens.
  const huge = spec('gpt2', [
    { kind: 'sft', datasetId: 'demos', config: { batchSize: 4096, maxSeqLen: 1024 } },
  ]);
  const errors = stepMemoryErrors(huge, 'gpt2');
  expect(errors.map((e) => e.path)).toEqual(['/stages/0/config/batchSize']);
  expect(errors[0].message).toMatch(
    /one step of 4194304 tokens over the 50257-token vocabulary needs about 2355\.8 GiB/,
  );
  // The context caps the sequence: tiny's 64 positions make 4096 × 64 fine.
  expect(
    stepMemoryErrors(
      spec('tiny', [{ kind: 'sft', datasetId: 'demos', config: { batchSize: 4096 } }]),
      'tiny',
    ),
  ).toEqual([]);
  const defaults = spec('gpt2', [
    { kind: 'sft', datasetId: 'demos' },
    { kind: 'reward_model', datasetId: 'lists' },
    { kind: 'dpo', datasetId: 'lists' },
    { kind: 'ppo', datasetId: 'prompts' },
  ]);
  expect(stepMemoryErrors(defaults, 'gpt2')).toEqual([]);
  // PPO rows per step: rolloutBatchSize / minibatches.
  const ppo = spec('gpt2', [
    { kind: 'sft', datasetId: 'demos' },
    { kind: 'reward_model', datasetId: 'lists' },
    {
      kind: 'ppo',
      datasetId: 'prompts',
      config: { rolloutBatchSize: 4096, maxPromptLen: 512, maxNewTokens: 512 },
    },
  ]);
  expect(stepMemoryErrors(ppo, 'gpt2').map((e) => e.path)).toEqual(['/stages/2/config/minibatches']);
});

test('gradient accumulation holds one micro-batch at a time: the step the worker cannot hold fits in 64 parts', () => {
  const at = (gradientAccumulation: number) =>
    stepMemoryErrors(
      spec('gpt2', [
        {
          kind: 'sft',
          datasetId: 'demos',
          config: { batchSize: 256, maxSeqLen: 1024, gradientAccumulation },
        },
      ]),
      'gpt2',
    );
  expect(at(1).map((e) => e.path)).toEqual(['/stages/0/config/batchSize']);
  expect(at(1)[0].message).toMatch(/raise gradientAccumulation/);
  // 4 × 1024 tokens per micro-batch: 2.4 GiB of logits.
  expect(at(64)).toEqual([]);
});
