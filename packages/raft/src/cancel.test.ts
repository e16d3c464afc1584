// Issue 18 item 7: a cancel reaches a RAFT stage inside an iteration far longer than the bound (1,024 SFT steps of
// 64 rows on tiny random models): the steps run as budget-sized calls with the signal checked between them.
import { generatePromptRows } from '@rlhf/examples';
import { expectStopWithinBound, tinyRandomModels } from '@rlhf/ppo/testing/cancel-bound';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, test } from 'vitest';
import { trainRaft } from './raft.js';

const { policy, rewardModel } = tinyRandomModels();

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

test('a cancel 2 s into the fine-tuning of a 1,024-step iteration stops the stage within 15 s', async () => {
  await expectStopWithinBound({
    stage: 'raft',
    reason: 'cancel',
    steps: 1024,
    uninterruptedSeconds: 30,
    train: (hooks) =>
      trainRaft({
        config: {
          iterations: 2,
          promptsPerIteration: 16,
          samplesPerPrompt: 4,
          keepPerPrompt: 2,
          batchSize: 64,
          stepsPerIteration: 1024,
          maxNewTokens: 16,
          checkpointEvery: 100,
        },
        policy,
        rewardModel,
        prompts: generatePromptRows(64, { seed: 3 }),
        runtime,
        hooks,
      }),
  });
}, 300_000);
