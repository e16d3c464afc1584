// Faults and hostile input (issue 18): a Redis restart that wipes the events stream, its group and the
// queue; admission racing the event consumer; a poison event; NUL characters; out-of-range queries.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { admitRuns, reconcileStages } from '@rlhf/api';
import type { StageJobData, StageJobResult } from '@rlhf/contracts';
import {
  deletePrefix,
  isCancelRequested,
  isPauseRequested,
  keys,
  publishEvent,
  removeHeartbeat,
  STAGE_QUEUE,
  type StageEvent,
  type WorkerHeartbeat,
  writeHeartbeat,
} from '@rlhf/queue';
import { UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ADMIN_KEY, createTestTeam, pipelineSpec, startApi, type TestApi, waitFor } from './api-helpers.js';

type Headers = { authorization: string };
interface RunRef {
  id: string;
  stages: { id: string; kind: string }[];
}
const now = () => new Date().toISOString();
const admin = { authorization: `Bearer ${ADMIN_KEY}` };

async function submit(api: TestApi, headers: Headers): Promise<RunRef> {
  const response = await api.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers,
    payload: await pipelineSpec(api.app, headers),
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json();
}
const runOf = async (api: TestApi, headers: Headers, runId: string) =>
  (await api.app.inject({ method: 'GET', url: `/v1/runs/${runId}`, headers })).json();

const started = (runId: string, stageId: string): Extract<StageEvent, { type: 'stage.started' }> => ({
  type: 'stage.started',
  runId,
  stageId,
  workerId: 'fake',
  attempt: 1,
  resumedFromStep: null,
  totalSteps: 2,
  hyperparameters: {},
});
const metrics = (runId: string, stageId: string, step: number): StageEvent => ({
  type: 'metrics',
  runId,
  stageId,
  step,
  values: { 'train/loss': 1 / step },
  time: now(),
});
const resultOf = (data: StageJobData): StageJobResult => ({
  stageId: data.stageId,
  kind: data.kind,
  modelKey: keys.finalDir(data.runId, data.stageId),
  step: 2,
});

// Its stages last heard of longer ago than a heartbeat's TTL (what reconciliation sees a while later).
async function aWhileAgo(api: TestApi, runId: string): Promise<void> {
  await api.app.services.prisma.$executeRaw`
    UPDATE "Stage" SET "updatedAt" = now() - interval '1 minute' WHERE "runId" = ${runId}`;
}

const heartbeat = (workerId: string, runId: string, stageId: string): WorkerHeartbeat => ({
  workerId,
  hostname: 'gpu-box',
  pid: 1,
  device: 'cuda:0',
  currentRunId: runId,
  currentStageId: stageId,
  startedAt: now(),
  lastHeartbeat: now(),
});

