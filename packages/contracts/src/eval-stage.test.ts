import { describe, expect, test } from 'vitest';
import { type RunSpecContext, validateRunSpec } from './run-spec.js';

const datasets: RunSpecContext['datasets'] = { demos: 'sft', pairs: 'preference', prompts: 'prompt' };
const sft = { kind: 'sft', datasetId: 'demos' };
const rm = { kind: 'reward_model', datasetId: 'pairs' };
const task = { type: 'task', name: 'sort-digits' };
const evalStage = (config: unknown) => ({ kind: 'eval', datasetId: 'prompts', config });
const errorsOf = (spec: unknown) => {
  const result = validateRunSpec(spec, { datasets });
  return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
};

describe('the eval stage in a run spec', () => {
  test('ends a pipeline; its defaults are filled and a run-level gate becomes its gate', () => {
    const result = validateRunSpec(
      {
        model: { preset: 'tiny' },
        stages: [sft, rm, evalStage({ against: { stage: 'sft' }, judge: { type: 'reward_model' } })],
        gate: { minWinRate: 0.55 },
      },
      { datasets },
    );
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.spec.gate).toEqual({ minWinRate: 0.55 });
    expect(result.spec.stages[2]).toEqual({
      kind: 'eval',
      datasetId: 'prompts',
      config: {
        against: { stage: 'sft' },
        judge: { type: 'reward_model' },
        maxPrompts: 200,
        seeds: [1],
        againstSeeds: null,
        maxNewTokens: 32,
        temperature: 1,
        topK: 0,
        topP: 1,
        gate: { minWinRate: 0.55 },
        checkpoints: null,
      },
    });
  });

  test('names every bad field', () => {
    const run = (stages: unknown[], extra: object = {}) => ({ model: { preset: 'tiny' }, stages, ...extra });
    expect(errorsOf(run([sft, evalStage({ judge: task })]))).toEqual(['/stages/1/config/against: required']);
    expect(errorsOf(run([sft, evalStage({ against: { stage: 'dpo' }, judge: task })]))).toEqual([
      '/stages/1/config/against/stage: the run has no dpo stage',
    ]);
    // The run's own reward model as a judge needs a reward_model stage (or another run's / a registered one).
    expect(
      errorsOf(run([sft, evalStage({ against: { stage: 'sft' }, judge: { type: 'reward_model' } })])),
    ).toEqual([
      expect.stringMatching(/^\/stages\/1\/config\/judge: a reward_model judge without runId or modelId/),
    ]);
    expect(
      errorsOf(
        run([sft, evalStage({ against: { stage: 'sft' }, judge: { type: 'reward_model', runId: 'r' } })]),
      ),
    ).toEqual([]);
    expect(
      errorsOf(
        run([
          sft,
          evalStage({ against: { stage: 'sft' }, judge: { type: 'reward_model', runId: 'r', modelId: 'm' } }),
        ]),
      ),
    ).toEqual(['/stages/1/config/judge: name a runId or a modelId, not both']);
    // A preset run with no policy stage has nothing to evaluate.
    expect(errorsOf(run([evalStage({ against: { modelId: 'm' }, judge: task })]))).toEqual([
      expect.stringMatching(/^\/stages\/0: an eval stage needs a policy to evaluate/),
    ]);
    // A gate needs an eval stage, and is set in one place.
    expect(errorsOf(run([sft], { gate: { minWinRate: 0.6 } }))).toEqual([
      '/gate: a gate needs an eval stage at the end of the run to measure it',
    ]);
    expect(
      errorsOf(
        run([sft, evalStage({ against: { stage: 'sft' }, judge: task, gate: { minWinRate: 0.5 } })], {
          gate: { minWinRate: 0.6 },
        }),
      ),
    ).toEqual(['/gate: set the gate here or at /stages/1/config/gate, not both']);
    expect(
      errorsOf(
        run([sft, evalStage({ against: { stage: 'sft' }, judge: task })], { gate: { minWinRate: 2 } }),
      ),
    ).toEqual([expect.stringMatching(/^\/gate\/minWinRate: /)]);
    // Checkpoints to compare need a policy stage, compared with something else.
    expect(
      errorsOf(
        run([evalStage({ against: { modelId: 'm' }, judge: task, checkpoints: { every: 4 } })], {
          model: { modelId: 'm' },
        }),
      ),
    ).toEqual(['/stages/0/config/checkpoints: the run has no policy stage whose checkpoints to compare']);
    expect(
      errorsOf(run([sft, evalStage({ against: { stage: 'sft' }, judge: task, checkpoints: { every: 4 } })])),
    ).toEqual([
      '/stages/1/config/checkpoints: the checkpoints of the sft stage cannot be compared against that stage itself',
    ]);
    expect(
      errorsOf(run([sft, evalStage({ against: { modelId: 'm' }, judge: task, checkpoints: { every: 0 } })])),
    ).toEqual([expect.stringMatching(/^\/stages\/1\/config\/checkpoints/)]);
    // A grader judge is checked as a GRPO reward's grader is.
    expect(
      errorsOf(
        run([
          sft,
          evalStage({ against: { stage: 'sft' }, judge: { type: 'grader', grader: { type: 'nope' } } }),
        ]),
      ),
    ).toEqual([expect.stringMatching(/^\/stages\/1\/config\/judge\/grader/)]);
    // A run-level gate may name what it is measured against: the eval stage's against.
    const gated = (against: object) =>
      errorsOf(
        run([sft, evalStage({ against: { modelId: 'm' }, judge: task })], {
          gate: { against, minWinRate: 0.5 },
        }),
      );
    expect(gated({ modelId: 'm' })).toEqual([]);
    expect(gated({ stage: 'sft' })).toEqual([
      '/gate/against: the gate is measured by the eval stage: must be its against ({"modelId":"m"})',
    ]);
    // The eval stage comes last and reads a prompt dataset.
    expect(errorsOf(run([evalStage({ against: { stage: 'sft' }, judge: task }), sft]))).toEqual([
      expect.stringMatching(/^\/stages\/1\/kind: stages must be in the order/),
    ]);
    expect(
      errorsOf(run([sft, { ...evalStage({ against: { stage: 'sft' }, judge: task }), datasetId: 'demos' }])),
    ).toEqual([expect.stringMatching(/^\/stages\/1\/datasetId: dataset demos is of kind "sft"/)]);
    // What the API resolves is not for users to send.
    expect(
      errorsOf(
        run([sft, evalStage({ against: { stage: 'sft' }, judge: task, resolved: { judgeKey: 'x' } })]),
      ),
    ).toEqual([expect.stringMatching(/^\/stages\/1\/config\/resolved: /)]);
  });
});
