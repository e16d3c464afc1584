// trainPpo's stage mechanics on tiny random models (seconds): metrics and samples through hooks, exact resume from
// a checkpoint, shutdown vs cancel, NaN/Inf stops that keep the last good checkpoint.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PpoConfigInput, PpoMetrics } from '@rlhf/contracts';
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { type GptConfig, initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import {
  type CheckpointStore,
  directoryCheckpointStore,
  type ModelWeights,
  NonFiniteError,
  type SampleRow,
  SHUTDOWN,
  StageAbortedError,
} from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TrainPpoOptions } from './setup.js';
import { GROUND_TRUTH_METRIC, trainPpo } from './train.js';

const policyConfig: GptConfig = presetConfig('tiny', { nLayer: 1, nEmbd: 32, maxPositions: 32 });
const policy: ModelWeights = { config: policyConfig, params: initParams(policyConfig, 1) };
const rmConfig: GptConfig = { ...policyConfig, scalarHead: true };
const rewardModel: ModelWeights = { config: rmConfig, params: initParams(rmConfig, 2) };
const prompts = generatePromptRows(12, { seed: 3 });
const config: PpoConfigInput = {
  iterations: 3,
  rolloutBatchSize: 4,
  minibatches: 2,
  ppoEpochs: 2,
  maxNewTokens: 6,
  lr: 1e-3,
  // adaptive β, so resuming must restore the controller too
  kl: { type: 'adaptive', coef: 0.1, target: 0.01, horizon: 40 },
  checkpointEvery: 1,
  sampleEvery: 2,
  sampleCount: 2,
  seed: 5,
};

let runtime: Runtime;
let dir: string;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  dir = await mkdtemp(join(tmpdir(), 'ppo-train-test-'));
});
afterAll(async () => {
  await runtime.close();
  await rm(dir, { recursive: true, force: true });
});

const store = (name: string): CheckpointStore => directoryCheckpointStore(join(dir, name));