/** A stand-in worker: for each job it takes, `body` publishes what a real worker would. */
function fakeWorker(
  api: TestApi,
  body: (data: StageJobData, publish: (event: StageEvent) => Promise<string>) => Promise<StageJobResult>,
  concurrency = 1,
) {
  const connection = new Redis(api.options.redisUrl, { maxRetriesPerRequest: null });
  const publish = (event: StageEvent) => publishEvent(connection, event, api.prefix);
  const seen: StageJobData[] = [];
  const worker = new Worker<StageJobData, StageJobResult>(
    STAGE_QUEUE,
    async (job) => {
      seen.push(job.data);
      return body(job.data, publish);
    },
    { connection, prefix: api.prefix, concurrency },
  );
  return {
    seen,
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}

// Trains nothing: started, one metric per step, completed.
const quickStage = async (data: StageJobData, publish: (event: StageEvent) => Promise<string>) => {
  await publish(started(data.runId, data.stageId));
  for (const step of [1, 2]) await publish(metrics(data.runId, data.stageId, step));
  const result = resultOf(data);
  await publish({ type: 'stage.completed', runId: data.runId, stageId: data.stageId, result });
  return result;
};

describe('a Redis restart that wipes the stream, its group and the queue', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ claimIdleMs: 50 });
  });
  afterAll(() => api?.close());

  test('the consumer recovers, an in-flight run is queued again and completes, a new run records everything', async () => {
    const { headers } = await createTestTeam(api.app, { maxActiveStages: 5 });
    const { prisma, redis, queue } = api.app.services;
    const inFlight = await submit(api, headers);
    const [sft, rm, ppo] = inFlight.stages;
    // SFT finished, the reward model is running when Redis loses everything.
    const publish = (event: StageEvent) => publishEvent(redis, event, api.prefix);
    await publish(started(inFlight.id, sft.id));
    await publish({
      type: 'stage.completed',
      runId: inFlight.id,
      stageId: sft.id,
      result: { stageId: sft.id, kind: 'sft', modelKey: keys.finalDir(inFlight.id, sft.id), step: 2 },
    });
    await publish(started(inFlight.id, rm.id));
    await waitFor(async () => (await runOf(api, headers, inFlight.id)).stages[1].status === 'running');

    await deletePrefix(redis, api.prefix);
    // (The consumer may have recreated the empty stream and its group already.)
    expect(await queue.getJob(rm.id)).toBeUndefined();

    // Reconciliation (every 15 s; called here) leaves a stage its worker may still be running to it: the
    // worker reported within a heartbeat's TTL, then its heartbeat names the stage.
    await reconcileStages(api.app.services);
    const waiting = await runOf(api, headers, inFlight.id);
    expect(waiting.status).toBe('running');
    expect(waiting.stages.map((st: { status: string }) => st.status)).toEqual([
      'succeeded',
      'running',
      'queued',
    ]);
    expect(await queue.getJob(rm.id)).toBeUndefined();
    await aWhileAgo(api, inFlight.id);
    const beat = heartbeat('gpu-7', inFlight.id, rm.id);
    await writeHeartbeat(redis, beat, { prefix: api.prefix });
    await reconcileStages(api.app.services);
    expect(await queue.getJob(rm.id)).toBeUndefined();
    // No worker has it: the remaining stages are queued again under their ids.
    await removeHeartbeat(redis, beat.workerId, api.prefix);
    await reconcileStages(api.app.services);
    const after = await runOf(api, headers, inFlight.id);
    expect(after.status).toBe('running');
    expect(after.stages.map((st: { status: string }) => st.status)).toEqual([
      'succeeded',
      'queued',
      'queued',
    ]);
    expect(await queue.getJobState(rm.id)).toMatch(/^(waiting|prioritized)$/);
    expect(await queue.getJobState(ppo.id)).toBe('waiting-children');
    expect(await queue.getJob(sft.id)).toBeUndefined();

    const worker = fakeWorker(api, quickStage);
    try {
      await waitFor(async () => (await runOf(api, headers, inFlight.id)).status === 'succeeded');
      // The finished SFT stage's model reaches the stages queued again through their jobs.
      const rmJob = worker.seen.find((job) => job.stageId === rm.id);
      const ppoJob = worker.seen.find((job) => job.stageId === ppo.id);
      expect(rmJob?.inputs).toEqual({ policy: keys.finalDir(inFlight.id, sft.id) });
      expect(ppoJob?.inputs).toEqual({ policy: keys.finalDir(inFlight.id, sft.id) });
      expect(worker.seen.some((job) => job.stageId === sft.id)).toBe(false);

      // A run submitted after the restart: its events and metrics are recorded.
      const fresh = await submit(api, headers);
      const done = await waitFor(async () => {
        const run = await runOf(api, headers, fresh.id);
        return run.status === 'succeeded' ? run : null;
      }, 20_000);
      expect(done.stages.map((st: { status: string }) => st.status)).toEqual([
        'succeeded',
        'succeeded',
        'succeeded',
      ]);
      const stageIds = fresh.stages.map((st) => st.id);
      await waitFor(
        async () => (await prisma.metricPoint.count({ where: { stageId: { in: stageIds } } })) === 6,
      );
      const history = await api.app.inject({
        method: 'GET',
        url: `/v1/runs/${fresh.id}/metrics?name=train/loss`,
        headers,
      });
      expect(history.json().items).toHaveLength(6);
    } finally {
      await worker.close();
    }
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok', events: 'ok' } });
  }, 40_000);

  test('a paused run Redis lost is queued again still paused: its pause flag is set again before its jobs', async () => {
    const { headers } = await createTestTeam(api.app, { maxActiveStages: 5 });
    const { redis, queue } = api.app.services;
    const run = await submit(api, headers);
    const pause = await api.app.inject({ method: 'POST', url: `/v1/runs/${run.id}/pause`, headers });
    expect(pause.statusCode, pause.body).toBe(202);
    expect(await isPauseRequested(redis, run.id, api.prefix)).toBe(true);

    await deletePrefix(redis, api.prefix);
    expect(await isPauseRequested(redis, run.id, api.prefix)).toBe(false);
    expect(await queue.getJob(run.stages[0].id)).toBeUndefined();
    await reconcileStages(api.app.services);
    // Queued again (a worker that takes the job parks it at once: test/openai-pause.test.ts), and still paused.
    expect(await queue.getJob(run.stages[0].id)).toBeDefined();
    expect(await isPauseRequested(redis, run.id, api.prefix)).toBe(true);
    expect((await runOf(api, headers, run.id)).status).toBe('paused');
  });
});

