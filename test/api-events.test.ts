// Worker events -> Postgres (exactly once across a restart), run lifecycle and admission, SSE over
// real HTTP, the workers list.
import { pruneCheckpoints, saveCheckpoint } from '@rlhf/artifacts';
import { publishEvent, type StageEvent, writeHeartbeat } from '@rlhf/queue';
import { createEventConsumer } from '@rlhf/api';
import { createLogger } from '@rlhf/config';
import { initParams, presetConfig, saveCheckpoint as saveModel } from '@rlhf/model';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  jsonl,
  pipelineSpec,
  SFT_ROWS,
  startApi,
  type TestApi,
  waitFor,
} from './api-helpers.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ claimIdleMs: 50 });
});
afterAll(() => api?.close());

type Headers = { authorization: string };
interface StageRef {
  id: string;
  kind: string;
}
interface RunRef {
  id: string;
  stages: StageRef[];
}

async function createRun(headers: Headers): Promise<RunRef> {
  const response = await api.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers,
    payload: await pipelineSpec(api.app, headers),
  });
  return response.json();
}

const publish = (event: StageEvent) => publishEvent(api.app.services.redis, event, api.prefix);
const now = () => new Date().toISOString();
const started = (run: RunRef, stage: StageRef): StageEvent => ({
  type: 'stage.started',
  runId: run.id,
  stageId: stage.id,
  workerId: 'gpu-0',
  attempt: 1,
  resumedFromStep: null,
  totalSteps: 10,
  hyperparameters: { vocabSize: 260 },
});
const completed = (run: RunRef, stage: StageRef): StageEvent => ({
  type: 'stage.completed',
  runId: run.id,
  stageId: stage.id,
  result: {
    stageId: stage.id,
    kind: stage.kind as 'sft',
    modelKey: `runs/${run.id}/${stage.id}/final`,
    step: 10,
  },
});
const runStatus = async (headers: Headers, runId: string) =>
  (await api.app.inject({ method: 'GET', url: `/v1/runs/${runId}`, headers })).json();

describe('event consumer', () => {
  test('persists metrics exactly once across a restart, including events read but never acked', async () => {
    const { headers } = await createTestTeam(api.app);
    const run = await createRun(headers);
    const stage = run.stages[0];
    const metrics = (step: number): StageEvent => ({
      type: 'metrics',
      runId: run.id,
      stageId: stage.id,
      step,
      values: { 'train/loss': 3 - step / 10, 'train/lr': 1e-4 },
      time: now(),
    });
    await publish(started(run, stage));
    for (const step of [1, 2, 3]) await publish(metrics(step));
    const { prisma } = api.app.services;
    await waitFor(async () => (await prisma.metricPoint.count({ where: { stageId: stage.id } })) === 6);

    // The API goes down. Meanwhile a worker reports step 4 and, resuming from a checkpoint, step 3 again.
    await api.app.close();
    const worker = new Redis(api.options.redisUrl);
    await publishEvent(worker, metrics(4), api.prefix);
    await publishEvent(worker, metrics(3), api.prefix);
    // A consumer read them but died before acking.
    const reader = worker;
    const stream = `${api.prefix}:events`;
    const read = (await reader.xreadgroup(
      'GROUP',
      'api',
      'crashed',
      'COUNT',
      10,
      'STREAMS',
      stream,
      '>',
    )) as [string, [string, string[]][]][];
    expect(read[0][1]).toHaveLength(2);
    expect(((await reader.xpending(stream, 'api')) as [number])[0]).toBe(2);

    const restarted = await api.restart();
    api.app = restarted;
    await waitFor(async () => ((await reader.xpending(stream, 'api')) as [number])[0] === 0);
    reader.disconnect();
    const points = await restarted.services.prisma.metricPoint.findMany({
      where: { stageId: stage.id, name: 'train/loss' },
      orderBy: { step: 'asc' },
    });
    expect(points.map((p) => [p.step, p.value])).toEqual([
      [1, 2.9],
      [2, 2.8],
      [3, 2.7],
      [4, 2.6],
    ]);
    expect(await restarted.services.prisma.metricPoint.count({ where: { stageId: stage.id } })).toBe(8);
    const history = await restarted.inject({
      method: 'GET',
      url: `/v1/runs/${run.id}/metrics?name=train/loss`,
      headers,
    });
    expect(history.json().items.map((p: { step: number }) => p.step)).toEqual([1, 2, 3, 4]);
    const detail = await runStatus(headers, run.id);
    expect(detail.stages[0].latestMetrics).toEqual({ 'train/loss': 2.6, 'train/lr': 1e-4 });
    const text = (await restarted.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/rlhf_api_events_persisted_total\{type="metrics"\} 2/);
  });
});

