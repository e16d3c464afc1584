// Issue 18: a cancel or pause reaches a sampling stage inside its rollout, a generation of 4,096 rows × 448 new tokens
// on tiny random models (longer than the 15 s bound in one call): the rows run as budget-sized calls, the signal checked between.
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { trainGrpo } from '@rlhf/grpo';
import { trainPpo } from '@rlhf/ppo';
import { type GptConfig, initParams, presetConfig } from '@rlhf/model';
import { trainRaft } from '@rlhf/raft';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { PAUSE, StageAbortedError, type StageHooks } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';

const ROWS = 4096; // the most rows a PPO rollout may have
const NEW_TOKENS = 448;
const BOUND_SECONDS = 15;
// tiny with a longer context, so that a row's generation is long.
const config: GptConfig = { ...presetConfig('tiny'), maxPositions: 512 };
const rmConfig: GptConfig = { ...config, scalarHead: true };
const policy = { config, params: initParams(config, 1) };
const rewardModel = { config: rmConfig, params: initParams(rmConfig, 2) };
const prompts = generatePromptRows(64, { seed: 3 });

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

/**
 * Aborts the stage 2 s after its generator's first measured call and asserts it stopped within 15 s, inside the
 * first iteration, while the rollout's rows at the pace of its largest measured call would take longer than that.
 */
async function expectStopInRollout(
  stage: string,
  reason: string,
  train: (hooks: StageHooks) => Promise<unknown>,
): Promise<void> {
  const controller = new AbortController();
  const logs: string[] = [];
  const metrics: number[] = [];
  let abortedAt = 0;
  const result = await train({
    signal: controller.signal,
    onMetrics: (step) => {
      metrics.push(step);
    },
    log: (message) => {
      logs.push(message);
      if (abortedAt === 0 && message.startsWith(`${stage}: generate: 1 rows took`)) {
        abortedAt = -1;
        setTimeout(() => {
          abortedAt = performance.now();
          controller.abort(reason);
        }, 2000);
      }
    },
  }).catch((error: unknown) => error);
  const latencySeconds = (performance.now() - abortedAt) / 1000;
  const calls = logs.flatMap((line) => {
    const m = new RegExp(`^${stage}: generate: (\\d+) rows took ([\\d.]+) s`).exec(line);
    return m ? [{ rows: Number(m[1]), seconds: Number(m[2]) }] : [];
  });
  if (calls.length === 0) throw new Error(`no generation was measured: ${String(result)}`);
  const largest = calls.reduce((a, b) => (b.rows > a.rows ? b : a));
  const uninterruptedSeconds = (ROWS * largest.seconds) / largest.rows;
  console.log(JSON.stringify({ stage, reason, latencySeconds, uninterruptedSeconds, calls }));
  expect(result).toBeInstanceOf(StageAbortedError);
  expect((result as StageAbortedError).reason).toBe(reason);
  expect((result as StageAbortedError).checkpointed).toBe(false);
  expect(metrics).toEqual([]); // stopped inside the first iteration
  expect(logs.some((line) => line.includes('steps took'))).toBe(false); // in the rollout, before any update
  expect(latencySeconds).toBeLessThan(BOUND_SECONDS);
  // One call of the whole rollout would itself outlast the bound (at 192 new tokens an idle CI measured 13-15 s,
  // so the rows are 448 tokens long), so only the split into calls explains the stop.
  expect(uninterruptedSeconds).toBeGreaterThan(BOUND_SECONDS);
}

test('GRPO: a pause 2 s into a 4,096-row sampling stops the stage within 15 s', async () => {
  await expectStopInRollout('grpo', PAUSE, (hooks) =>
    trainGrpo({
      config: {
        iterations: 2,
        promptsPerIteration: 64,
        groupSize: 64,
        minibatches: 64,
        epochs: 1,
        maxNewTokens: NEW_TOKENS,
        reward: 'sort-digits',
        checkpointEvery: 100,
      },
      policy,
      task: groundTruthScore,
      prompts,
      runtime,
      hooks,
    }),
  );
}, 300_000);

test('PPO: a cancel 2 s into a 4,096-row rollout stops the stage within 15 s', async () => {
  await expectStopInRollout('ppo', 'cancel', (hooks) =>
    trainPpo({
      config: {
        iterations: 2,
        rolloutBatchSize: ROWS,
        minibatches: 64,
        ppoEpochs: 1,
        maxNewTokens: NEW_TOKENS,
        checkpointEvery: 100,
        seed: 7,
      },
      policy,
      rewardModel,
      prompts,
      runtime,
      hooks,
    }),
  );
}, 300_000);

test('RAFT: a cancel 2 s into a 4,096-row sampling stops the stage within 15 s', async () => {
  await expectStopInRollout('raft', 'cancel', (hooks) =>
    trainRaft({
      config: {
        iterations: 2,
        promptsPerIteration: 64,
        samplesPerPrompt: 64,
        keepPerPrompt: 2,
        batchSize: 16,
        stepsPerIteration: 4,
        maxNewTokens: NEW_TOKENS,
        checkpointEvery: 100,
      },
      policy,
      rewardModel,
      prompts,
      runtime,
      hooks,
    }),
  );
}, 300_000);
