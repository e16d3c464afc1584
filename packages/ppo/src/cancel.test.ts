// Issue 18 item 7: a cancel reaches a PPO stage inside an iteration far longer than the bound (25,600 update steps
// on tiny random models): the update runs as budget-sized calls with the signal checked between them.
import { generatePromptRows } from '@rlhf/examples';
import { type GptConfig, initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { type ModelWeights, StageAbortedError } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { trainPpo } from './train.js';

const policyConfig: GptConfig = presetConfig('tiny');
const policy: ModelWeights = { config: policyConfig, params: initParams(policyConfig, 1) };
const rmConfig: GptConfig = { ...policyConfig, scalarHead: true };
const rewardModel: ModelWeights = { config: rmConfig, params: initParams(rmConfig, 2) };

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

test('a cancel 2 s into the update of a 25,600-step iteration stops the stage within 15 s', async () => {
  const K = 100 * 256; // ppoEpochs × minibatches: one row per step
  const controller = new AbortController();
  const logs: string[] = [];
  const metrics: number[] = [];
  let abortedAt = 0;
  const result = await trainPpo({
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
            controller.abort('cancel');
          }, 2000);
        }
      },
    },
  }).catch((error: unknown) => error);
  const latency = (performance.now() - abortedAt) / 1000;
  console.log(JSON.stringify({ cancelLatencySeconds: latency, logs }));
  expect(result).toBeInstanceOf(StageAbortedError);
  expect((result as StageAbortedError).reason).toBe('cancel');
  expect(latency).toBeLessThan(15);
  expect(metrics).toEqual([]); // stopped inside the first iteration
  // One step's measured time × K: uninterrupted, the iteration would have run far past the bound.
  const perStep = Number(/ppo: 1 steps took ([\d.]+) s/.exec(logs.join('\n'))?.[1]);
  expect(perStep * K).toBeGreaterThan(60);
}, 300_000);