describe('run lifecycle', () => {
  test('stage events drive statuses; a finished run lets the next waiting run in', async () => {
    const { headers } = await createTestTeam(api.app, { maxActiveStages: 1 });
    const first = await createRun(headers);
    const second = await createRun(headers);
    expect((await runStatus(headers, second.id)).admittedAt).toBeNull();
    const [sft, rm, ppo] = first.stages;

    await publish(started(first, sft));
    await publish({ type: 'stage.progress', runId: first.id, stageId: sft.id, step: 5, totalSteps: 10 });
    await waitFor(async () => (await runStatus(headers, first.id)).stages[0].step === 5);
    let run = await runStatus(headers, first.id);
    expect(run).toMatchObject({ status: 'running' });
    expect(run.stages[0]).toMatchObject({ status: 'running', progress: 0.5, workerId: 'gpu-0', attempts: 1 });
    expect(run.hyperparameters.stages.sft).toMatchObject({ maxSteps: 10, vocabSize: 260 });

    await publish({
      type: 'samples',
      runId: first.id,
      stageId: sft.id,
      step: 5,
      rows: [{ prompt: 'sort: 2 1', response: '1 2', score: 0.9, kl: 0.01, eos: false }],
    });
    // Checkpoints as the worker writes them: a directory per step, reported once written; older ones pruned.
    const { artifacts } = api.app.services;
    const stageRef = { runId: first.id, stageId: sft.id };
    for (const step of [5, 10]) {
      const checkpoint = await saveCheckpoint(artifacts, stageRef, step, {
        'model.safetensors': `weights ${step}`,
      });
      await pruneCheckpoints(artifacts, stageRef, 1);
      await publish({
        type: 'artifact',
        ...stageRef,
        kind: 'checkpoint',
        key: checkpoint.dir,
        bytes: 9,
        step,
      });
    }
    const finalDir = `runs/${first.id}/${sft.id}/final`;
    await artifacts.put(`${finalDir}/config.json`, '{}');
    await artifacts.put(`${finalDir}/model.safetensors`, 'final weights');
    await publish({ type: 'artifact', ...stageRef, kind: 'final', key: finalDir, bytes: 15 });
    for (const stage of [sft, rm, ppo]) {
      if (stage !== sft) await publish(started(first, stage));
      await publish(completed(first, stage));
    }
    await waitFor(async () => (await runStatus(headers, first.id)).status === 'succeeded');
    run = await runStatus(headers, first.id);
    expect(run.progress).toBe(1);
    expect(run.stages.map((st: { modelKey: string }) => st.modelKey)).toEqual(
      [sft, rm, ppo].map((st) => `runs/${first.id}/${st.id}/final`),
    );
    const samples = await api.app.inject({ method: 'GET', url: `/v1/runs/${first.id}/samples`, headers });
    expect(samples.json().items).toEqual([
      { stageId: sft.id, step: 5, prompt: 'sort: 2 1', response: '1 2', score: 0.9, kl: 0.01, eos: false },
    ]);
    const listed = await api.app.inject({ method: 'GET', url: `/v1/runs/${first.id}/artifacts`, headers });
    const items: { kind: string; key: string; step: number | null; sizeBytes: number }[] =
      listed.json().items;
    const checkpointDir = `runs/${first.id}/${sft.id}/checkpoints/step-10`;
    expect(items.map((a) => [a.kind, a.key, a.step]).sort()).toEqual([
      ['checkpoint', `${checkpointDir}/model.safetensors`, 10],
      ['checkpoint', `${checkpointDir}/state.json`, 10],
      ['model', `${finalDir}/config.json`, null],
      ['model', `${finalDir}/model.safetensors`, null],
    ]);
    const weights = items.find((a) => a.key === `${finalDir}/model.safetensors`) as { id?: string };
    const download = await api.app.inject({
      method: 'GET',
      url: `/v1/runs/${first.id}/artifacts/${weights.id}/download`,
      headers,
    });
    expect(download.headers['content-disposition']).toBe('attachment; filename="model.safetensors"');
    expect(download.body).toBe('final weights');

    // The finished run freed the team's only slot.
    const next = await waitFor(async () => {
      const status = await runStatus(headers, second.id);
      return status.admittedAt ? status : null;
    });
    expect(next.stages.map((st: { status: string }) => st.status)).toEqual(['queued', 'queued', 'queued']);
  });

  test('a stage that fails for good fails the run and cancels the stages after it', async () => {
    const { headers } = await createTestTeam(api.app);
    const run = await createRun(headers);
    const [sft] = run.stages;
    await publish(started(run, sft));
    await publish({
      type: 'stage.failed',
      runId: run.id,
      stageId: sft.id,
      error: 'loss is NaN',
      willRetry: true,
    });
    await waitFor(async () => (await runStatus(headers, run.id)).stages[0].error === 'loss is NaN');
    expect((await runStatus(headers, run.id)).stages[0].status).toBe('queued');
    await publish({
      type: 'stage.failed',
      runId: run.id,
      stageId: sft.id,
      error: 'loss is NaN',
      willRetry: false,
    });
    const failed = await waitFor(async () => {
      const status = await runStatus(headers, run.id);
      return status.status === 'failed' ? status : null;
    });
    expect(failed.error).toBe('sft stage failed: loss is NaN');
    expect(failed.stages.map((st: { status: string }) => st.status)).toEqual([
      'failed',
      'cancelled',
      'cancelled',
    ]);
    // A late event of the failed stage changes nothing.
    await publish(completed(run, sft));
    await publish({ type: 'stage.progress', runId: run.id, stageId: sft.id, step: 9, totalSteps: 10 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await runStatus(headers, run.id)).stages[0]).toMatchObject({ status: 'failed', modelKey: null });
  });
});

