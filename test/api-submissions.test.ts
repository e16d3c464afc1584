// Bursts of submissions over real HTTP: every POST answered, each run created exactly once, another team's
// POST during the burst not stuck behind it; a team's waiting runs are capped.
// SUBMISSIONS_BENCH=500 npx vitest run test/api-submissions.test.ts prints p50/p99 of a bigger burst.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  SFT_ROWS,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ consumeEvents: false });
});
afterAll(() => api?.close());

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function specFor(team: TestTeam) {
  const datasetId = await uploadDataset(api.app, team.headers, 'sft', SFT_ROWS);
  return { model: { preset: 'tiny' }, stages: [{ kind: 'sft', datasetId, config: { maxSteps: 10 } }] };
}

async function post(url: string, team: TestTeam, spec: object, idempotencyKey: string) {
  const started = performance.now();
  const response = await fetch(`${url}/v1/runs`, {
    method: 'POST',
    headers: { ...team.headers, 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
    body: JSON.stringify(spec),
  });
  const body = (await response.json()) as { id?: string; error?: { code: string; message: string } };
  return { status: response.status, ms: performance.now() - started, body };
}

async function burst(n: number) {
  const url = await baseUrl(api.app);
  const busy = await createTestTeam(api.app, { requestsPerMinute: 100_000, maxActiveStages: 2 });
  const quiet = await createTestTeam(api.app, { requestsPerMinute: 100_000 });
  const [busySpec, quietSpec] = [await specFor(busy), await specFor(quiet)];
  // The quiet team's latency when idle, then during the burst.
  const idle: number[] = [];
  for (let i = 0; i < 5; i++) idle.push((await post(url, quiet, quietSpec, `idle-${i}`)).ms);
  const tag = randomBytes(3).toString('hex');
  const posts = Array.from({ length: n }, (_, i) => post(url, busy, busySpec, `${tag}-${i}`));
  const during = (async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const mine: number[] = [];
    for (let i = 0; i < 5; i++) mine.push((await post(url, quiet, quietSpec, `during-${i}`)).ms);
    return mine;
  })();
  const results = await Promise.all(posts);
  const quietDuring = await during;
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const runs = await api.app.services.prisma.run.count({ where: { teamId: busy.team.id } });
  return {
    results,
    runs,
    busy,
    ms,
    idle: idle.sort((a, b) => a - b),
    quietDuring: quietDuring.sort((a, b) => a - b),
  };
}

describe('a burst of submissions', () => {
  test('200 concurrent POSTs: all answered 201 once each, quickly; another team is not held up', async () => {
    const n = Number(process.env.SUBMISSIONS_BENCH ?? 200);
    const { results, runs, ms, idle, quietDuring } = await burst(n);
    const statuses = new Map<number, number>();
    for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    const summary = {
      posts: n,
      statuses: Object.fromEntries(statuses),
      p50: Math.round(percentile(ms, 50)),
      p99: Math.round(percentile(ms, 99)),
      max: Math.round(ms[ms.length - 1]),
      otherTeamIdleP50: Math.round(percentile(idle, 50)),
      otherTeamDuringMax: Math.round(quietDuring[quietDuring.length - 1]),
    };
    console.log(`submissions burst: ${JSON.stringify(summary)}`);
    expect(Object.fromEntries(statuses)).toEqual({ 201: n });
    expect(runs).toBe(n);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(n);
  });
});

describe('a burst with racing retries', () => {
  test('each run created once, every retry answered with its id, a key reused with another spec a 409, the oldest admitted', async () => {
    const url = await baseUrl(api.app);
    const team = await createTestTeam(api.app, { requestsPerMinute: 100_000, maxActiveStages: 2 });
    const spec = await specFor(team);
    const other = { ...spec, name: 'another spec' };
    const n = 60;
    const tag = randomBytes(3).toString('hex');
    // Each key twice at once (the same spec), and each of a few more keys with two different specs at once.
    const [first, retries, a, b] = await Promise.all([
      Promise.all(Array.from({ length: n }, (_, i) => post(url, team, spec, `${tag}-${i}`))),
      Promise.all(Array.from({ length: n }, (_, i) => post(url, team, spec, `${tag}-${i}`))),
      Promise.all(Array.from({ length: 5 }, (_, i) => post(url, team, spec, `${tag}-x${i}`))),
      Promise.all(Array.from({ length: 5 }, (_, i) => post(url, team, other, `${tag}-x${i}`))),
    ]);
    first.forEach((r, i) => {
      expect([r.status, retries[i].status].sort()).toEqual([200, 201]);
      expect(retries[i].body.id).toBe(r.body.id);
    });
    a.forEach((r, i) => {
      expect([r.status, b[i].status].sort()).toEqual([201, 409]);
      const loser = r.status === 409 ? r : b[i];
      expect(loser.body.error?.code).toBe('idempotency_key_reused');
    });
    const runs = await api.app.services.prisma.run.findMany({
      where: { teamId: team.team.id },
      orderBy: { id: 'asc' },
    });
    expect(runs).toHaveLength(n + 5);
    expect(new Set(runs.map((r) => r.idempotencyKey)).size).toBe(n + 5);
    // The spec stored with a contested key is the one its 201 was for.
    for (const [i, r] of a.entries()) {
      const winner = r.status === 201 ? r : b[i];
      const row = runs.find((run) => run.id === winner.body.id);
      expect(row?.name).toBe(r.status === 201 ? '' : 'another spec');
    }
    // Within the quota, oldest first: the two earliest runs are admitted, no other.
    expect(runs.filter((r) => r.admittedAt !== null).map((r) => r.id)).toEqual(
      runs.slice(0, 2).map((r) => r.id),
    );
  });
});

describe('waiting runs per team', () => {
  test('past maxWaitingRuns a POST is a 429 naming the limit; an idempotent retry and other teams still work', async () => {
    const app = await api.restart({ consumeEvents: false, maxWaitingRuns: 3 });
    const full = await createTestTeam(app, { maxActiveStages: 1 });
    const spec = await specFor(full);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: { ...full.headers, 'idempotency-key': `cap-${i}` },
        payload: spec,
      });
      statuses.push(response.statusCode);
      if (response.statusCode === 429) {
        expect(response.json().error.code).toBe('too_many_waiting_runs');
        expect(response.json().error.message).toContain('the limit is 3 (maxWaitingRuns)');
      }
    }
    // one admitted (maxActiveStages 1), three waiting, then refused
    expect(statuses).toEqual([201, 201, 201, 201, 429, 429]);
    const retry = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: { ...full.headers, 'idempotency-key': 'cap-1' },
      payload: spec,
    });
    expect(retry.statusCode).toBe(200);
    const other = await createTestTeam(app);
    const theirs = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: other.headers,
      payload: await specFor(other),
    });
    expect(theirs.statusCode).toBe(201);
    await app.close();
  });
});
