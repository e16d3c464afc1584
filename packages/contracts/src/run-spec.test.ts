import { describe, expect, test } from 'vitest';
import { resolvePpoConfig, resolveRewardModelConfig, resolveSftConfig } from './configs.js';
import { type RunSpecContext, validateRunSpec } from './run-spec.js';

const sft = { kind: 'sft', datasetId: 'demos' };
const rm = { kind: 'reward_model', datasetId: 'pairs' };
const ppo = { kind: 'ppo', datasetId: 'prompts' };
const datasets: RunSpecContext['datasets'] = {
  demos: 'sft',
  pairs: 'preference',
  lists: 'ranked',
  prompts: 'prompt',
};
const errorsOf = (spec: unknown, context: RunSpecContext = { datasets }) => {
  const result = validateRunSpec(spec, context);
  return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
};

describe('validateRunSpec', () => {
  test('accepts the full pipeline and resolves every stage config', () => {
    const result = validateRunSpec(
      {
        name: 'sort digits',
        model: { preset: 'tiny' },
        stages: [
          { ...sft, config: { lr: 1e-3 } },
          { ...rm, datasetId: 'lists' },
          { ...ppo, config: { iterations: 5 } },
        ],
      },
      { datasets },
    );
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.spec).toEqual({
      name: 'sort digits',
      model: { preset: 'tiny' },
      stages: [
        { kind: 'sft', datasetId: 'demos', config: resolveSftConfig({ lr: 1e-3 }) },
        { kind: 'reward_model', datasetId: 'lists', config: resolveRewardModelConfig() },
        { kind: 'ppo', datasetId: 'prompts', config: resolvePpoConfig({ iterations: 5 }) },
      ],
    });
  });

  test('refuses shapes it does not know, with paths', () => {
    expect(errorsOf([])).toEqual([': must be an object']);
    expect(errorsOf({ model: { preset: 'gpt5' }, stages: [], owner: 'x' })).toEqual([
      '/owner: unknown field',
      '/model/preset: must be one of "tiny", "small", "gpt2"',
      '/stages: must have at least 1 stage',
    ]);
    expect(
      errorsOf({
        model: { preset: 'tiny' },
        stages: [
          { kind: 'kto', datasetId: 'demos' },
          { ...sft, extra: 1 },
        ],
      }),
    ).toEqual([
      '/stages/0/kind: must be one of "sft", "reward_model", "dpo", "pro", "raft", "grpo", "ppo", "eval"',
      '/stages/1/extra: unknown field',
    ]);
    expect(errorsOf({ model: { preset: 'tiny' }, stages: [{ ...sft, config: { lr: Number.NaN } }] })).toEqual(
      ['/stages/0/config/lr: must be a finite number'],
    );
  });

  test('memory options: gradientAccumulation divides batchSize; recompute does not redraw LoRA dropout', () => {
    const one = (config: unknown) => errorsOf({ model: { preset: 'tiny' }, stages: [{ ...sft, config }] });
    expect(one({ batchSize: 8, gradientAccumulation: 4, recompute: true })).toEqual([]);
    expect(one({ batchSize: 8, gradientAccumulation: 3 })).toEqual([
      '/stages/0/config/gradientAccumulation: must divide batchSize (8) into equal micro-batches',
    ]);
    expect(one({ recompute: true, lora: { dropout: 0.1 } })).toEqual([
      '/stages/0/config/recompute: cannot be combined with lora.dropout > 0',
    ]);
    expect(one({ recompute: true, lora: { dropout: 0 } })).toEqual([]);
  });

  test('enforces the order sft -> reward_model -> dpo -> pro -> raft -> grpo -> ppo, each kind at most once', () => {
    expect(errorsOf({ model: { preset: 'tiny' }, stages: [rm, sft] })).toEqual([
      '/stages/1/kind: stages must be in the order sft -> reward_model -> dpo -> pro -> raft -> grpo -> ppo -> eval',
    ]);
    expect(errorsOf({ model: { preset: 'tiny' }, stages: [sft, sft] })).toEqual([
      '/stages/1/kind: "sft" appears more than once',
    ]);
  });

  test('checks the dataset kind each stage trains on', () => {
    expect(
      errorsOf({
        model: { preset: 'tiny' },
        stages: [
          { ...sft, datasetId: 'prompts' },
          { ...rm, datasetId: 'nope' },
        ],
      }),
    ).toEqual([
      '/stages/0/datasetId: dataset prompts is of kind "prompt"; a sft stage needs "sft"',
      '/stages/1/datasetId: unknown dataset nope',
    ]);
    // Without the API's dataset table the kinds cannot be checked, and are not.
    expect(errorsOf({ model: { preset: 'tiny' }, stages: [{ ...sft, datasetId: 'prompts' }] }, {})).toEqual(
      [],
    );
  });

  test('a ppo stage needs an SFT policy and a reward model, from this run or an earlier one', () => {
    expect(errorsOf({ model: { preset: 'tiny' }, stages: [ppo] })).toEqual([
      '/stages/0: a ppo stage needs an SFT policy: add an sft stage or set model.fromRun',
      '/stages/0: a ppo stage needs a reward model: add a reward_model stage or set model.fromRun to a run with one',
    ]);
    expect(errorsOf({ model: { preset: 'tiny' }, stages: [sft, ppo] })).toEqual([
      '/stages/1: a ppo stage needs a reward model: add a reward_model stage or set model.fromRun to a run with one',
    ]);
    expect(
      errorsOf(
        { model: { fromRun: 'run1' }, stages: [ppo] },
        { datasets, fromRunStages: ['sft', 'reward_model'] },
      ),
    ).toEqual([]);
    expect(
      errorsOf({ model: { fromRun: 'run1' }, stages: [ppo] }, { datasets, fromRunStages: ['sft'] }),
    ).toEqual([
      '/stages/0: a ppo stage needs a reward model: add a reward_model stage or set model.fromRun to a run with one',
    ]);
    expect(
      errorsOf(
        { model: { fromRun: 'run1', stage: 'ppo' }, stages: [ppo] },
        { datasets, fromRunStages: ['sft', 'reward_model'] },
      ),
    ).toEqual(['/model/fromRun: run run1 has no finished ppo stage']);
    expect(
      errorsOf({ model: { fromRun: 'run1' }, stages: [rm, ppo] }, { datasets, fromRunStages: ['sft'] }),
    ).toEqual([]);
  });

  test('a reward model initialised from SFT needs an SFT policy', () => {
    expect(errorsOf({ model: { preset: 'tiny' }, stages: [rm] })).toEqual([
      '/stages/0/config/init: init "sft" needs an sft stage before it or model.fromRun; use init "fresh" to start from the preset',
    ]);
    expect(errorsOf({ model: { preset: 'tiny' }, stages: [{ ...rm, config: { init: 'fresh' } }] })).toEqual(
      [],
    );
    expect(errorsOf({ model: { preset: 'tiny' }, stages: [sft, rm] })).toEqual([]);
  });

  test('a dpo stage trains on pairs or ranked lists after a policy; β must be positive', () => {
    const dpo = { kind: 'dpo', datasetId: 'lists' };
    const preset = { preset: 'tiny' };
    expect(errorsOf({ model: preset, stages: [sft, dpo] })).toEqual([]);
    expect(errorsOf({ model: preset, stages: [sft, rm, { ...dpo, datasetId: 'pairs' }, ppo] })).toEqual([]);
    expect(
      errorsOf(
        { model: { fromRun: 'r1', stage: 'dpo' }, stages: [ppo] },
        { datasets, fromRunStages: ['sft', 'reward_model', 'dpo'] },
      ),
    ).toEqual([]);
    expect(errorsOf({ model: preset, stages: [dpo] })).toEqual([
      '/stages/0: a dpo stage needs a policy to start from and to keep as its reference: add an sft stage or set model.fromRun',
    ]);
    expect(errorsOf({ model: preset, stages: [sft, { ...dpo, datasetId: 'prompts' }] })).toEqual([
      '/stages/1/datasetId: dataset prompts is of kind "prompt"; a dpo stage needs "preference" or "ranked"',
    ]);
    expect(errorsOf({ model: preset, stages: [sft, { ...dpo, config: { beta: 0 } }] })).toEqual([
      '/stages/1/config/beta: must be > 0',
    ]);
    expect(errorsOf({ model: preset, stages: [sft, rm, ppo, dpo] })).toEqual([
      '/stages/3/kind: stages must be in the order sft -> reward_model -> dpo -> pro -> raft -> grpo -> ppo -> eval',
    ]);
  });

  test('a pro stage (PRO or RRHF) trains on rankings after a policy', () => {
    const pro = { kind: 'pro', datasetId: 'lists' };
    const preset = { preset: 'tiny' };
    expect(errorsOf({ model: preset, stages: [sft, { ...pro, config: { objective: 'rrhf' } }] })).toEqual([]);
    expect(errorsOf({ model: preset, stages: [pro] })).toEqual([
      '/stages/0: a pro stage needs a policy to start from: add an sft stage or set model.fromRun',
    ]);
    expect(errorsOf({ model: preset, stages: [sft, { ...pro, config: { objective: 'kto' } }] })).toEqual([
      '/stages/1/config/objective: must be one of "pro", "rrhf"',
    ]);
  });

  test('a raft stage samples prompts from a policy and needs a reward model; keepPerPrompt <= samplesPerPrompt', () => {
    const raft = { kind: 'raft', datasetId: 'prompts' };
    const preset = { preset: 'tiny' };
    expect(errorsOf({ model: preset, stages: [sft, rm, raft, ppo] })).toEqual([]);
    expect(errorsOf({ model: preset, stages: [sft, raft] })).toEqual([
      '/stages/1: a raft stage needs a reward model to rank its samples: add a reward_model stage or set model.fromRun to a run with one',
    ]);
    expect(
      errorsOf({
        model: preset,
        stages: [sft, rm, { ...raft, config: { samplesPerPrompt: 4, keepPerPrompt: 5 } }],
      }),
    ).toEqual(['/stages/2/config/keepPerPrompt: must be at most samplesPerPrompt (4)']);
  });

  test('a grpo stage rewards with the reward model or a named programmatic reward', () => {
    const grpo = { kind: 'grpo', datasetId: 'prompts' };
    const preset = { preset: 'tiny' };
    expect(
      errorsOf({ model: preset, stages: [sft, { ...grpo, config: { reward: 'sort-digits' } }] }),
    ).toEqual([]);
    expect(errorsOf({ model: preset, stages: [sft, rm, grpo] })).toEqual([]);
    expect(errorsOf({ model: preset, stages: [sft, grpo] })).toEqual([
      "/stages/1/config/reward: reward 'reward_model' needs a reward_model stage or model.fromRun to a run with one; or name a programmatic reward",
    ]);
    expect(
      errorsOf({
        model: preset,
        stages: [
          sft,
          { ...grpo, config: { reward: 'x', promptsPerIteration: 3, groupSize: 2, minibatches: 4 } },
        ],
      }),
    ).toEqual(['/stages/1/config/minibatches: must divide promptsPerIteration × groupSize (6)']);
  });
});