// A Redis server of its own, killed and started again empty: a real restart without persistence.
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function startRedis(port: number): ChildProcess {
  return spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
}

async function redisUp(url: string): Promise<void> {
  await waitFor(async () => {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {}); // refused while the server starts: the answer is `false`
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      probe.disconnect();
    }
  });
}

// Where redis-server is not installed (CI installs it), the wiped-keys test above still runs.
const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

describe.skipIf(!hasRedisServer)('readiness across a real Redis restart', () => {
  let server: ChildProcess | undefined;
  let api: TestApi;
  let url: string;
  beforeAll(async () => {
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    server = startRedis(port);
    await redisUp(url);
    api = await startApi({ redisUrl: url, claimIdleMs: 50 });
  }, 20_000);
  afterAll(async () => {
    await api?.close();
    server?.kill('SIGKILL');
  });

  test('/readyz is 503 while the consumer cannot read, ready again once it recreated its group', async () => {
    const readyz = async () => (await api.app.inject({ method: 'GET', url: '/readyz' })).json();
    expect(await readyz()).toEqual({
      status: 'ready',
      checks: { postgres: 'ok', redis: 'ok', events: 'ok' },
    });
    const { headers } = await createTestTeam(api.app);
    const run = await submit(api, headers);
    const sft = run.stages[0];
    await publishEvent(api.app.services.redis, started(run.id, sft.id), api.prefix);
    await waitFor(async () => (await runOf(api, headers, run.id)).stages[0].status === 'running');

    const port = Number(new URL(url).port);
    const killed = server as ChildProcess;
    const exited = new Promise((resolve) => killed.once('exit', resolve));
    killed.kill('SIGKILL');
    await exited;
    const down = await waitFor(async () => {
      const body = await readyz();
      return body.status === 'not_ready' && body.checks.events !== 'ok' ? body : null;
    });
    expect(down.checks.events).toMatch(/Redis connection|ECONNREFUSED|Connection/);

    server = startRedis(port);
    await redisUp(url);
    await waitFor(async () => (await readyz()).status === 'ready', 20_000);
    // Events sent after the restart are stored: the consumer recreated the stream's group.
    const worker = new Redis(url);
    await publishEvent(worker, metrics(run.id, sft.id, 1), api.prefix);
    worker.disconnect();
    await waitFor(
      async () => (await api.app.services.prisma.metricPoint.count({ where: { stageId: sft.id } })) === 1,
    );
    // The running stage's job went with the restart and no worker has it: queued again, not failed.
    await aWhileAgo(api, run.id);
    await reconcileStages(api.app.services);
    const after = await runOf(api, headers, run.id);
    expect(after.status).toBe('running');
    expect(after.stages[0].status).toBe('queued');
    expect(await api.app.services.queue.getJobState(sft.id)).toMatch(/^(waiting|prioritized)$/);
  }, 60_000);
});

