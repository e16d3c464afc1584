// API keys, team isolation, admin routes and CLI, bull-board, rate limits, health and metrics.
import { randomBytes } from 'node:crypto';
import { hashKey, runCli } from '@rlhf/api';
import { publishEvent } from '@rlhf/queue';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ADMIN_KEY,
  createTestTeam,
  jsonl,
  PROMPT_ROWS,
  pipelineSpec,
  startApi,
  type TestApi,
  type TestTeam,
  waitFor,
} from './api-helpers.js';

const admin = { authorization: `Bearer ${ADMIN_KEY}` };

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ claimIdleMs: 100 });
});
afterAll(() => api?.close());

describe('authentication', () => {
  test('no key, a malformed key and an unknown key are 401 with an error body', async () => {
    const unknownKey = `rlhf_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;
    for (const headers of [
      {},
      { authorization: 'Bearer nonsense' },
      { authorization: `Bearer ${unknownKey}` },
      { authorization: 'Token abc' },
    ]) {
      const response = await api.app.inject({ method: 'GET', url: '/v1/runs', headers });
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe('unauthorized');
    }
  });

  test('a key is stored as a prefix and a sha256; a revoked key is 401', async () => {
    const { key, headers, team } = await createTestTeam(api.app);
    const stored = await api.app.services.prisma.apiKey.findFirstOrThrow({ where: { teamId: team.id } });
    expect(stored.sha256).toBe(hashKey(key));
    expect(key.startsWith(`${stored.prefix}_`)).toBe(true);
    expect(JSON.stringify(stored)).not.toContain(key);
    expect((await api.app.inject({ method: 'GET', url: '/v1/runs', headers })).statusCode).toBe(200);
    const revoked = await api.app.inject({
      method: 'DELETE',
      url: `/v1/admin/keys/${stored.id}`,
      headers: admin,
    });
    expect(revoked.statusCode).toBe(204);
    expect((await api.app.inject({ method: 'GET', url: '/v1/runs', headers })).statusCode).toBe(401);
  });

  test('admin keys cannot use team routes and team keys cannot use admin routes (403)', async () => {
    const { headers } = await createTestTeam(api.app);
    const asAdmin = await api.app.inject({ method: 'GET', url: '/v1/runs', headers: admin });
    expect(asAdmin.statusCode).toBe(403);
    const asTeam = await api.app.inject({ method: 'GET', url: '/v1/admin/teams', headers });
    expect(asTeam.statusCode).toBe(403);
    expect(asTeam.json().error.code).toBe('forbidden');
  });
});

describe('verified keys (keyCacheMs)', () => {
  test('a key revoked in the database by another process is refused once keyCacheMs passed; through this API, and a limit change, at once', async () => {
    const trusting = await api.restart({ keyCacheMs: 60_000 });
    const quick = await api.restart({ keyCacheMs: 100 });
    const { headers, team } = await createTestTeam(api.app);
    const status = async (app: typeof api.app, h = headers) =>
      (await app.inject({ method: 'GET', url: '/v1/runs', headers: h })).statusCode;
    expect(await status(trusting)).toBe(200);
    expect(await status(quick)).toBe(200);
    const { prisma } = api.app.services;
    const stored = await prisma.apiKey.findFirstOrThrow({ where: { teamId: team.id } });
    await prisma.apiKey.update({ where: { id: stored.id }, data: { revokedAt: new Date() } });
    // Revoked elsewhere: a process refuses it once its verification is older than keyCacheMs.
    await waitFor(async () => (await status(quick)) === 401);
    expect(await status(trusting)).toBe(200); // verified under a minute ago: not looked up again
    // Revoked through this process: refused from the next request on.
    const second = await trusting.inject({
      method: 'POST',
      url: `/v1/admin/teams/${team.id}/keys`,
      headers: admin,
      payload: { name: 'second' },
    });
    const secondHeaders = { authorization: `Bearer ${second.json().key}` };
    expect(await status(trusting, secondHeaders)).toBe(200);
    const revoked = await trusting.inject({
      method: 'DELETE',
      url: `/v1/admin/keys/${second.json().id}`,
      headers: admin,
    });
    expect(revoked.statusCode).toBe(204);
    expect(await status(trusting, secondHeaders)).toBe(401);
    // A team's new limits apply to its next request too (three requests made this minute, now one allowed).
    const third = await trusting.inject({
      method: 'POST',
      url: `/v1/admin/teams/${team.id}/keys`,
      headers: admin,
      payload: { name: 'third' },
    });
    const thirdHeaders = { authorization: `Bearer ${third.json().key}` };
    expect(await status(trusting, thirdHeaders)).toBe(200);
    const patched = await trusting.inject({
      method: 'PATCH',
      url: `/v1/admin/teams/${team.id}`,
      headers: admin,
      payload: { requestsPerMinute: 1 },
    });
    expect(patched.statusCode).toBe(200);
    expect(await status(trusting, thirdHeaders)).toBe(429);
  });
});

describe('team isolation', () => {
  let owner: TestTeam;
  let other: TestTeam;
  let runId: string;
  let datasetId: string;
  let artifactId: string;

  beforeAll(async () => {
    owner = await createTestTeam(api.app);
    other = await createTestTeam(api.app);
    const spec = await pipelineSpec(api.app, owner.headers);
    datasetId = spec.stages[0].datasetId;
    const created = await api.app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: owner.headers,
      payload: spec,
    });
    runId = created.json().id;
    const stageId = created.json().stages[0].id;
    // A worker's reports: one metric point, one sample table, one artifact file.
    const { redis, artifacts } = api.app.services;
    const key = `runs/${runId}/${stageId}/final/model.safetensors`;
    await artifacts.put(key, 'weights');
    const events = [
      {
        type: 'metrics',
        runId,
        stageId,
        step: 1,
        values: { 'train/loss': 2.5 },
        time: new Date().toISOString(),
      },
      {
        type: 'samples',
        runId,
        stageId,
        step: 1,
        rows: [{ prompt: 'p', response: 'r', score: 1, kl: 0, eos: true }],
      },
      { type: 'artifact', runId, stageId, kind: 'safetensors', key, bytes: 7 },
    ] as const;
    for (const event of events) await publishEvent(redis, event, api.prefix);
    const artifact = await waitFor(() =>
      api.app.services.prisma.artifact.findUnique({ where: { path: key } }),
    );
    artifactId = artifact.id;
    await waitFor(() => api.app.services.prisma.sample.findFirst({ where: { stageId } }));
  });

  test("the owner reads its run's metrics, samples and artifacts", async () => {
    const get = (url: string) => api.app.inject({ method: 'GET', url, headers: owner.headers });
    expect((await get(`/v1/runs/${runId}/metrics`)).json().items).toHaveLength(1);
    expect((await get(`/v1/runs/${runId}/samples`)).json().items).toHaveLength(1);
    expect((await get(`/v1/runs/${runId}/artifacts`)).json().items.map((a: { id: string }) => a.id)).toEqual([
      artifactId,
    ]);
    const download = await get(`/v1/runs/${runId}/artifacts/${artifactId}/download`);
    expect(download.statusCode).toBe(200);
    expect(download.body).toBe('weights');
  });

  test("another team's ids are 404 on every route", async () => {
    const routes: [string, string][] = [
      ['GET', `/v1/datasets/${datasetId}`],
      ['GET', `/v1/runs/${runId}`],
      ['POST', `/v1/runs/${runId}/cancel`],
      ['GET', `/v1/runs/${runId}/metrics`],
      ['GET', `/v1/runs/${runId}/samples`],
      ['GET', `/v1/runs/${runId}/artifacts`],
      ['GET', `/v1/runs/${runId}/artifacts/${artifactId}`],
      ['GET', `/v1/runs/${runId}/artifacts/${artifactId}/download`],
      ['GET', `/v1/runs/${runId}/events`],
    ];
    for (const [method, url] of routes) {
      const response = await api.app.inject({ method: method as 'GET', url, headers: other.headers });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
      expect(response.json().error.code).toBe('not_found');
    }
    const generate = await api.app.inject({
      method: 'POST',
      url: `/v1/runs/${runId}/generate`,
      headers: other.headers,
      payload: { prompts: ['hi'] },
    });
    expect(generate.statusCode).toBe(404);
    const lists = await Promise.all(
      ['/v1/runs', '/v1/datasets'].map((url) =>
        api.app.inject({ method: 'GET', url, headers: other.headers }),
      ),
    );
    for (const list of lists) expect(list.json().items).toEqual([]);
    // The run is untouched by the attempts above.
    const run = await api.app.inject({ method: 'GET', url: `/v1/runs/${runId}`, headers: owner.headers });
    expect(run.json().status).toBe('queued');
  });

  test("another team's dataset or run cannot be used in a run spec", async () => {
    const spec = {
      model: { fromRun: runId },
      stages: [{ kind: 'sft', datasetId }],
    };
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: other.headers,
      payload: spec,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toContain(`/model/fromRun: unknown run ${runId}`);
    expect(response.json().error.message).toContain(`/stages/0/datasetId: unknown dataset ${datasetId}`);
  });

  test('ids that are not ids are 400 naming the parameter', async () => {
    const response = await api.app.inject({
      method: 'GET',
      url: '/v1/runs/not$an%20id',
      headers: owner.headers,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toMatch(/^params \/runId: must match/);
  });
});

describe('admin', () => {
  test('creates a team and a key over HTTP; the key works at once', async () => {
    const name = `http-${randomBytes(4).toString('hex')}`;
    const team = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/teams',
      headers: admin,
      payload: { name, maxActiveStages: 3 },
    });
    expect(team.statusCode).toBe(201);
    expect(team.json()).toMatchObject({ name, maxActiveStages: 3, maxUploadBytes: 104857600 });
    const again = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/teams',
      headers: admin,
      payload: { name },
    });
    expect(again.statusCode).toBe(409);
    const key = await api.app.inject({
      method: 'POST',
      url: `/v1/admin/teams/${team.json().id}/keys`,
      headers: admin,
      payload: { name: 'ci' },
    });
    expect(key.statusCode).toBe(201);
    const runs = await api.app.inject({
      method: 'GET',
      url: '/v1/runs',
      headers: { authorization: `Bearer ${key.json().key}` },
    });
    expect(runs.statusCode).toBe(200);
    const patched = await api.app.inject({
      method: 'PATCH',
      url: `/v1/admin/teams/${team.json().id}`,
      headers: admin,
      payload: { requestsPerMinute: 5 },
    });
    expect(patched.json().requestsPerMinute).toBe(5);
  });

  test('the CLI creates a team and keys, printing each key once', async () => {
    const name = `cli-${randomBytes(4).toString('hex')}`;
    const cli = async (...args: string[]) => {
      const printed: string[] = [];
      await runCli(args, api.options.databaseUrl, (text) => printed.push(text));
      return printed.join('\n');
    };
    expect(await cli('create-team', name, '--max-active-stages', '4')).toMatch(
      new RegExp(`^team ${name} created: id [0-9a-f-]{36}$`),
    );
    const teamKey = (await cli('create-key', name, '--name', 'laptop')).split('\n')[1];
    expect(teamKey).toMatch(/^rlhf_[0-9a-f]{12}_[\w-]{43}$/);
    const runs = await api.app.inject({
      method: 'GET',
      url: '/v1/runs',
      headers: { authorization: `Bearer ${teamKey}` },
    });
    expect(runs.statusCode).toBe(200);
    const adminKey = (await cli('create-admin-key')).split('\n')[1];
    const teams = await api.app.inject({
      method: 'GET',
      url: '/v1/admin/teams',
      headers: { authorization: `Bearer ${adminKey}` },
    });
    expect(teams.json().items).toContainEqual(expect.objectContaining({ name, maxActiveStages: 4 }));
    await expect(cli('create-team', name)).rejects.toThrow(`a team named "${name}" exists`);
    await expect(cli('create-key', 'no-such-team')).rejects.toThrow(
      'no team named or with id "no-such-team"',
    );
  });
});

describe('bull-board', () => {
  test('requires an admin key (bearer, or basic auth for browsers)', async () => {
    const { headers } = await createTestTeam(api.app);
    const none = await api.app.inject({ method: 'GET', url: '/admin/queues' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Basic realm="rlhf admin"');
    expect(
      (await api.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers })).statusCode,
    ).toBe(403);
    const page = await api.app.inject({ method: 'GET', url: '/admin/queues', headers: admin });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    const basic = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}` };
    const queues = await api.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: basic });
    expect(queues.statusCode).toBe(200);
    expect(queues.json().queues.map((q: { name: string }) => q.name)).toEqual(['rlhf-stages']);
  });
});

