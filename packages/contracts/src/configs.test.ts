import { describe, expect, test } from 'vitest';
import {
  checkStageConfig,
  PpoConfig,
  type GrpoConfigInput,
  PpoConfigInput,
  resolveGrpoConfig,
  resolvePpoConfig,
  resolveRewardModelConfig,
  resolveSftConfig,
  type SftConfigInput,
} from './configs.js';
import { ContractError } from './errors.js';
import { StageJobData } from './jobs.js';
import { Run } from './resources.js';
import { RunSpec, RunSpecInput } from './run-spec.js';

const errorsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ContractError) return e.errors.map((x) => `${x.path}: ${x.message}`);
    throw e;
  }
  throw new Error('expected a ContractError');
};

describe('resolve*Config', () => {
  test('fills every documented default', () => {
    expect(resolveSftConfig()).toEqual({
      epochs: 1,
      maxSteps: null,
      batchSize: 16,
      lr: 3e-4,
      warmupSteps: 0,
      schedule: 'linear',
      weightDecay: 0,
      adamBeta1: 0.9,
      adamBeta2: 0.999,
      adamEpsilon: 1e-8,
      maxGradNorm: 1,
      maxSeqLen: 256,
      validationFraction: 0.05,
      validationRows: 0,
      evalEvery: 100,
      keepBest: null,
      checkpointEvery: 200,
      seed: 42,
      stepsPerCall: 8,
      gradientAccumulation: 1,
      recompute: false,
      completionOnlyLoss: true,
    });
    const rm = resolveRewardModelConfig({ margin: 0.5 });
    expect([rm.lr, rm.margin, rm.init, rm.epochs]).toEqual([1e-4, 0.5, 'sft', 1]);
    const ppo = resolvePpoConfig({ kl: { type: 'adaptive' } });
    expect(ppo.kl).toEqual({ type: 'adaptive', coef: 0.05, target: 6, horizon: 10_000 });
    expect([ppo.gamma, ppo.lam, ppo.clipRange, ppo.clipRangeValue, ppo.vfCoef, ppo.entCoef]).toEqual([
      1, 0.95, 0.2, 0.2, 0.1, 0,
    ]);
    expect([ppo.whitenRewards, ppo.missingEosPenalty, ppo.ppoEpochs, ppo.minibatches]).toEqual([
      false,
      null,
      4,
      1,
    ]);
  });

  test('keeps given values and never shares default objects between configs', () => {
    const a = resolvePpoConfig({ lr: 1e-4, kl: { coef: 0.2 } });
    expect([a.lr, a.kl.coef, a.kl.type]).toEqual([1e-4, 0.2, 'fixed']);
    a.kl.coef = 99;
    expect(resolvePpoConfig().kl.coef).toBe(0.05);
    const input: PpoConfigInput = { iterations: 3 };
    resolvePpoConfig(input);
    expect(input).toEqual({ iterations: 3 }); // the caller's object is not filled in
  });

  test('rejects NaN, infinities, negatives and out-of-range values, naming each field', () => {
    expect(errorsOf(() => resolveSftConfig({ lr: Number.NaN, batchSize: 0, seed: 1.5 }))).toEqual([
      '/batchSize: must be >= 1',
      '/lr: must be a finite number',
      '/seed: must be a finite integer',
    ]);
    expect(
      errorsOf(() =>
        resolvePpoConfig({
          lr: -1,
          gamma: 1.5,
          lam: Number.POSITIVE_INFINITY,
          temperature: 0,
          kl: { coef: -0.1 },
        }),
      ),
    ).toEqual([
      // in the schema's field order
      '/temperature: must be > 0',
      '/lr: must be > 0',
      '/gamma: must be <= 1',
      '/lam: must be a finite number',
      '/kl/coef: must be >= 0',
    ]);
    expect(
      errorsOf(() => resolveSftConfig({ maxSteps: 0, schedule: 'step' } as unknown as SftConfigInput)),
    ).toEqual([
      '/maxSteps: must be >= 1 or null',
      '/schedule: must be one of "cosine", "linear", "constant"',
    ]);
    expect(errorsOf(() => resolvePpoConfig({ missingEosPenalty: -1 }))).toEqual([
      '/missingEosPenalty: must be >= 0 or null',
    ]);
  });

  test('refuses unknown fields, at any depth', () => {
    expect(
      errorsOf(() => resolvePpoConfig({ learning_rate: 1, kl: { beta: 1 } } as unknown as PpoConfigInput)),
    ).toEqual(['/learning_rate: unknown field', '/kl/beta: unknown field']);
  });

  test('checks fields that depend on each other', () => {
    expect(errorsOf(() => resolvePpoConfig({ rolloutBatchSize: 10, minibatches: 4 }))).toEqual([
      '/minibatches: must divide rolloutBatchSize (10)',
    ]);
    expect(resolvePpoConfig({ rolloutBatchSize: 12, minibatches: 4 }).minibatches).toBe(4);
  });

  test('grpo: advantage, dynamic sampling and loss aggregation default to GRPO as TRL runs it, and are checked', () => {
    const grpo = resolveGrpoConfig();
    expect([grpo.advantage, grpo.scaleByStd, grpo.dynamicSampling, grpo.lossAggregation, grpo.beta]).toEqual([
      'grpo',
      true,
      false,
      'token_mean',
      0.04,
    ]);
    const pp = resolveGrpoConfig({
      advantage: 'reinforce_pp',
      dynamicSampling: true,
      lossAggregation: 'token_sum_norm',
    });
    expect([pp.advantage, pp.dynamicSampling, pp.lossAggregation]).toEqual([
      'reinforce_pp',
      true,
      'token_sum_norm',
    ]);
    expect(
      errorsOf(() =>
        resolveGrpoConfig({
          advantage: 'ppo',
          dynamicSampling: 'yes',
          lossAggregation: 'sum',
        } as unknown as GrpoConfigInput),
      ),
    ).toEqual([
      '/advantage: must be one of "grpo", "rloo", "reinforce_pp"',
      '/dynamicSampling: must be a boolean',
      '/lossAggregation: must be one of "token_mean", "sequence_mean", "token_sum_norm"',
    ]);
    expect(errorsOf(() => resolveGrpoConfig({ groupSize: 1 }))).toEqual(['/groupSize: must be >= 2']);
    expect(
      errorsOf(() => resolveGrpoConfig({ promptsPerIteration: 3, groupSize: 2, minibatches: 4 })),
    ).toEqual(['/minibatches: must divide promptsPerIteration × groupSize (6)']);
  });

  test('checkStageConfig prefixes paths for use inside a run spec', () => {
    expect(checkStageConfig('reward_model', { init: 'random' }, '/stages/1/config').errors).toEqual([
      { path: '/stages/1/config/init', message: 'must be one of "sft", "fresh"' },
    ]);
    expect(checkStageConfig('sft', 'fast', '/c').errors).toEqual([
      { path: '/c', message: 'must be an object' },
    ]);
  });
});

describe('withoutDefaults', () => {
  // Ajv with useDefaults (Fastify's default) refuses `default` inside anyOf: the request and job
  // schemas must carry none, only the XConfig schemas that resolve*Config applies.
  const defaultsIn = (node: unknown, path = ''): string[] =>
    typeof node !== 'object' || node === null
      ? []
      : Object.entries(node).flatMap(([k, v]) => (k === 'default' ? [path] : defaultsIn(v, `${path}/${k}`)));

  test('request and job schemas carry no defaults, and note them in descriptions', () => {
    for (const schema of [RunSpecInput, RunSpec, StageJobData, Run, PpoConfigInput])
      expect(defaultsIn(schema)).toEqual([]);
    expect(defaultsIn(PpoConfig)).toContain('/properties/lam');
    expect((PpoConfigInput.properties.lam as { description?: string }).description).toBe(
      'λ of GAE (Schulman et al. 2016) (default: 0.95)',
    );
  });
});
