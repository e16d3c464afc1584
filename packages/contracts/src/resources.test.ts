import { describe, expect, test } from 'vitest';
import { resolvePpoConfig, resolveSftConfig } from './configs.js';
import { schemaErrors } from './errors.js';
import { StageJobData, StageJobResult } from './jobs.js';
import { PpoMetrics, RewardModelMetrics, SftMetrics } from './metrics.js';
import { ErrorBody, MetricPoint, Page, Run, Sample } from './resources.js';

const now = '2025-01-01T00:00:00.000Z';

describe('API response schemas', () => {
  test('a run with its stages validates, a missing status is named', () => {
    const config = resolveSftConfig();
    const stage = {
      id: 'st1',
      runId: 'run1',
      kind: 'sft',
      position: 0,
      status: 'running',
      datasetId: 'ds1',
      config,
      step: 40,
      totalSteps: 200,
      attempts: 1,
      workerId: 'gpu-0',
      error: null,
      createdAt: now,
      startedAt: now,
      finishedAt: null,
    };
    const run = {
      id: 'run1',
      teamId: 'team1',
      name: null,
      status: 'running',
      spec: { model: { preset: 'tiny' }, stages: [{ kind: 'sft', datasetId: 'ds1', config }] },
      stages: [stage],
      createdAt: now,
      startedAt: now,
      finishedAt: null,
    };
    expect(schemaErrors(Run, run)).toEqual([]);
    const { status: _status, ...withoutStatus } = run;
    expect(schemaErrors(Run, withoutStatus)).toEqual([{ path: '/status', message: 'required' }]);
    expect(schemaErrors(Run, { ...run, createdAt: 'yesterday' })).toEqual([
      { path: '/createdAt', message: 'must be a valid date-time' },
    ]);
  });

  test('error bodies, metric points, samples and pages', () => {
    expect(
      schemaErrors(ErrorBody, { error: { code: 'invalid_spec', message: 'bad', field: '/stages/0' } }),
    ).toEqual([]);
    expect(schemaErrors(ErrorBody, { error: { message: 'bad' } })).toEqual([
      { path: '/error/code', message: 'required' },
    ]);
    const point = { stageId: 's', step: 3, name: PpoMetrics.kl, value: 0.5, time: now };
    expect(schemaErrors(Page(MetricPoint), { items: [point], nextCursor: null })).toEqual([]);
    const sample = {
      stageId: 's',
      step: 3,
      prompt: 'sort 2 1:',
      response: ' 1 2',
      score: 0.9,
      kl: 0.1,
      eos: true,
    };
    expect(schemaErrors(Sample, sample)).toEqual([]);
  });
});

describe('stage jobs', () => {
  test('a PPO job carries its resolved config, dataset and input checkpoints', () => {
    const job = {
      runId: 'run1',
      stageId: 'st3',
      teamId: 'team1',
      modelPreset: 'tiny',
      kind: 'ppo',
      config: resolvePpoConfig(),
      dataset: { id: 'ds3', key: 'datasets/ds3.jsonl', kind: 'prompt' },
      inputs: { policy: 'runs/run1/st1/model', rewardModel: 'runs/run1/st2/model' },
    };
    expect(schemaErrors(StageJobData, job)).toEqual([]);
    // A PPO job cannot train on preference data, nor carry an SFT config.
    expect(
      schemaErrors(StageJobData, { ...job, dataset: { ...job.dataset, kind: 'preference' } }),
    ).not.toEqual([]);
    expect(schemaErrors(StageJobData, { ...job, config: resolveSftConfig() })).not.toEqual([]);
    expect(
      schemaErrors(StageJobResult, {
        stageId: 'st3',
        kind: 'ppo',
        modelKey: 'runs/run1/st3/model',
        step: 100,
      }),
    ).toEqual([]);
  });

  test('metric names are the ones TRL users know', () => {
    expect(Object.values(PpoMetrics)).toEqual(
      expect.arrayContaining([
        'objective/kl',
        'objective/entropy',
        'objective/non_score_reward',
        'objective/rlhf_reward',
        'objective/scores',
        'policy/approxkl',
        'policy/clipfrac',
        'policy/entropy',
        'val/loss',
        'val/clipfrac',
        'val/explained_var',
        'rollout/response_len_mean',
        'rollout/eos_rate',
        'kl_ctl/value',
        'timing/generate',
        'timing/score',
        'timing/train',
        'timing/step',
        'perf/tokens_per_sec',
      ]),
    );
    expect([SftMetrics.evalLoss, RewardModelMetrics.evalAccuracy]).toEqual(['eval/loss', 'eval/accuracy']);
  });
});
