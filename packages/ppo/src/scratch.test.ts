import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { resolvePpoConfig } from '@rlhf/contracts';
import { createRuntime } from '@rlhf/runtime';
import { test } from 'vitest';
import { defaultFixtureSettings, rewardModel, sftPolicy } from './testing/sort-digits.js';
const fx = { ...defaultFixtureSettings, sftSteps: 600, rmSteps: Number(process.env.RM ?? 300) };
import { trainPpo } from './train.js';

test('scratch', async () => {
  const runtime = await createRuntime({ device: 'cpu' });
  let t = performance.now();
  const policy = await sftPolicy(runtime, fx);
  console.log('sft', (performance.now() - t) / 1000);
  t = performance.now();
  const rm = await rewardModel(runtime, fx);
  console.log('rm', (performance.now() - t) / 1000);
  const prompts = generatePromptRows(500, { seed: 11 });
  const iters = Number(process.env.ITERS ?? 10);
  t = performance.now();
  await trainPpo({
    config: resolvePpoConfig({ iterations: iters, rolloutBatchSize: 64, minibatches: 2, ppoEpochs: Number(process.env.EPOCHS ?? 4), maxNewTokens: 12, lr: Number(process.env.LR ?? 1e-3), kl: { coef: Number(process.env.BETA ?? 0.05), type: (process.env.KLTYPE ?? 'fixed') as 'fixed', target: 3, horizon: 500 } }),
    policy, rewardModel: rm, prompts, runtime, groundTruth: groundTruthScore,
    hooks: { onMetrics: (s, m) => console.log(s, JSON.stringify(Object.fromEntries(Object.entries(m).filter(([k]) => /objective\/(kl|scores|ground)|timing\/step|clipfrac|approx|explained|kl_ctl/.test(k)).map(([k, v]) => [k, +v.toFixed(4)])))),
      onSamples: (s, rows) => console.log(JSON.stringify(rows)) },
  });
  console.log('ppo', (performance.now() - t) / 1000);
  await runtime.close();
}, 600_000);
