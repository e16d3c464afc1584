// End to end over HTTP with real workers on the CPU: the full SFT -> RM -> PPO pipeline learns the synthetic
// task; a worker killed with SIGKILL mid-stage is replaced and the stage resumes from its checkpoint; a cancel
// stops a running stage within seconds.
import { PpoMetrics } from '@rlhf/contracts';
import {
  type ApiClient,
  createApiClient,
  DEMO_SPEC,
  stageOf,
  submitDemoRun,
  summarize,
  waitForRun,
} from '@rlhf/demo';
import { sortDigitsFiles } from '@rlhf/examples';
import { createRedis, tailEvents } from '@rlhf/queue';
import type { RunningWorker } from '@rlhf/worker';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { baseUrl, createTestTeam, startApi, type TestApi } from './api-helpers.js';
import { spawnTestWorker, startTestWorker, type WorkerLocks } from './worker-helpers.js';

// Crash recovery in seconds instead of a minute.
const FAST_LOCKS: WorkerLocks = { lockDuration: 1500, stalledInterval: 1000, heartbeatIntervalMs: 200 };

async function clientFor(api: TestApi): Promise<ApiClient> {
  const team = await createTestTeam(api.app);
  return createApiClient(await baseUrl(api.app), team.key);
}

describe('the full pipeline over HTTP', () => {
  let api: TestApi;
  let worker: RunningWorker;
  beforeAll(async () => {
    api = await startApi();
    worker = await startTestWorker(api, 'pipeline-worker', FAST_LOCKS);
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });

  test('SFT -> reward model -> PPO completes and each stage learned; metrics, samples, artifacts complete', async () => {
    const team = await createTestTeam(api.app);
    const url = await baseUrl(api.app);
    const client = createApiClient(url, team.key);
    const submitted = await submitDemoRun(client);
    const run = await waitForRun(client, submitted.id);
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');

    // Every setting the trainers resolved is recorded with the run (e.g. maxSeqLen capped to the context).
    const sftSettings = (run.hyperparameters.stages as Record<string, { resolved?: { effective: object } }>)
      .sft;
    expect(sftSettings.resolved?.effective).toMatchObject({
      maxSeqLen: 64,
      totalSteps: DEMO_SPEC.sft.maxSteps,
    });

    const s = await summarize(client, run, 0);
    // SFT: held-out loss falls by far more than half.
    expect(s.sft.evalLossAfter!).toBeLessThan(0.25 * s.sft.evalLossBefore!);
    // RM: held-out pair accuracy on the shipped rankings.
    expect(s.rewardModel.evalAccuracy!).toBeGreaterThanOrEqual(0.85);
    // PPO: the ground truth (not only the RM score) rises, KL stays under the adaptive controller's target.
    expect(s.ppo.groundTruthAfter!).toBeGreaterThan(s.ppo.groundTruthBefore! + 0.05);
    expect(s.ppo.scoreAfter!).toBeGreaterThan(s.ppo.scoreBefore!);
    expect(s.ppo.finalKl!).toBeLessThan(DEMO_SPEC.ppo.kl.target);

    // Every PPO iteration has every metric users know; sample tables every sampleEvery iterations.
    const ppo = stageOf(run, 'ppo');
    const metrics = await client.metrics(run.id, { stageId: ppo.id });
    for (const name of Object.values(PpoMetrics)) {
      const steps = metrics.filter((m) => m.name === name).map((m) => m.step);
      expect(new Set(steps).size, name).toBe(DEMO_SPEC.ppo.iterations);
    }
    const samples = (await client.samples(run.id)).filter((x) => x.stageId === ppo.id);
    expect(samples.length).toBeGreaterThanOrEqual(DEMO_SPEC.ppo.iterations / DEMO_SPEC.ppo.sampleEvery);
    expect(samples.every((x) => x.prompt.startsWith('sort ') && Number.isFinite(x.score))).toBe(true);

    // The exported policy runs in a plain onnxruntime-node session.
    const headers = { authorization: `Bearer ${team.key}` };
    const list = (await (await fetch(`${url}/v1/runs/${run.id}/artifacts`, { headers })).json()) as {
      items: { id: string; key: string; stageId: string }[];
    };
    const policy = list.items.find((a) => a.stageId === ppo.id && a.key.endsWith('/final/policy.onnx'));
    expect(policy, 'final PPO policy.onnx').toBeDefined();
    const download = await fetch(`${url}/v1/runs/${run.id}/artifacts/${policy!.id}/download`, { headers });
    expect(download.status).toBe(200);
    const session = await ort.InferenceSession.create(new Uint8Array(await download.arrayBuffer()));
    expect(session.outputNames).toContain('logits');
    await session.release();

    // Sampling from the finished policy over HTTP.
    const generated = await fetch(`${url}/v1/runs/${run.id}/generate`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ prompts: ['sort 3 1 2:'], maxNewTokens: 12, temperature: 0.01 }),
    });
    expect(generated.status).toBe(200);
    const { completions } = (await generated.json()) as { completions: { response: string }[] };
    expect(completions[0].response).toMatch(/^[ 0-9]+$/);

    // Best of n: samples ranked by the run's reward model, the best returned with its score.
    const bestOf = await fetch(`${url}/v1/runs/${run.id}/generate`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ prompts: ['sort 3 1 2:', 'sort 9 4:'], maxNewTokens: 12, bestOf: 4, seed: 5 }),
    });
    expect(bestOf.status).toBe(200);
    const ranked = (await bestOf.json()) as { completions: { response: string; score: number }[] };
    expect(ranked.completions).toHaveLength(2);
    for (const c of ranked.completions) expect(Number.isFinite(c.score)).toBe(true);
  });
});