describe('admission racing the event consumer', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ claimIdleMs: 50 });
  });
  afterAll(() => api?.close());

  test('concurrent admissions and stage events lose nothing; every executing run is admitted and cancellable', async () => {
    const teams = [
      await createTestTeam(api.app, { maxActiveStages: 3 }),
      await createTestTeam(api.app, { maxActiveStages: 3 }),
    ];
    const { prisma, redis } = api.app.services;
    // Workers start a stage the moment they see it and run until they are cancelled.
    const worker = fakeWorker(
      api,
      async (data, publish) => {
        await publish(started(data.runId, data.stageId));
        await publish(metrics(data.runId, data.stageId, 1));
        while (!(await isCancelRequested(redis, data.runId, api.prefix))) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await publish({ type: 'stage.cancelled', runId: data.runId, stageId: data.stageId });
        throw new UnrecoverableError('cancelled');
      },
      8,
    );
    try {
      const specs = await Promise.all(teams.map((t) => pipelineSpec(api.app, t.headers)));
      // 16 submissions and admission passes at once.
      const posts = Array.from({ length: 16 }, (_, i) =>
        api.app.inject({
          method: 'POST',
          url: '/v1/runs',
          headers: teams[i % 2].headers,
          payload: specs[i % 2],
        }),
      );
      const passes = Array.from({ length: 8 }, () => admitRuns(api.app.services).catch(() => []));
      const responses = await Promise.all(posts);
      await Promise.all(passes);
      expect(responses.map((r) => r.statusCode)).toEqual(Array(16).fill(201));
      const runIds = responses.map((r) => r.json().id as string);

      // Cancel whatever executes until every run has finished; each run that ran had admittedAt set.
      const executed = new Set<string>();
      await waitFor(async () => {
        const runs = await prisma.run.findMany({ where: { id: { in: runIds } }, include: { stages: true } });
        for (const run of runs) {
          if (!run.stages.some((st) => st.status === 'running')) continue;
          expect(run.admittedAt).not.toBeNull();
          if (!executed.has(run.id)) {
            executed.add(run.id);
            const team = teams.find((t) => t.team.id === run.teamId) as (typeof teams)[number];
            const cancel = await api.app.inject({
              method: 'POST',
              url: `/v1/runs/${run.id}/cancel`,
              headers: team.headers,
            });
            expect(cancel.statusCode, cancel.body).toBe(202);
          }
        }
        return runs.every((run) => run.status === 'cancelled');
      }, 30_000);
      expect(executed.size).toBe(16);
      // Every stage.started and metric reached Postgres: nothing lost to an aborted transaction.
      const firstStages = await prisma.stage.findMany({ where: { runId: { in: runIds }, index: 0 } });
      expect(firstStages.every((st) => st.workerId === 'fake' && st.attempts === 1)).toBe(true);
      expect(
        await prisma.metricPoint.count({ where: { stageId: { in: firstStages.map((st) => st.id) } } }),
      ).toBe(16);
      // No job of a cancelled run is left to execute.
      await waitFor(async () => (await api.app.services.queue.getActiveCount()) === 0);
      expect(await api.app.services.queue.getWaitingCount()).toBe(0);
    } finally {
      await worker.close();
    }
  }, 60_000);
});

describe('a poison event', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ claimIdleMs: 50 });
  });
  afterAll(() => api?.close());

  test("is dead-lettered at once, visible to admins; other teams' events flow without delay", async () => {
    const mine = await createTestTeam(api.app);
    const theirs = await createTestTeam(api.app);
    const bad = await submit(api, mine.headers);
    const good = await submit(api, theirs.headers);
    const { prisma, redis } = api.app.services;
    const publish = (event: StageEvent) => publishEvent(redis, event, api.prefix);
    // A step no 32-bit column holds, and an artifact whose byte count is not an integer (fails in code).
    await publish({
      type: 'stage.progress',
      runId: bad.id,
      stageId: bad.stages[0].id,
      step: 3e9,
      totalSteps: 3e9,
    });
    await api.app.services.artifacts.put('x.bin', 'x');
    await publish({
      type: 'artifact',
      runId: bad.id,
      stageId: bad.stages[0].id,
      kind: 'final',
      key: 'x.bin',
      bytes: 1.5,
    });
    const sent = Date.now();
    await publish(metrics(good.id, good.stages[0].id, 1));
    await waitFor(
      async () => (await prisma.metricPoint.count({ where: { stageId: good.stages[0].id } })) === 1,
    );
    // Before: each bad event held the stream ~2 s (retries 1 s apart), 4 s for these two.
    expect(Date.now() - sent).toBeLessThan(2000);

    const dead = await waitFor(async () => {
      const response = await api.app.inject({ method: 'GET', url: '/v1/admin/dead-events', headers: admin });
      const body: { total: number; items: { error: string; event: { type: string } }[] } = response.json();
      return body.total === 2 ? body : null;
    });
    expect(dead.items.map((d) => d.event.type)).toEqual(['artifact', 'stage.progress']);
    expect(dead.items[1].error).toBe('stage.progress step: 3000000000 is not an integer in 0..2147483647');
    expect(dead.items[0].event).toMatchObject({ runId: bad.id, key: 'x.bin', bytes: 1.5 });
    const forbidden = await api.app.inject({
      method: 'GET',
      url: '/v1/admin/dead-events',
      headers: mine.headers,
    });
    expect(forbidden.statusCode).toBe(403);
    // The stream is not held up: nothing is pending in the group.
    await waitFor(async () => ((await redis.xpending(`${api.prefix}:events`, 'api')) as [number])[0] === 0);
  });

  test('maxSteps beyond a 32-bit count is refused with a 400 naming the field', async () => {
    const { headers } = await createTestTeam(api.app);
    const spec = await pipelineSpec(api.app, headers);
    spec.stages[0].config = { maxSteps: 3e9 };
    const response = await api.app.inject({ method: 'POST', url: '/v1/runs', headers, payload: spec });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toEqual({
      code: 'invalid_request',
      message: '/stages/0/config/maxSteps: must be <= 2147483647',
      field: '/stages/0/config/maxSteps',
    });
  });
  test('epochs that add up to more steps than 32 bits hold are refused, naming epochs', async () => {
    const { team, headers } = await createTestTeam(api.app);
    // A dataset as large as the check needs (recorded only: the run is refused before any worker reads it).
    const big = await api.app.services.prisma.dataset.create({
      data: {
        teamId: team.id,
        name: 'big',
        kind: 'sft',
        sha256: 'f'.repeat(64),
        rows: 10_000_000,
        bytes: 1n,
      },
    });
    const payload = {
      model: { preset: 'tiny' },
      stages: [{ kind: 'sft', datasetId: big.id, config: { epochs: 1000, batchSize: 1 } }],
    };
    const response = await api.app.inject({ method: 'POST', url: '/v1/runs', headers, payload });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.field).toBe('/stages/0/config/epochs');
    expect(response.json().error.message).toMatch(/up to 10000000000 steps: must be <= 2147483647/);
    const fine = await api.app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers,
      payload: {
        ...payload,
        stages: [{ ...payload.stages[0], config: { epochs: 1000, batchSize: 1, maxSteps: 100 } }],
      },
    });
    expect(fine.statusCode, fine.body).toBe(201);
  });
});

