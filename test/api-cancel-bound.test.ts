// Issue 18 item 7 over REST with a real worker: a cancel reaches a PPO and a GRPO stage inside an iteration far
// longer than the bound (25,600 update steps on tiny), and the worker is free again within it.
import { createApiClient } from '@rlhf/demo';
import { generatePromptRows } from '@rlhf/examples';
import type { RunningWorker } from '@rlhf/worker';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  jsonl,
  SFT_ROWS,
  PREFERENCE_ROWS,
  startApi,
  type TestApi,
  waitFor,
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

let api: TestApi;
let worker: RunningWorker;
beforeAll(async () => {
  api = await startApi();
  worker = await startTestWorker(api, 'cancel-bound-worker');
});
afterAll(async () => {
  await worker?.close();
  await api?.close();
});

const BOUND_SECONDS = 15;
// One iteration: 100 epochs × 256 minibatches of one row each.
const LONG = { minibatches: 256, maxNewTokens: 16, iterations: 2, checkpointEvery: 100 };

test('cancelling a running PPO or GRPO stage stops it within the bound; the worker takes the next run', async () => {
  const team = await createTestTeam(api.app);
  const client = createApiClient(await baseUrl(api.app), team.key);
  const sft = (await client.uploadDataset('sft', 'sft', jsonl(SFT_ROWS))).id;
  const pairs = (await client.uploadDataset('pairs', 'preference', jsonl(PREFERENCE_ROWS))).id;
  const prompts = (
    await client.uploadDataset('prompts', 'prompt', jsonl(generatePromptRows(64, { seed: 3 })))
  ).id;
  const warmup = { kind: 'sft', datasetId: sft, config: { maxSteps: 2 } };
  const specs = {
    ppo: [
      warmup,
      { kind: 'reward_model', datasetId: pairs, config: { maxSteps: 2 } },
      { kind: 'ppo', datasetId: prompts, config: { ...LONG, rolloutBatchSize: 256, ppoEpochs: 100 } },
    ],
    grpo: [
      warmup,
      {
        kind: 'grpo',
        datasetId: prompts,
        config: { ...LONG, promptsPerIteration: 16, groupSize: 16, epochs: 100, reward: 'sort-digits' },
      },
    ],
  };
  const latencies: Record<string, number> = {};
  for (const [kind, stages] of Object.entries(specs)) {
    const run = await client.createRun({ model: { preset: 'tiny' }, stages });
    const stageOf = async () => (await client.getRun(run.id)).stages.find((st) => st.kind === kind)!;
    await waitFor(async () => (await stageOf()).status === 'running', 180_000);
    // Past the rollout and the sessions' set-up: the update's calls are running.
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const cancelled = performance.now();
    await client.cancelRun(run.id);
    const stage = await waitFor(async () => {
      const current = await stageOf();
      return current.status === 'cancelled' && current;
    }, 60_000);
    latencies[kind] = (performance.now() - cancelled) / 1000;
    expect(stage.status).toBe('cancelled');
    // The iteration never finished: the stage reported no metric.
    expect(await client.metrics(run.id, { stageId: stage.id })).toEqual([]);
  }
  console.log(JSON.stringify({ cancelLatencySeconds: latencies }));
  for (const latency of Object.values(latencies)) expect(latency).toBeLessThan(BOUND_SECONDS);
  // The worker is free: a short run submitted now runs to the end.
  const next = await client.createRun({ model: { preset: 'tiny' }, stages: [warmup] });
  await waitFor(async () => (await client.getRun(next.id)).status === 'succeeded', 120_000);
}, 600_000);
