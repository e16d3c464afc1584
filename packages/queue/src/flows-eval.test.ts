// resolveInputs for an eval stage and a checkpoint evaluation: the models of this run's stages come from the
// children's results (nearest first), what the API resolved at admission is kept.
import {
  resolveGrpoConfig,
  resolveStageConfig,
  type StageJobData,
  type StageJobResult,
} from '@rlhf/contracts';
import { describe, expect, test } from 'vitest';
import { resolveInputs } from './flows.js';

const common = { runId: 'run1', teamId: 't1', modelPreset: 'tiny' as const };
const prompts = { id: 'p', key: 'datasets/t1/p.jsonl', kind: 'prompt' as const };
const upstream: StageJobResult[] = [
  { stageId: 'ppo1', kind: 'ppo', modelKey: 'runs/run1/ppo1/final', step: 3 },
  { stageId: 'rm1', kind: 'reward_model', modelKey: 'runs/run1/rm1/final', step: 3 },
  { stageId: 'sft1', kind: 'sft', modelKey: 'runs/run1/sft1/final', step: 3 },
];
const evalConfig = (against: object, judge: object) =>
  resolveStageConfig('eval', { against, judge } as Parameters<typeof resolveStageConfig<'eval'>>[1]);
const names = { policy: 'run:run1:ppo', against: 'run:run1:sft' };

describe('resolveInputs for evaluations', () => {
  test("an eval stage gets the run's last policy (PPO's too), its against stage and the run's reward model", () => {
    const job = {
      ...common,
      stageId: 'eval1',
      kind: 'eval',
      config: evalConfig({ stage: 'sft' }, { type: 'reward_model' }),
      dataset: prompts,
      inputs: {},
      names,
    } as StageJobData;
    expect(resolveInputs(job, upstream).inputs).toEqual({
      policy: 'runs/run1/ppo1/final',
      against: 'runs/run1/sft1/final',
      rewardModel: 'runs/run1/rm1/final',
    });
    // A task judge reads no reward model; models the API resolved (another run's, registered) are kept.
    const other = {
      ...job,
      config: evalConfig({ modelId: 'm1' }, { type: 'task', name: 'sort-digits' }),
      inputs: { against: 'models/t1/m1' },
    } as StageJobData;
    expect(resolveInputs(other, upstream).inputs).toEqual({
      policy: 'runs/run1/ppo1/final',
      against: 'models/t1/m1',
    });
  });

  test("a policy stage's checkpoint evaluation gets its against stage and judge from the stages before it", () => {
    const grpo = {
      ...common,
      stageId: 'grpo1',
      kind: 'grpo',
      config: resolveGrpoConfig({ reward: 'sort-digits' }),
      dataset: prompts,
      inputs: {},
      checkpointEval: {
        config: evalConfig({ stage: 'sft' }, { type: 'reward_model' }),
        datasetKey: prompts.key,
        inputs: {},
        names,
      },
    } as StageJobData;
    const resolved = resolveInputs(grpo, upstream.slice(1));
    expect(resolved.inputs).toEqual({ policy: 'runs/run1/sft1/final', rewardModel: 'runs/run1/rm1/final' });
    expect(resolved.checkpointEval?.inputs).toEqual({
      against: 'runs/run1/sft1/final',
      rewardModel: 'runs/run1/rm1/final',
    });
  });
});
