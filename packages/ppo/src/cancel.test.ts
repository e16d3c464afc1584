// Issue 18 item 7: a cancel reaches a PPO stage inside an iteration far longer than the bound (25,600 update steps
// on tiny random models): the update runs as budget-sized calls with the signal checked between them.
import { generatePromptRows } from '@rlhf/examples';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, test } from 'vitest';
import { expectStopWithinBound, tinyRandomModels } from './testing/cancel-bound.js';
import { trainPpo } from './train.js';

const { policy, rewardModel } = tinyRandomModels();

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

test('a cancel 2 s into the update of a 25,600-step iteration stops the stage within 15 s', async () => {
  await expectStopWithinBound({
    stage: 'ppo',
    reason: 'cancel',
    steps: 100 * 256, // ppoEpochs × minibatches: one row per step
    uninterruptedSeconds: 60,
    train: (hooks) =>
      trainPpo({
        config: {
          iterations: 2,
          rolloutBatchSize: 256,
          minibatches: 256,
          ppoEpochs: 100,
          maxNewTokens: 16,
          checkpointEvery: 100,
          seed: 7,
        },
        policy,
        rewardModel,
        prompts: generatePromptRows(64, { seed: 3 }),
        runtime,
        hooks,
      }),
  });
}, 300_000);
