// Issue 18 item 7: a pause reaches a GRPO stage inside an iteration far longer than the bound (25,600 update steps
// on a tiny random policy): the update runs as budget-sized calls with the signal checked between them.
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { type GptConfig, initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { type ModelWeights, PAUSE, StageAbortedError } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { trainGrpo } from './grpo.js';

const config: GptConfig = presetConfig('tiny');
const policy: ModelWeights = { config, params: initParams(config, 1) };

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

test('a pause 2 s into the update of a 25,600-step iteration stops the stage within 15 s', async () => {
  const K = 100 * 256; // epochs × minibatches: one row per step
  const controller = new AbortController();
  const logs: string[] = [];
  const metrics: number[] = [];
  let abortedAt = 0;
  const result = await trainGrpo({
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
    hooks: {
      signal: controller.signal,
      onMetrics: (step) => {
        metrics.push(step);
      },
      log: (message) => {
        logs.push(message);
        // The budgeted trainer's first measurement: the update is under way.
        if (abortedAt === 0 && /steps took/.test(message)) {
          abortedAt = -1;
          setTimeout(() => {
            abortedAt = performance.now();
            controller.abort(PAUSE);
          }, 2000);
        }
      },
    },
  }).catch((error: unknown) => error);
  const latency = (performance.now() - abortedAt) / 1000;
  console.log(JSON.stringify({ pauseLatencySeconds: latency, logs }));
  expect(result).toBeInstanceOf(StageAbortedError);
  expect((result as StageAbortedError).reason).toBe(PAUSE);
  // Half an update is no checkpoint: the stage resumes from its last one (none yet: from the start).
  expect((result as StageAbortedError).checkpointed).toBe(false);
  expect(latency).toBeLessThan(15);
  expect(metrics).toEqual([]); // stopped inside the first iteration
  // One step's measured time × K: uninterrupted, the iteration would have run far past the bound.
  const perStep = Number(/grpo: 1 steps took ([\d.]+) s/.exec(logs.join('\n'))?.[1]);
  expect(perStep * K).toBeGreaterThan(60);
}, 300_000);