describe('rate limit', () => {
  test("a team's requests over its limit are 429; other teams are not affected", async () => {
    const limited = await createTestTeam(api.app, { requestsPerMinute: 3 });
    const free = await createTestTeam(api.app);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push(
        (await api.app.inject({ method: 'GET', url: '/v1/runs', headers: limited.headers })).statusCode,
      );
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await api.app.inject({ method: 'GET', url: '/v1/datasets', headers: limited.headers });
    expect(refused.json().error.code).toBe('rate_limited');
    expect((await api.app.inject({ method: 'GET', url: '/v1/runs', headers: free.headers })).statusCode).toBe(
      200,
    );
  });
});

describe('health and metrics', () => {
  test('/healthz and /readyz answer without a key', async () => {
    expect((await api.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.json()).toEqual({
      status: 'ready',
      checks: { postgres: 'ok', redis: 'ok', events: 'ok' },
    });
  });

  test('/metrics exposes request, run and queue counters', async () => {
    const { headers } = await createTestTeam(api.app);
    await api.app.inject({ method: 'GET', url: '/v1/runs', headers });
    await api.app.inject({
      method: 'POST',
      url: '/v1/datasets?name=p&kind=prompt',
      headers: { ...headers, 'content-type': 'application/jsonl' },
      payload: jsonl(PROMPT_ROWS),
    });
    const text = (await api.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(
      /rlhf_api_http_requests_total\{method="GET",route="\/v1\/runs",status_code="200"\} [1-9]/,
    );
    expect(text).toMatch(/rlhf_api_datasets_uploaded_total [1-9]/);
    expect(text).toMatch(/rlhf_api_runs_created_total [1-9]/);
    expect(text).toMatch(/rlhf_api_events_persisted_total\{type="metrics"\} [1-9]/);
    expect(text).toMatch(/rlhf_stage_jobs\{state="waiting-children"\} [1-9]/);
  });

  test('OpenAPI lists the routes at /docs/json', async () => {
    const docs = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(Object.keys(docs.paths)).toEqual(
      expect.arrayContaining([
        '/v1/runs',
        '/v1/runs/{runId}',
        '/v1/datasets',
        '/v1/workers',
        '/v1/admin/teams',
      ]),
    );
    expect(Object.keys(docs.paths).some((path) => path.startsWith('/admin/queues'))).toBe(false);
  });
});