describe('server-sent events (real HTTP)', () => {
  test('streams the run, then its events, and ends when the run finishes', async () => {
    const { headers } = await createTestTeam(api.app);
    const run = await createRun(headers);
    const response = await fetch(`${await baseUrl(api.app)}/v1/runs/${run.id}/events`, { headers });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events: { event: string; data: { type?: string; status?: string; values?: object } }[] = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      }
    })();
    await waitFor(async () => events.length > 0);
    expect(events[0]).toMatchObject({ event: 'run', data: { status: 'queued' } });

    await publish({
      type: 'metrics',
      runId: run.id,
      stageId: run.stages[0].id,
      step: 1,
      values: { 'train/loss': 2 },
      time: now(),
    });
    await waitFor(async () => events.some((e) => e.event === 'metrics'));
    expect(events.find((e) => e.event === 'metrics')?.data.values).toEqual({ 'train/loss': 2 });
    await api.app.inject({ method: 'POST', url: `/v1/runs/${run.id}/cancel`, headers });
    await reading; // the stream ends by itself
    expect(events.map((e) => e.event).slice(-2)).toEqual(['run.updated', 'end']);
  });

  test('closing the app closes open streams (shutdown does not hang)', async () => {
    const { headers } = await createTestTeam(api.app);
    const run = await createRun(headers);
    const app = await api.restart();
    const response = await fetch(`${await baseUrl(app)}/v1/runs/${run.id}/events`, { headers });
    const body = response.body as ReadableStream<Uint8Array>;
    const reader = body.getReader();
    await reader.read(); // the snapshot
    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(3000);
    let done = false;
    while (!done) done = (await reader.read()).done;
  });
});

describe('uploads over real HTTP', () => {
  test('a streamed upload (no content-length) over the limit is a 413', async () => {
    const { headers } = await createTestTeam(api.app, { maxUploadBytes: 100 });
    const lines = jsonl(Array.from({ length: 50 }, () => SFT_ROWS[0]));
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(lines));
        controller.close();
      },
    });
    const response = await fetch(`${await baseUrl(api.app)}/v1/datasets?name=big&kind=sft`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/jsonl' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });
});

describe('workers', () => {
  test('lists live workers; a team sees only its own stage ids', async () => {
    const mine = await createTestTeam(api.app);
    const theirs = await createTestTeam(api.app);
    const run = await createRun(mine.headers);
    const beat = (workerId: string, currentStageId: string | null) =>
      writeHeartbeat(
        api.app.services.redis,
        {
          workerId,
          hostname: 'gpu-box',
          pid: 1,
          device: 'cuda:0',
          currentRunId: currentStageId ? run.id : null,
          currentStageId,
          startedAt: now(),
          lastHeartbeat: now(),
        },
        { prefix: api.prefix },
      );
    await beat('w-busy', run.stages[0].id);
    await beat('w-idle', null);
    const list = async (headers: Headers) =>
      (await api.app.inject({ method: 'GET', url: '/v1/workers', headers })).json().items;
    expect(await list(mine.headers)).toMatchObject([
      { id: 'w-busy', device: 'cuda:0', hostname: 'gpu-box', status: 'busy', stageId: run.stages[0].id },
      { id: 'w-idle', status: 'idle', stageId: null },
    ]);
    expect(await list(theirs.headers)).toMatchObject([
      { id: 'w-busy', status: 'busy', stageId: null },
      { id: 'w-idle', status: 'idle', stageId: null },
    ]);
  });
});

