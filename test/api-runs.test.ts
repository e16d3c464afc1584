// Runs: creation (validation, idempotency), admission under team quotas, BullMQ flows, cancellation.
import type { StageJobData } from '@rlhf/contracts';
import { reconcileStages } from '@rlhf/api';
import { isCancelRequested, STAGE_QUEUE } from '@rlhf/queue';
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createTestTeam,
  PROMPT_ROWS,
  pipelineSpec,
  SFT_ROWS,
  startApi,
  type TestApi,
  uploadDataset,
  waitFor,
} from './api-helpers.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ consumeEvents: false });
});
afterAll(() => api?.close());

type Headers = { authorization: string };
const post = (headers: Headers, payload: unknown, extra: Record<string, string> = {}) =>
  api.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: { ...headers, ...extra },
    payload: payload as object,
  });
const get = (headers: Headers, url: string) => api.app.inject({ method: 'GET', url, headers });

describe('create', () => {
  test('a pipeline becomes one BullMQ flow: PPO the root, SFT the deepest child, every job with a priority', async () => {
    const { team, headers } = await createTestTeam(api.app);
    const spec = await pipelineSpec(api.app, headers);
    const response = await post(headers, spec);
    expect(response.statusCode).toBe(201);
    const run = response.json();
    expect(run).toMatchObject({
      teamId: team.id,
      name: 'pipeline',
      status: 'queued',
      priority: 1,
      progress: 0,
    });
    expect(run.stages.map((st: { kind: string; status: string }) => [st.kind, st.status])).toEqual([
      ['sft', 'queued'],
      ['reward_model', 'queued'],
      ['ppo', 'queued'],
    ]);
    // Resolved hyperparameters are recorded: defaults filled in, given values kept.
    expect(run.spec.stages[0].config).toMatchObject({ maxSteps: 10, lr: 3e-4, batchSize: 16 });
    expect(run.hyperparameters).toMatchObject({ modelPreset: 'tiny', fromRun: null });
    expect(run.hyperparameters.stages.ppo).toMatchObject({
      iterations: 3,
      rolloutBatchSize: 4,
      kl: { coef: 0.05 },
    });

    const [sft, rm, ppo] = run.stages.map((st: { id: string }) => st.id);
    const { queue } = api.app.services;
    const root = await queue.getJob(ppo);
    expect(await root?.getState()).toBe('waiting-children');
    const child = await queue.getJob(rm);
    const leaf = await queue.getJob(sft);
    expect(child?.parentKey).toContain(ppo);
    expect(leaf?.parentKey).toContain(rm);
    expect(await leaf?.getState()).toBe('prioritized');
    expect([root, child, leaf].map((job) => job?.opts.priority)).toEqual([1, 1, 1]);
    expect(leaf?.opts.failParentOnFailure).toBe(true);
    const data = leaf?.data as StageJobData;
    expect(data).toMatchObject({
      runId: run.id,
      stageId: sft,
      teamId: team.id,
      modelPreset: 'tiny',
      kind: 'sft',
      inputs: {},
      dataset: { id: spec.stages[0].datasetId, kind: 'sft' },
    });
    expect(data.dataset.key).toMatch(new RegExp(`^datasets/${team.id}/[0-9a-f]{64}\\.jsonl$`));
    expect(await api.app.services.artifacts.exists(data.dataset.key)).toBe(true);
  });

  test('an Idempotency-Key makes a retry return the first run; a different spec with it is a 409', async () => {
    const { team, headers } = await createTestTeam(api.app);
    const spec = await pipelineSpec(api.app, headers);
    const key = { 'idempotency-key': 'create-run-1' };
    const first = await post(headers, spec, key);
    const retry = await post(headers, spec, key);
    expect(first.statusCode).toBe(201);
    expect(retry.statusCode).toBe(200);
    expect(retry.json().id).toBe(first.json().id);
    const changed = await post(headers, { ...spec, name: 'renamed' }, key);
    expect(changed.statusCode).toBe(409);
    expect(changed.json().error.code).toBe('idempotency_key_reused');
    const concurrent = await Promise.all(
      [1, 2, 3].map(() => post(headers, spec, { 'idempotency-key': 'race' })),
    );
    expect(new Set(concurrent.map((r) => r.json().id)).size).toBe(1);
    expect(await api.app.services.prisma.run.count({ where: { teamId: team.id } })).toBe(2);
  });

  test('a run can start from an earlier run: its SFT model feeds the new stages', async () => {
    const { headers } = await createTestTeam(api.app);
    const first = (await post(headers, await pipelineSpec(api.app, headers))).json();
    const prompts = await uploadDataset(api.app, headers, 'prompt', PROMPT_ROWS);
    const notYet = await post(headers, {
      model: { fromRun: first.id },
      stages: [{ kind: 'ppo', datasetId: prompts }],
    });
    expect(notYet.statusCode).toBe(400);
    expect(notYet.json().error.message).toContain(
      `/model/fromRun: run ${first.id} has no finished sft stage`,
    );
    // The earlier run's SFT and reward-model stages finished (as the event consumer records them).
    const { prisma } = api.app.services;
    for (const stage of first.stages.slice(0, 2)) {
      await prisma.stage.update({
        where: { id: stage.id },
        data: { status: 'succeeded', modelKey: `runs/${first.id}/${stage.id}/final` },
      });
    }
    const next = await post(headers, {
      model: { fromRun: first.id },
      stages: [{ kind: 'ppo', datasetId: prompts }],
    });
    expect(next.statusCode).toBe(201);
    expect(next.json().hyperparameters).toMatchObject({ modelPreset: 'tiny', fromRun: { runId: first.id } });
    const job = await api.app.services.queue.getJob(next.json().stages[0].id);
    expect(job?.data.inputs).toEqual({
      policy: `runs/${first.id}/${first.stages[0].id}/final`,
      rewardModel: `runs/${first.id}/${first.stages[1].id}/final`,
    });
  });
});

