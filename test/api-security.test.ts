// Keys after the fact: SSE streams of a revoked key end, failed authentication is rate-limited and
// costs bounded database lookups; a re-taken stage counts its attempts.
import { randomBytes } from 'node:crypto';
import { applyEvent, authenticate, createFailedAuthGuard, redisStartLog } from '@rlhf/api';
import type { PrismaClient } from '@rlhf/db';
import { publishEvent, type StageEvent } from '@rlhf/queue';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ADMIN_KEY,
  baseUrl,
  createTestTeam,
  pipelineSpec,
  startApi,
  type TestApi,
  waitFor,
} from './api-helpers.js';

const admin = { authorization: `Bearer ${ADMIN_KEY}` };
const unknownKey = () => `rlhf_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;

let api: TestApi;
beforeAll(async () => {
  api = await startApi({
    claimIdleMs: 50,
    streamKeyCheckMs: 100,
    failedAuth: { max: 5, windowMs: 60_000 },
  });
});
afterAll(() => api?.close());

async function createRun(headers: { authorization: string }) {
  const response = await api.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers,
    payload: await pipelineSpec(api.app, headers),
  });
  expect(response.statusCode).toBe(201);
  return response.json() as { id: string; stages: { id: string; kind: string }[] };
}

describe('SSE and revoked keys', () => {
  test('a stream ends with an unauthorized event soon after its key is revoked', async () => {
    const { headers, team } = await createTestTeam(api.app);
    const run = await createRun(headers);
    const response = await fetch(`${await baseUrl(api.app)}/v1/runs/${run.id}/events`, { headers });
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value); // the snapshot
    expect(text).toContain('event: run');

    const key = await api.app.services.prisma.apiKey.findFirstOrThrow({ where: { teamId: team.id } });
    const revoked = await api.app.inject({
      method: 'DELETE',
      url: `/v1/admin/keys/${key.id}`,
      headers: admin,
    });
    expect(revoked.statusCode).toBe(204);
    const at = Date.now();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(Date.now() - at).toBeLessThan(2000); // checked every 100 ms here (5 s by default)
    expect(text).toContain('event: unauthorized');
    expect(api.app.services.hub.size).toBe(0); // unsubscribed
    // Events of the run after the revocation reach nobody; the key is refused on every route.
    expect((await api.app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers })).statusCode).toBe(
      401,
    );
  });
});

describe('failed authentication', () => {
  test('an address that keeps failing gets 429 with a JSON body; valid keys from elsewhere still work', async () => {
    const { headers } = await createTestTeam(api.app);
    const attacker = '203.0.113.7';
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const bad = i % 2 === 0 ? unknownKey() : 'nonsense';
      const response = await api.app.inject({
        method: 'GET',
        url: '/v1/runs',
        remoteAddress: attacker,
        headers: { authorization: `Bearer ${bad}` },
      });
      statuses.push(response.statusCode);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    const refused = await api.app.inject({
      method: 'GET',
      url: '/v1/runs',
      remoteAddress: attacker,
      headers: { authorization: `Bearer ${unknownKey()}` },
    });
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error).toMatchObject({ code: 'rate_limited' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Another address and the bootstrap admin key are not affected.
    const other = await api.app.inject({
      method: 'GET',
      url: '/v1/runs',
      remoteAddress: '198.51.100.1',
      headers,
    });
    expect(other.statusCode).toBe(200);
    const asAdmin = await api.app.inject({
      method: 'GET',
      url: '/v1/admin/teams',
      remoteAddress: attacker,
      headers: admin,
    });
    expect(asAdmin.statusCode).toBe(200);
  });

  test('a refused key costs one database lookup per cache period, a malformed key none', async () => {
    let lookups = 0;
    const prisma = {
      apiKey: {
        findUnique: async () => {
          lookups++;
          return null;
        },
      },
    } as unknown as PrismaClient;
    const guard = createFailedAuthGuard({ badKeyTtlMs: 60_000 });
    const key = unknownKey();
    for (let i = 0; i < 1000; i++) expect(await authenticate(prisma, ADMIN_KEY, key, guard)).toBeNull();
    expect(lookups).toBe(1);
    for (let i = 0; i < 1000; i++)
      expect(await authenticate(prisma, ADMIN_KEY, 'rlhf_nonsense', guard)).toBeNull();
    expect(lookups).toBe(1);
    // Expired entries are looked up again.
    const shortLived = createFailedAuthGuard({ badKeyTtlMs: 1 });
    await authenticate(prisma, ADMIN_KEY, key, shortLived);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await authenticate(prisma, ADMIN_KEY, key, shortLived);
    expect(lookups).toBe(3);
  });

  test('the guard stays bounded under a spray of addresses and keys', () => {
    const guard = createFailedAuthGuard({ max: 1 });
    for (let i = 0; i < 50_000; i++) {
      guard.failed(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
      guard.rememberBad(`sha-${i}`);
    }
    // The newest are remembered, the oldest forgotten (bounded memory), nothing throws.
    expect(guard.blockedFor('10.0.195.79')).toBeGreaterThan(0); // i = 49_999
    expect(guard.knownBad('sha-49999')).toBe(true);
    expect(guard.knownBad('sha-0')).toBe(false);
  });
});

describe('attempts of a re-taken stage', () => {
  test('a stage resumed by another worker (same BullMQ attempt) counts 2 attempts, once per event', async () => {
    const { headers } = await createTestTeam(api.app);
    const run = await createRun(headers);
    const stage = run.stages[0];
    const started = (workerId: string, resumedFromStep: number | null, attempt = 1): StageEvent => ({
      type: 'stage.started',
      runId: run.id,
      stageId: stage.id,
      workerId,
      attempt,
      resumedFromStep,
      totalSteps: 10,
      hyperparameters: {},
    });
    const stageRow = () => api.app.services.prisma.stage.findUniqueOrThrow({ where: { id: stage.id } });
    const publish = (event: StageEvent) => publishEvent(api.app.services.redis, event, api.prefix);
    await publish(started('doomed', null));
    await waitFor(async () => (await stageRow()).status === 'running');
    await publish({ type: 'stage.progress', runId: run.id, stageId: stage.id, step: 7, totalSteps: 10 });
    await waitFor(async () => (await stageRow()).currentStep === 7);
    // kill -9: the stalled job is taken again with the same attemptsMade, from the checkpoint at step 5
    await publish(started('rescuer', 5));
    const resumed = await waitFor(async () => {
      const row = await stageRow();
      return row.workerId === 'rescuer' && row;
    });
    expect(resumed).toMatchObject({ attempts: 2, currentStep: 5, status: 'running' });
    const view = (await api.app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers })).json();
    expect(view.stages[0].attempts).toBe(2);

    // The same start delivered again (an API crash before its ack) counts nothing, through the stream...
    const stores = { ...api.app.services, starts: undefined };
    const log = redisStartLog(api.app.services.redis, `${api.prefix}:replay`);
    const replayed = started('replayed', null);
    await applyEvent({ ...stores, starts: log }, replayed, new Date(), '1-1');
    expect((await stageRow()).attempts).toBe(3); // a third worker's start
    await applyEvent({ ...stores, starts: log }, replayed, new Date(), '1-1');
    expect((await stageRow()).attempts).toBe(3);
    // ...and without a start log: the stage already runs on that worker.
    await applyEvent(stores, replayed, new Date());
    expect((await stageRow()).attempts).toBe(3);
    // A retry after a failure reports BullMQ's higher attempt.
    await applyEvent(
      stores,
      { type: 'stage.failed', runId: run.id, stageId: stage.id, error: 'boom', willRetry: true },
      new Date(),
    );
    await applyEvent(stores, started('replayed', 5, 2), new Date());
    expect((await stageRow()).attempts).toBe(4);
  });
});