async function sftOnlyRun(client: ApiClient, config: Record<string, unknown>) {
  const { readFile } = await import('node:fs/promises');
  const dataset = await client.uploadDataset('sft', 'sft', await readFile(sortDigitsFiles.sft, 'utf8'));
  return client.createRun({
    name: 'sft only',
    model: { preset: 'tiny' },
    stages: [{ kind: 'sft', datasetId: dataset.id, config }],
  });
}

describe('workers that die or are stopped', () => {
  let api: TestApi;
  const workers: RunningWorker[] = [];
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(async () => {
    for (const w of workers) await w.close();
    await api?.close();
  });

  test('kill -9 of a worker mid-stage: another worker resumes from the last checkpoint and the run completes', async () => {
    const client = await clientFor(api);
    // Long enough that the first worker cannot finish before the kill (progress reaches the API with a lag).
    const run = await sftOnlyRun(client, {
      maxSteps: 1000,
      stepsPerCall: 10,
      checkpointEvery: 40,
      evalEvery: 500,
    });
    const doomed = spawnTestWorker(api, 'doomed', { locks: FAST_LOCKS });
    // Killed once a checkpoint exists and training went on past it.
    await pollUntil(async () => ((await client.getRun(run.id)).stages[0].step >= 60 ? true : null));
    doomed.child.kill('SIGKILL');
    await doomed.exited;

    workers.push(await startTestWorker(api, 'rescuer', FAST_LOCKS));
    const done = await waitForRun(client, run.id, () => {}, { timeoutMs: 180_000 });
    expect(done.status).toBe('succeeded');
    expect(done.stages[0].step).toBe(1000);

    // The rescuer started from a checkpoint, not from step 0.
    const redis = createRedis(api.options.redisUrl);
    try {
      const events = (await tailEvents(redis, '0', { prefix: api.prefix, count: 10_000 })).map(
        (e) => e.event,
      );
      const starts = events.filter((e) => e.type === 'stage.started' && e.stageId === done.stages[0].id);
      expect(starts.map((e) => (e.type === 'stage.started' ? e.workerId : ''))).toEqual([
        'doomed',
        'rescuer',
      ]);
      const resumed = starts[1].type === 'stage.started' ? starts[1].resumedFromStep : null;
      // A checkpoint step (every 40), past the first one and short of the end: resumed, not restarted.
      // (The step the API showed lags the worker, so the checkpoint may be newer than what the test saw.)
      expect(resumed).toBeGreaterThanOrEqual(40);
      expect(resumed! % 40).toBe(0);
      expect(resumed).toBeLessThan(1000);
    } finally {
      redis.disconnect();
    }
  });

  test('cancel stops a running stage within 10 s and the run is cancelled', async () => {
    const client = await clientFor(api);
    const run = await sftOnlyRun(client, { maxSteps: 5000, stepsPerCall: 10, checkpointEvery: 1000 });
    if (workers.length === 0) workers.push(await startTestWorker(api, 'rescuer', FAST_LOCKS));
    await pollUntil(async () => ((await client.getRun(run.id)).stages[0].step > 0 ? true : null));
    const started = Date.now();
    await client.cancelRun(run.id);
    const done = await waitForRun(client, run.id, () => {}, { timeoutMs: 10_000, intervalMs: 100 });
    expect(done.status).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(done.stages[0].step).toBeLessThan(5000);
  });
});

async function pollUntil<T>(read: () => Promise<T | null>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`nothing after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
