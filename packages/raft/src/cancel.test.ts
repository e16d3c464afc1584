// Issue 18 item 7: a cancel reaches a RAFT stage inside an iteration far longer than the bound (1,024 SFT steps of
// 64 rows on tiny random models): the steps run as budget-sized calls with the signal checked between them.
import { generatePromptRows } from '@rlhf/examples';
import { type GptConfig, initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { type ModelWeights, StageAbortedError } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { trainRaft } from './raft.js';

const config: GptConfig = presetConfig('tiny');
const policy: ModelWeights = { config, params: initParams(config, 1) };
const rmConfig: GptConfig = { ...config, scalarHead: true };
const rewardModel: ModelWeights = { config: rmConfig, params: initParams(rmConfig, 2) };

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

test('a cancel 2 s into the fine-tuning of a 1,024-step iteration stops the stage within 15 s', async () => {
  const K = 1024;
  const controller = new AbortController();
  const logs: string[] = [];
  const metrics: number[] = [];
  let abortedAt = 0;
  const result = await trainRaft({
    config: {
      iterations: 2,
      promptsPerIteration: 16,
      samplesPerPrompt: 4,
      keepPerPrompt: 2,
      batchSize: 64,
      stepsPerIteration: K,
      maxNewTokens: 16,
      checkpointEvery: 100,
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
        // The budgeted trainer's first measurement: the fine-tuning is under way.
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
  const perStep = Number(/raft: 1 steps took ([\d.]+) s/.exec(logs.join('\n'))?.[1]);
  expect(perStep * K).toBeGreaterThan(30);
}, 300_000);
