// Dead letters replayed once their cause is fixed (POST /v1/admin/dead-events/replay): the cause here is a
// real one on the database side (a CHECK constraint an operator added by mistake, then dropped); each letter
// is sent again at most once, stored idempotently, and a replay before the fix dead-letters it again.
import { publishEvent, type StageEvent } from '@rlhf/queue';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ADMIN_KEY, createTestTeam, pipelineSpec, startApi, type TestApi, waitFor } from './api-helpers.js';

const admin = { authorization: `Bearer ${ADMIN_KEY}` };

describe('replaying dead letters', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ claimIdleMs: 50 });
  });
  afterAll(() => api?.close());

  const deadList = async () =>
    (await api.app.inject({ method: 'GET', url: '/v1/admin/dead-events', headers: admin })).json() as {
      total: number;
      items: { id: string; error: string; event: { type: string; step?: number } }[];
    };
  const replay = (payload: object, headers = admin) =>
    api.app.inject({ method: 'POST', url: '/v1/admin/dead-events/replay', headers, payload });

  test('after the cause is fixed, a replay stores each dead letter once; replaying again changes nothing', async () => {
    const { headers } = await createTestTeam(api.app);
    const spec = await pipelineSpec(api.app, headers);
    const created = await api.app.inject({ method: 'POST', url: '/v1/runs', headers, payload: spec });
    const run = created.json() as { id: string; stages: { id: string }[] };
    const stageId = run.stages[0].id;
    const { prisma, redis } = api.app.services;
    const stored = () => prisma.metricPoint.findMany({ where: { stageId }, orderBy: { step: 'asc' } });
    const metric = (step: number, value: number): StageEvent => ({
      type: 'metrics',
      runId: run.id,
      stageId,
      step,
      values: { 'train/loss': value },
      time: new Date().toISOString(),
    });

    // The fault: a constraint refuses losses >= 100 (the database answers, so these are dead-lettered).
    await prisma.$executeRawUnsafe(
      'ALTER TABLE "MetricPoint" ADD CONSTRAINT chaos_small_values CHECK (value < 100) NOT VALID',
    );
    for (const [step, value] of [
      [1, 250.5],
      [2, 0.5],
      [3, 123.25],
    ] as const)
      await publishEvent(redis, metric(step, value), api.prefix);
    const dead = await waitFor(async () => {
      const list = await deadList();
      return list.total === 2 ? list : null;
    });
    expect(dead.items.map((d) => d.event.step)).toEqual([3, 1]);
    expect(dead.items[0].error).toMatch(/chaos_small_values/);
    await waitFor(async () => (await stored()).length === 1);

    // Only admins; a malformed id is a 400 naming the field, and nothing is replayed.
    expect((await replay({}, headers)).statusCode).toBe(403);
    const bad = await replay({ ids: ['not-an-id'] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.field).toBe('/ids/0');
    expect((await deadList()).total).toBe(2);

    // Replayed before the fix: tried again and dead-lettered again (under new stream ids), nothing stored.
    const early = await replay({ ids: [dead.items[1].id] });
    expect(early.statusCode, early.body).toBe(200);
    expect(early.json().replayed.map((r: { id: string }) => r.id)).toEqual([dead.items[1].id]);
    const again = await waitFor(async () => {
      const list = await deadList();
      return list.total === 2 && list.items[0].id !== dead.items[0].id ? list : null;
    });
    expect(again.items.map((d) => d.event.step)).toEqual([1, 3]);
    expect(again.items[0].id).toBe(early.json().replayed[0].streamId);

    // The cause fixed: one replay of everything stores both, oldest first; the list is empty.
    await prisma.$executeRawUnsafe('ALTER TABLE "MetricPoint" DROP CONSTRAINT chaos_small_values');
    const fixed = await replay({});
    expect(fixed.statusCode, fixed.body).toBe(200);
    expect(fixed.json()).toMatchObject({ missing: [] });
    expect(fixed.json().replayed.map((r: { id: string }) => r.id)).toEqual([
      again.items[1].id,
      again.items[0].id,
    ]);
    const rows = await waitFor(async () => {
      const all = await stored();
      return all.length === 3 ? all : null;
    });
    expect(rows.map((r) => [r.step, r.value])).toEqual([
      [1, 250.5],
      [2, 0.5],
      [3, 123.25],
    ]);
    expect((await deadList()).total).toBe(0);

    // Idempotent: the same replays again send nothing and name the ids as missing.
    const twice = await replay({ ids: fixed.json().replayed.map((r: { id: string }) => r.id) });
    expect(twice.json()).toEqual({
      replayed: [],
      missing: fixed.json().replayed.map((r: { id: string }) => r.id),
    });
    expect((await replay({})).json()).toEqual({ replayed: [], missing: [] });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await stored()).toHaveLength(3);
    // Racing replays of one letter send it once.
    await prisma.$executeRawUnsafe(
      'ALTER TABLE "MetricPoint" ADD CONSTRAINT chaos_small_values CHECK (value < 100) NOT VALID',
    );
    await publishEvent(redis, metric(4, 500), api.prefix);
    const one = await waitFor(async () => {
      const list = await deadList();
      return list.total === 1 ? list.items[0] : null;
    });
    await prisma.$executeRawUnsafe('ALTER TABLE "MetricPoint" DROP CONSTRAINT chaos_small_values');
    const raced = await Promise.all(Array.from({ length: 8 }, () => replay({ ids: [one.id] })));
    expect(raced.flatMap((r) => r.json().replayed)).toHaveLength(1);
    expect(raced.filter((r) => r.json().missing.length === 1)).toHaveLength(7);
    await waitFor(async () => (await stored()).length === 4);
  });
});
