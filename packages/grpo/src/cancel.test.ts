// Issue 18 item 7: a pause reaches a GRPO stage inside an iteration far longer than the bound (25,600 update steps
// on a tiny random policy): the update runs as budget-sized calls with the signal checked between them.
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { expectStopWithinBound, tinyRandomModels } from '@rlhf/ppo/testing/cancel-bound';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { PAUSE } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { trainGrpo } from './grpo.js';

const { policy } = tinyRandomModels();

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

test('a pause 2 s into the update of a 25,600-step iteration stops the stage within 15 s', async () => {
  const aborted = await expectStopWithinBound({
    stage: 'grpo',
    reason: PAUSE,
    steps: 100 * 256, // epochs × minibatches: one row per step
    uninterruptedSeconds: 60,
    train: (hooks) =>
      trainGrpo({
        config: {
          iterations: 2,
          promptsPerIteration: 16,
          groupSize: 16,
          minibatches: 256,
          epochs: 100,
          maxNewTokens: 16,
          reward: 'sort-digits',
          checkpointEvery: 100,
        },
        policy,
        task: groundTruthScore,
        prompts: generatePromptRows(64, { seed: 3 }),
        runtime,
        hooks,
      }),
  });
  // Half an update is no checkpoint: the stage resumes from its last one (none yet: from the start).
  expect(aborted.checkpointed).toBe(false);
}, 300_000);