describe('NUL characters and out-of-range queries', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ claimIdleMs: 50 });
  });
  afterAll(() => api?.close());

  test('a sample table and reported settings with NUL characters are stored, each NUL as U+FFFD', async () => {
    const { headers } = await createTestTeam(api.app);
    const run = await submit(api, headers);
    const stageId = run.stages[2].id;
    await publishEvent(
      api.app.services.redis,
      {
        type: 'samples',
        runId: run.id,
        stageId,
        step: 3,
        rows: [
          { prompt: 'sort: 2\u00001', response: '\u0000\u00001 2', score: 0.5, kl: 0.1, eos: true },
          { prompt: 'sort: 9 8', response: '8 9', score: 0.9, kl: 0.2, eos: false },
        ],
      },
      api.prefix,
    );
    // Settings a worker reports may hold NULs too (jsonb refuses them as text does).
    await publishEvent(
      api.app.services.redis,
      { ...started(run.id, run.stages[0].id), hyperparameters: { eosToken: 'a\u0000b' } },
      api.prefix,
    );
    const items = await waitFor(async () => {
      const response = await api.app.inject({ method: 'GET', url: `/v1/runs/${run.id}/samples`, headers });
      return response.json().items.length === 2 ? response.json().items : null;
    });
    expect(items.map((s: { prompt: string; response: string }) => [s.prompt, s.response]).sort()).toEqual([
      ['sort: 2\uFFFD1', '\uFFFD\uFFFD1 2'],
      ['sort: 9 8', '8 9'],
    ]);
    const detail = await waitFor(async () => {
      const view = await runOf(api, headers, run.id);
      return view.stages[0].status === 'running' ? view : null;
    });
    expect(detail.hyperparameters.stages.sft.eosToken).toBe('a\uFFFDb');
  });

  test('NUL in cursors and metric names, steps past 32 bits and cursors holding 1e300 are 400s', async () => {
    const { headers } = await createTestTeam(api.app);
    const run = await submit(api, headers);
    const cursor = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const urls = [
      '/v1/runs?cursor=%00',
      `/v1/runs/${run.id}/samples?cursor=a%00b`,
      `/v1/runs/${run.id}/metrics?name=train%00loss`,
      `/v1/runs/${run.id}/metrics?afterStep=2147483648`,
      `/v1/runs/${run.id}/metrics?cursor=${cursor({ stageId: run.stages[0].id, step: 1e300, name: 'a' })}`,
      `/v1/runs/${run.id}/metrics?cursor=${cursor({ stageId: 'a\u0000', step: 1, name: 'a' })}`,
      `/v1/runs/${run.id}/metrics?cursor=${cursor({ stageId: run.stages[0].id, step: 1, name: 'a\u0000' })}`,
      '/v1/datasets?cursor=%00',
    ];
    for (const url of urls) {
      const response = await api.app.inject({ method: 'GET', url, headers });
      expect([url, response.statusCode]).toEqual([url, 400]);
      expect(response.json().error.code).toBe('invalid_request');
    }
    const fine = await api.app.inject({
      method: 'GET',
      url: `/v1/runs/${run.id}/metrics?afterStep=2147483647`,
      headers,
    });
    expect(fine.statusCode).toBe(200);
  });
});
