// The reward-model adapter scores text as the reward model was trained ([bos] + prompt, response + [eos]), and the
// named-task adapter names its one part; trainGrpo trains on either through the same BatchReward.
import { GrpoMetrics, rewardPartMetric } from '@rlhf/contracts';
import { ByteTokenizer, createScorer, initParams, presetConfig } from '@rlhf/model';
import { ppoPrompts, sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { type ModelWeights, taskReward } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { trainGrpo } from './grpo.js';
import { createRewardModelReward, REWARD_MODEL_PART } from './rewards.js';

let runtime: Runtime;
const config = { ...presetConfig('tiny'), scalarHead: true };
const rm: ModelWeights = { config, params: initParams(config, 5) };
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

test('reward model: [bos] + prompt and response + [eos], a response at the budget keeps no EOS', async () => {
  const tokenizer = new ByteTokenizer();
  const reward = await createRewardModelReward(runtime, rm, {
    tokenizer,
    maxPromptLen: 16,
    maxResponseLen: 3,
  });
  const scorer = await createScorer(runtime, config, { outputs: ['scores'] });
  try {
    const rows = [{ prompt: 'ab' }, { prompt: 'xyz' }];
    const out = await reward.reward(rows, ['c', 'defg']);
    const bytes = (s: string) => [...Buffer.from(s)];
    const expected = await scorer.score({
      params: rm.params,
      prompts: [
        [tokenizer.bosId, ...bytes('ab')],
        [tokenizer.bosId, ...bytes('xyz')],
      ],
      padId: tokenizer.padId,
      // 'c' + EOS (padded); 'defg' cut to the budget of 3: 'def', no EOS.
      responses: [[bytes('c')[0], tokenizer.eosId, tokenizer.padId], bytes('def')],
      responseMask: [
        [1, 1, 0],
        [1, 1, 1],
      ],
    });
    expect(out.scores).toHaveLength(2);
    out.scores.forEach((s, i) => {
      expect(s).toBeCloseTo(expected.scores![i], 5);
    });
    expect(out.parts).toEqual({ [REWARD_MODEL_PART]: out.scores });
    await expect(reward.reward(rows, ['x'])).rejects.toThrow(/2 rows for 1 responses/);
  } finally {
    await reward.release();
    await scorer.release();
  }
});

test('a named task is a BatchReward of one part', async () => {
  const reward = taskReward('length', (prompt, response) => prompt.length + response.length);
  expect(await reward([{ prompt: 'ab' }, { prompt: '' }], ['c', ''])).toEqual({
    scores: [3, 0],
    parts: { length: [3, 0] },
  });
});

test('trainGrpo on the reward model path: its scores are the reward, logged as reward/reward_model', async () => {
  const metrics: Record<string, number>[] = [];
  await trainGrpo({
    config: { iterations: 1, promptsPerIteration: 4, groupSize: 2, maxNewTokens: 8, reward: 'reward_model' },
    policy: await sftPolicy(runtime),
    rewardModel: rm,
    prompts: ppoPrompts(16),
    runtime,
    hooks: { onMetrics: (_, values) => void metrics.push(values) },
  });
  expect(metrics[0][rewardPartMetric(REWARD_MODEL_PART)]).toBeCloseTo(metrics[0][GrpoMetrics.reward], 10);
}, 600_000);
