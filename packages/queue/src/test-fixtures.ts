// Stage jobs of one run (sft -> reward_model -> ppo) for tests; not exported from the package.
import { randomUUID } from 'node:crypto';
import {
  resolvePpoConfig,
  resolveRewardModelConfig,
  resolveSftConfig,
  type StageJobData,
} from '@rlhf/contracts';

export const uid = () => randomUUID().replaceAll('-', '').slice(0, 12);

/** A unique namespace per test, so tests never see each other's jobs. */
export const testPrefix = (name: string) => `test-${name}-${uid()}`;

export function runStages(runId = `run${uid()}`): StageJobData[] {
  const common = { runId, teamId: 'team1', modelPreset: 'tiny' as const };
  return [
    {
      ...common,
      stageId: `sft${uid()}`,
      kind: 'sft',
      config: resolveSftConfig(),
      dataset: { id: 'ds1', key: 'datasets/team1/a.jsonl', kind: 'sft' },
      inputs: {},
    },
    {
      ...common,
      stageId: `rm${uid()}`,
      kind: 'reward_model',
      config: resolveRewardModelConfig(),
      dataset: { id: 'ds2', key: 'datasets/team1/b.jsonl', kind: 'preference' },
      inputs: {},
    },
    {
      ...common,
      stageId: `ppo${uid()}`,
      kind: 'ppo',
      config: resolvePpoConfig(),
      dataset: { id: 'ds3', key: 'datasets/team1/c.jsonl', kind: 'prompt' },
      inputs: {},
    },
  ];
}
