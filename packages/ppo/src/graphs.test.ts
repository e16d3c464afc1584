import { resolvePpoConfig } from '@rlhf/contracts';
import { createTrainer } from '@rlhf/graph';
import { ByteTokenizer, createScorer, type GptConfig, initParams, presetConfig } from '@rlhf/model';
import { createRuntime, int64, type Runtime, type Weights } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildPpoTrainStep, paramName, TRAIN_METRICS, trainedParams } from './graphs.js';
import { createRolloutEngine, type Rollout, samplerLogprobDiff } from './rollout.js';
import { ppoTargets } from './targets.js';
import { trainInputs } from './iteration.js';

const tokenizer = new ByteTokenizer();
const policyConfig: GptConfig = presetConfig('tiny', { nLayer: 1, nEmbd: 32, maxPositions: 32 });
const rmConfig: GptConfig = { ...policyConfig, scalarHead: true };
const policy = initParams(policyConfig, 1);
const rm = initParams(rmConfig, 2);
const models = { policy: policyConfig, critic: rmConfig, rewardModel: rmConfig };
const prompts = ['sort 3 1 2:', 'sort 9 8:', 'sort 5 5 1 0:', 'sort 4:'].map((p) => [
  tokenizer.bosId,
  ...tokenizer.encode(p),
]);
const sampling = {
  maxNewTokens: 6,
  temperature: 0.9,
  topK: 0,
  topP: 1,
  eosId: tokenizer.eosId,
  padId: tokenizer.padId,
};

let runtime: Runtime;
let rollout: Rollout;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  const engine = await createRolloutEngine(runtime, models, sampling);
  rollout = await engine.rollout({ policy, ref: policy, critic: rm, rm }, prompts, 5);
  await engine.release();
});
afterAll(() => runtime.close());

describe('rollout scoring graph', () => {
  test('recomputes the sampler log-probs and matches the model scorer on every output', async () => {
    const [B, N] = rollout.shape;
    expect([B, N]).toEqual([4, 6]);
    // Same weights, same code path as the sampler: the old log-probs agree to float rounding.
    expect(samplerLogprobDiff(rollout)).toBeLessThan(1e-5);
    expect(rollout.refLogprobs).toEqual(rollout.logprobs); // reference = policy here
    const scorer = await createScorer(runtime, rmConfig, { outputs: ['values', 'scores'] });
    const rows = (x: ArrayLike<number>) =>
      Array.from({ length: B }, (_, b) => Array.from(x).slice(b * N, (b + 1) * N));
    const mask = rows(rollout.mask);
    const expected = await scorer.score({
      params: rm,
      prompts,
      padId: tokenizer.padId,
      responses: rollout.responses,
      responseMask: mask,
    });
    await scorer.release();
    for (let b = 0; b < B; b++) {
      expect(rollout.scores[b]).toBeCloseTo(expected.scores![b], 5);
      for (let t = 0; t < N; t++) expect(rollout.values[b * N + t]).toBeCloseTo(expected.values![b][t], 5);
    }
    // The mask runs up to and including EOS; finished rows are exactly those that produced it.
    for (let b = 0; b < B; b++) {
      const length = mask[b].reduce((a, x) => a + x, 0);
      expect(mask[b].slice(0, length).every((x) => x === 1)).toBe(true);
      expect(rollout.finished[b]).toBe(rollout.responses[b][length - 1] === tokenizer.eosId);
    }
  });
});

describe('PPO training step', () => {
  test('runs ppoEpochs × minibatches steps in one call; the first step starts at ratio 1', async () => {
    const config = resolvePpoConfig({
      ppoEpochs: 3,
      minibatches: 2,
      rolloutBatchSize: 4,
      lr: 1e-3,
      temperature: sampling.temperature, // the temperature the rollout was sampled and scored at
    });
    const step = buildPpoTrainStep({ models, config, miniBatchSize: 2 });
    expect(step.steps).toBe(6);
    const params: Weights = new Map();
    for (const p of trainedParams(models)) {
      const [role, ...rest] = p.name.split('.');
      const source = role === 'policy' ? policy : rm;
      params.set(p.name, source.get(rest.join('.'))!);
    }
    expect([...params.keys()]).toContain(paramName('critic', 'score.weight'));
    const trainer = await createTrainer(runtime, step, { params });
    const targets = ppoTargets(rollout, rollout.scores, 0.05, config);
    // Epoch e visits rows [0, 1] then [2, 3].
    const rows = int64([6, 1, 2], [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    const report = await trainer.run({ rows }, config.lr, trainInputs(rollout, targets, tokenizer.padId));
    await trainer.release();
    expect(report.loss).toHaveLength(6);
    const M = TRAIN_METRICS;
    // Before any update the training graph's log-probs equal the old ones: no KL, nothing clipped.
    expect(report.metrics[M.approxKl][0]).toBeLessThan(1e-10);
    expect(report.metrics[M.clipFrac][0]).toBe(0);
    expect(report.metrics[M.valueClipFrac][0]).toBe(0);
    // Later steps see the policy it moved: the same minibatch (rows 0, 1) again in epoch 2 has drifted.
    expect(report.metrics[M.approxKl][2]).toBeGreaterThan(1e-8);
    expect(trainer.state.step).toBe(6);
    for (const name of params.keys()) expect(trainer.state.params.get(name)).not.toEqual(params.get(name));
  });
});