describe('validation', () => {
  let headers: Headers;
  let teamId: string;
  let sft: string;
  let prompts: string;
  beforeAll(async () => {
    const created = await createTestTeam(api.app);
    headers = created.headers;
    teamId = created.team.id;
    sft = await uploadDataset(api.app, headers, 'sft', SFT_ROWS);
    prompts = await uploadDataset(api.app, headers, 'prompt', PROMPT_ROWS);
  });
  const sftRun = (config: unknown) => () => ({
    model: { preset: 'tiny' },
    stages: [{ kind: 'sft', datasetId: sft, config }],
  });

  test.each([
    ['a NaN (sent as a string)', sftRun({ lr: 'NaN' }), '/stages/0/config/lr', 'must be a finite number'],
    ['a negative learning rate', sftRun({ lr: -0.1 }), '/stages/0/config/lr', 'must be > 0'],
    ['a negative batch size', sftRun({ batchSize: -4 }), '/stages/0/config/batchSize', 'must be >= 1'],
    [
      'a fractional step count',
      sftRun({ maxSteps: 2.5 }),
      '/stages/0/config/maxSteps',
      'must be a finite integer',
    ],
    [
      'an unknown config field',
      sftRun({ learningRate: 1e-4 }),
      '/stages/0/config/learningRate',
      'unknown field',
    ],
    ['an unknown top-level field', () => ({ ...sftRun({})(), priority: 1 }), '/priority', 'unknown field'],
    [
      'an unknown preset',
      () => ({ ...sftRun({})(), model: { preset: 'gpt5' } }),
      '/model/preset',
      'must be one of',
    ],
  ])('%s is a 400 naming the field', async (_name, body, field, message) => {
    const response = await post(headers, body());
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({ code: 'invalid_request', field });
    expect(response.json().error.message).toContain(`${field}: ${message}`);
  });

  test('an infinite number (1e999 parses to Infinity) is a 400', async () => {
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: { ...headers, 'content-type': 'application/json' },
      payload: `{"model":{"preset":"tiny"},"stages":[{"kind":"sft","datasetId":"${sft}","config":{"lr":1e999}}]}`,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toBe('/stages/0/config/lr: must be a finite number');
  });

  test('a NaN literal is not JSON: a 400, not a 500', async () => {
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: { ...headers, 'content-type': 'application/json' },
      payload: `{"model":{"preset":"tiny"},"stages":[{"kind":"sft","datasetId":"${sft}","config":{"lr":NaN}}]}`,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('bad_request');
  });

  test('a dataset of the wrong kind for its stage is a 400 naming both', async () => {
    const response = await post(headers, {
      model: { preset: 'tiny' },
      stages: [{ kind: 'sft', datasetId: prompts }],
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({
      field: '/stages/0/datasetId',
      message: `/stages/0/datasetId: dataset ${prompts} is of kind "prompt"; a sft stage needs "sft"`,
    });
  });

  test('pipeline rules: PPO needs a policy and a reward model', async () => {
    const response = await post(headers, {
      model: { preset: 'tiny' },
      stages: [{ kind: 'ppo', datasetId: prompts }],
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toContain('a ppo stage needs an SFT policy');
    expect(response.json().error.message).toContain('a ppo stage needs a reward model');
  });

  test('nothing was stored for the refused specs', async () => {
    expect(await api.app.services.prisma.run.count({ where: { teamId } })).toBe(0);
  });
});

describe('admission', () => {
  test("a team's runs beyond its quota wait (queued, stages pending, nothing in BullMQ)", async () => {
    const { headers } = await createTestTeam(api.app, { maxActiveStages: 2 });
    const spec = await pipelineSpec(api.app, headers);
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push((await post(headers, spec)).json());
    expect(runs.map((r) => [r.status, r.priority, r.admittedAt !== null])).toEqual([
      ['queued', 1, true],
      ['queued', 2, true],
      ['queued', null, false],
    ]);
    expect(runs[2].stages.map((st: { status: string }) => st.status)).toEqual([
      'pending',
      'pending',
      'pending',
    ]);
    expect(await api.app.services.queue.getJob(runs[2].stages[0].id)).toBeUndefined();
    // A team of its own is not held up by the first team's queue.
    const other = await createTestTeam(api.app, { maxActiveStages: 1 });
    const theirs = (await post(other.headers, await pipelineSpec(api.app, other.headers))).json();
    expect(theirs).toMatchObject({ status: 'queued', priority: 1 });
    expect(theirs.admittedAt).not.toBeNull();

    // Cancelling an admitted run makes room: the waiting run is admitted.
    const cancelled = await api.app.inject({ method: 'POST', url: `/v1/runs/${runs[0].id}/cancel`, headers });
    expect(cancelled.statusCode).toBe(202);
    const waiting = (await get(headers, `/v1/runs/${runs[2].id}`)).json();
    expect(waiting.admittedAt).not.toBeNull();
    expect(waiting.stages.map((st: { status: string }) => st.status)).toEqual(['queued', 'queued', 'queued']);
    expect(await api.app.services.queue.getJob(runs[2].stages[0].id)).toBeDefined();
  });
});

describe('cancel', () => {
  test('a waiting run is cancelled at once; cancelling it again is a 409', async () => {
    const { headers } = await createTestTeam(api.app, { maxActiveStages: 0 });
    const run = (await post(headers, await pipelineSpec(api.app, headers))).json();
    expect(run.admittedAt).toBeNull();
    const cancelled = await api.app.inject({ method: 'POST', url: `/v1/runs/${run.id}/cancel`, headers });
    expect(cancelled.statusCode).toBe(202);
    expect(cancelled.json().status).toBe('cancelled');
    expect(cancelled.json().finishedAt).not.toBeNull();
    expect(cancelled.json().stages.map((st: { status: string }) => st.status)).toEqual([
      'cancelled',
      'cancelled',
      'cancelled',
    ]);
    const again = await api.app.inject({ method: 'POST', url: `/v1/runs/${run.id}/cancel`, headers });
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toEqual({ code: 'run_finished', message: `run ${run.id} already cancelled` });
  });

  test("an admitted run's jobs leave the queue and workers are told", async () => {
    const { headers } = await createTestTeam(api.app);
    const run = (await post(headers, await pipelineSpec(api.app, headers))).json();
    const { queue, redis } = api.app.services;
    expect(await queue.getJob(run.stages[2].id)).toBeDefined();
    await api.app.inject({ method: 'POST', url: `/v1/runs/${run.id}/cancel`, headers });
    for (const stage of run.stages) expect(await queue.getJob(stage.id)).toBeUndefined();
    expect(await isCancelRequested(redis, run.id, api.prefix)).toBe(true);
  });
});

describe('list', () => {
  test('filters by status and pages with a cursor, newest first', async () => {
    const { headers } = await createTestTeam(api.app, { maxActiveStages: 5 });
    const spec = await pipelineSpec(api.app, headers);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await post(headers, spec)).json().id);
    await api.app.inject({ method: 'POST', url: `/v1/runs/${ids[1]}/cancel`, headers });
    const page1 = (await get(headers, '/v1/runs?limit=2')).json();
    expect(page1.items.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[1]]);
    const page2 = (await get(headers, `/v1/runs?limit=2&cursor=${page1.nextCursor}`)).json();
    expect(page2).toMatchObject({ items: [{ id: ids[0] }], nextCursor: null });
    const cancelled = (await get(headers, '/v1/runs?status=cancelled')).json();
    expect(cancelled.items.map((r: { id: string }) => r.id)).toEqual([ids[1]]);
    const bad = await get(headers, '/v1/runs?limit=0');
    expect(bad.json().error.message).toBe('querystring /limit: must be >= 1');
  });
});

describe('reconciliation with BullMQ', () => {
  test('a job that failed inside BullMQ with no event (its worker died twice) fails its run', async () => {
    const { headers } = await createTestTeam(api.app);
    const run = (await post(headers, await pipelineSpec(api.app, headers))).json();
    // A stand-in for BullMQ's stall checker: the job fails without any worker event.
    const worker = new Worker(
      STAGE_QUEUE,
      async () => {
        throw new Error('job stalled more than allowable limit');
      },
      { connection: api.app.services.redis.duplicate({ maxRetriesPerRequest: null }), prefix: api.prefix },
    );
    const sft = await api.app.services.queue.getJob(run.stages[0].id);
    await waitFor(async () => (await sft?.getState()) === 'failed');
    await worker.close();
    // (The stand-in failed the other runs' first stages in this database as well.)
    expect(await reconcileStages(api.app.services)).toBeGreaterThanOrEqual(1);
    const after = (await get(headers, `/v1/runs/${run.id}`)).json();
    expect(after).toMatchObject({
      status: 'failed',
      error: 'sft stage failed: job stalled more than allowable limit',
    });
    expect(after.stages.map((st: { status: string }) => st.status)).toEqual([
      'failed',
      'cancelled',
      'cancelled',
    ]);
  });
});