describe('generate', () => {
  test("samples from a finished run's SFT policy; a missing model or stage is a 409", async () => {
    const { headers } = await createTestTeam(api.app);
    const run = await createRun(headers);
    const [sft] = run.stages;
    const generate = (payload: object) =>
      api.app.inject({ method: 'POST', url: `/v1/runs/${run.id}/generate`, headers, payload });
    expect((await generate({ prompts: ['sort: 2 1'] })).json().error.code).toBe('no_policy');

    // The SFT stage finished with a real (untrained) tiny model in its final directory.
    const config = presetConfig('tiny');
    const finalDir = `runs/${run.id}/${sft.id}/final`;
    await saveModel(api.app.services.artifacts.path(finalDir), config, initParams(config, 7));
    await publish(started(run, sft));
    await publish(completed(run, sft));
    await waitFor(async () => (await runStatus(headers, run.id)).stages[0].status === 'succeeded');

    const body = { prompts: ['sort: 2 1', 'sort: 9 8 7'], stage: 'sft', maxNewTokens: 12, seed: 3 };
    const first = await generate(body);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json().stageId).toBe(sft.id);
    expect(first.json().completions).toHaveLength(2);
    for (const completion of first.json().completions) {
      expect(typeof completion.response).toBe('string');
      expect(typeof completion.eos).toBe('boolean');
    }
    // The same seed gives the same samples.
    expect((await generate(body)).json()).toEqual(first.json());
    const tooLong = await generate({ ...body, maxNewTokens: 100 });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().error.message).toBe(
      "/maxNewTokens: must be <= 62 (the model's context is 64 tokens)",
    );
    expect((await generate({ prompts: ['x'], stage: 'ppo' })).json().error.code).toBe('no_policy');
  });
});

describe('a bad event', () => {
  test('is retried, then logged and dropped; the events after it are persisted', async () => {
    const { headers } = await createTestTeam(api.app);
    const run = await createRun(headers);
    const stage = run.stages[0];
    // A consumer group of its own reads the same stream (the app's consumer sees these events too).
    const consumer = createEventConsumer({
      prisma: api.app.services.prisma,
      artifacts: api.app.services.artifacts,
      redis: new Redis(api.options.redisUrl, { maxRetriesPerRequest: null }),
      commands: api.app.services.redis,
      prefix: api.prefix,
      group: 'poison-test',
      consumer: 'test',
      blockMs: 100,
      retryDelayMs: 10,
      logger: createLogger('poison-test', 'silent'),
    });
    await consumer.start();
    try {
      const bad = {
        type: 'artifact',
        runId: run.id,
        stageId: stage.id,
        kind: 'final',
        key: 'x.bin',
        bytes: 1.5,
      };
      await api.app.services.artifacts.put('x.bin', 'x');
      await publish(bad as StageEvent);
      const last = await publish({
        type: 'metrics',
        runId: run.id,
        stageId: stage.id,
        step: 7,
        values: { 'eval/loss': 1 },
        time: now(),
      });
      // The group read up to the last event and acked everything: the bad event did not block it.
      const redis = api.app.services.redis;
      const stream = `${api.prefix}:events`;
      await waitFor(async () => {
        const groups = (await redis.xinfo('GROUPS', stream)) as string[][];
        const info = groups.find((g) => g[1] === 'poison-test') ?? [];
        const field = (name: string) => info[info.indexOf(name) + 1];
        return field('last-delivered-id') === last && Number(field('pending')) === 0;
      });
      const point = await api.app.services.prisma.metricPoint.findUnique({
        where: { stageId_name_step: { stageId: stage.id, name: 'eval/loss', step: 7 } },
      });
      expect(point?.value).toBe(1);
      expect(await api.app.services.prisma.artifact.findUnique({ where: { path: 'x.bin' } })).toBeNull();
    } finally {
      await consumer.stop();
    }
  });
});