/** Runs trainPpo, collecting metrics (timings left out: they are not reproducible) and sample tables. */
async function run(overrides: Partial<TrainPpoOptions> = {}, abortAt?: { step: number; reason: string }) {
  const metrics = new Map<number, Record<string, number>>();
  const samples = new Map<number, SampleRow[]>();
  const controller = new AbortController();
  const result = trainPpo({
    config,
    policy,
    rewardModel,
    prompts,
    runtime,
    groundTruth: groundTruthScore,
    ...overrides,
    hooks: {
      signal: controller.signal,
      onMetrics: (step, values) => {
        metrics.set(
          step,
          Object.fromEntries(Object.entries(values).filter(([k]) => !/^(timing|perf)\//.test(k))),
        );
        if (abortAt?.step === step) controller.abort(abortAt.reason);
      },
      onSamples: (step, rows) => void samples.set(step, rows),
      ...overrides.hooks,
    },
  });
  return { result, metrics, samples };
}

describe('trainPpo hooks', () => {
  test('reports every metric each iteration and sample tables every sampleEvery', async () => {
    const { result, metrics, samples } = await run({ hooks: { checkpoints: store('hooks') } });
    const done = await result;
    expect(done.step).toBe(3);
    expect([...metrics.keys()]).toEqual([1, 2, 3]);
    for (const values of metrics.values()) {
      for (const name of Object.values(PpoMetrics).filter((n) => !/^(timing|perf)\//.test(n)))
        expect(Number.isFinite(values[name]), name).toBe(true);
      expect(values[GROUND_TRUTH_METRIC]).toBeGreaterThanOrEqual(0);
      // sampler and training graphs agree on the old log-probs
      expect(values[PpoMetrics.samplerLogprobDiff]).toBeLessThan(1e-4);
    }
    expect(metrics.get(1)![PpoMetrics.kl]).toBeCloseTo(0, 5); // policy = reference before the first update
    expect(metrics.get(2)![PpoMetrics.klCoef]).not.toBe(metrics.get(1)![PpoMetrics.klCoef]); // adaptive β moved
    expect([...samples.keys()]).toEqual([2, 3]); // every 2nd iteration and the last
    const row = samples.get(2)![0];
    expect(prompts.map((p) => p.prompt)).toContain(row.prompt);
    expect(typeof row.response).toBe('string');
    expect(Number.isFinite(row.score) && Number.isFinite(row.kl)).toBe(true);
    expect(done.hyperparameters).toMatchObject({
      criticInit: 'reward_model',
      miniBatchSize: 2,
      stepsPerIteration: 4,
      effectiveMaxPromptLen: 32 - 6,
      approxKl: 'k3',
    });
    expect(done.summary).toEqual({ ...metrics.get(3), ...pick(done.summary, /^(timing|perf)\//) });
    expect(done.critic.config.scalarHead).toBe(true);
  });
});

/** The largest |a - b| over every tensor of two weight maps with the same names and sizes. */
function maxWeightDifference(
  a: ReadonlyMap<string, Float32Array>,
  b: ReadonlyMap<string, Float32Array>,
): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let worst = 0;
  for (const [name, values] of a) {
    const other = b.get(name)!;
    expect(other.length).toBe(values.length);
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i] - other[i]));
  }
  return worst;
}

describe('trainPpo checkpoints', () => {
  // Generation and scoring run as calls sized to the measured pace (stage-kit rows.ts): a resumed run's first
  // calls are cut differently from an uninterrupted run's, which moves results by float rounding (~1e-7) only.
  test('a shutdown checkpoints and a resumed run ends where an uninterrupted one does (to float rounding)', async () => {
    const straight = await run({ hooks: { checkpoints: store('straight') } });
    const expected = await straight.result;

    const checkpoints = store('resumed');
    const first = await run({ hooks: { checkpoints } }, { step: 2, reason: SHUTDOWN });
    const stopped = await first.result.catch((e: unknown) => e);
    expect(stopped).toBeInstanceOf(StageAbortedError);
    expect(stopped).toMatchObject({ step: 2, checkpointed: true });
    expect((await checkpoints.latest())!.step).toBe(2);

    const second = await run({ hooks: { checkpoints } });
    const resumed = await second.result;
    expect([...second.metrics.keys()]).toEqual([3]);
    const metrics = second.metrics.get(3)!;
    const uninterrupted = straight.metrics.get(3)!;
    expect(Object.keys(metrics).sort()).toEqual(Object.keys(uninterrupted).sort());
    for (const [name, value] of Object.entries(uninterrupted))
      if (!/^(timing|perf)\//.test(name))
        expect(Math.abs(metrics[name] - value), name).toBeLessThanOrEqual(
          1e-5 * Math.max(1, Math.abs(value)),
        );
    expect(maxWeightDifference(resumed.model.params, expected.model.params)).toBeLessThanOrEqual(1e-5);
    expect(maxWeightDifference(resumed.critic.params, expected.critic.params)).toBeLessThanOrEqual(1e-5);
    const saved = (await checkpoints.latest())!;
    expect(saved.step).toBe(3);
    expect(Object.keys(saved.files).sort()).toEqual([
      'config.json',
      'critic.config.json',
      'critic.model.safetensors',
      'model.safetensors',
      'optimizer.safetensors',
      'trainer.json',
    ]);
  });

  test('a cancel stops without saving', async () => {
    const checkpoints = store('cancelled');
    const { result } = await run(
      { config: { ...config, checkpointEvery: 10 }, hooks: { checkpoints } },
      {
        step: 1,
        reason: 'cancelled by user',
      },
    );
    const error = await result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageAbortedError);
    expect(error).toMatchObject({ step: 1, checkpointed: false });
    expect(await checkpoints.latest()).toBeNull();
  });

  test('NaN scores stop the run with a clear error and keep the last good checkpoint', async () => {
    const checkpoints = store('nan');
    await (await run({ config: { ...config, iterations: 1 }, hooks: { checkpoints } })).result;
    const poisoned: ModelWeights = {
      config: rmConfig,
      params: new Map([...rewardModel.params, ['score.bias', Float32Array.of(Number.NaN)]]),
    };
    const { result } = await run({ rewardModel: poisoned, hooks: { checkpoints } });
    const error = await result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteError);
    expect(error).toMatchObject({ metric: 'objective/scores', step: 2, lastCheckpointStep: 1 });
    expect((error as Error).message).toContain('The last good checkpoint is step 1');
    expect((await checkpoints.latest())!.step).toBe(1);
  });

  test('refuses a reward model without a scalar head', async () => {
    await expect(trainPpo({ config, policy, rewardModel: policy, prompts, runtime })).rejects.toThrow(
      'scalar head',
    );
  });
});

function pick(values: Record<string, number>, pattern: RegExp): Record<string, number> {
  return Object.fromEntries(Object.entries(values).filter(([k]) => pattern.test(k)));
}
