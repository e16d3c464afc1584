import { generatePromptRows } from '@rlhf/examples';
import { createRuntime } from '@rlhf/runtime';
import { evaluateRewardModel } from '@rlhf/reward-model';
import { test } from 'vitest';
import { defaultFixtureSettings, rewardModel, sampleRankings, sftPolicy } from './testing/sort-digits.js';

test('scratch2', async () => {
  const runtime = await createRuntime({ device: 'cpu' });
  for (const rmSteps of [300]) {
    const fx = { ...defaultFixtureSettings, rmSteps };
    let t = performance.now();
    const policy = await sftPolicy(runtime, fx);
    console.log('sft s', (performance.now() - t) / 1000);
    t = performance.now();
    const rm = await rewardModel(runtime, fx);
    console.log('rm s', (performance.now() - t) / 1000, rm.metadata);
    const rows = await sampleRankings(runtime, policy, generatePromptRows(300, { seed: 99 }), 4, 12, 5);
    console.log(rows.length, rows.slice(0, 3));
    console.log(await evaluateRewardModel({ model: rm, rows, runtime }));
  }
  await runtime.close();
}, 900_000);
