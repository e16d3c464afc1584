// SSE over real HTTP: a stream replays the run's stored history (a finished run's too), resumes after
// Last-Event-ID (header or ?lastEventId=), goes on live without duplicates, and opens with a short-lived
// stream token scoped to one team and one run (what a browser EventSource can send).
import { publishEvent, type StageEvent } from '@rlhf/queue';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { baseUrl, createTestTeam, pipelineSpec, startApi, type TestApi, waitFor } from './api-helpers.js';

interface SseEvent {
  id?: string;
  event: string;
  data: { type?: string; step?: number; status?: string; error?: { message: string } };
}

interface Stream {
  events: SseEvent[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

let api: TestApi;
let url: string;
beforeAll(async () => {
  api = await startApi({ claimIdleMs: 50 });
  url = await baseUrl(api.app);
});
afterAll(() => api?.close());

async function openStream(path: string, headers: Record<string, string> = {}): Promise<Stream> {
  const abort = new AbortController();
  const response = await fetch(`${url}${path}`, { headers, signal: abort.signal });
  expect(response.status, await (response.status === 200 ? '' : response.text())).toBe(200);
  const events: SseEvent[] = [];
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          const id = /^id: (.+)$/m.exec(block)?.[1];
          if (event && data) events.push({ ...(id ? { id } : {}), event, data: JSON.parse(data) });
        }
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    }
  })();
  return { events, ended, close: () => abort.abort() };
}

interface RunRef {
  id: string;
  stages: { id: string; kind: string }[];
}

async function newRun(headers: { authorization: string }): Promise<RunRef> {
  const payload = await pipelineSpec(api.app, headers);
  return (await api.app.inject({ method: 'POST', url: '/v1/runs', headers, payload })).json();
}

const publish = (event: StageEvent) => publishEvent(api.app.services.redis, event, api.prefix);
const metrics = (run: RunRef, step: number): StageEvent => ({
  type: 'metrics',
  runId: run.id,
  stageId: run.stages[0].id,
  step,
  values: { 'train/loss': 1 / step },
  time: new Date().toISOString(),
});

// Runs every stage of `run` to success through worker events, as a worker reports them.
async function finishRun(run: RunRef): Promise<void> {
  for (const [index, stage] of run.stages.entries()) {
    const ref = { runId: run.id, stageId: stage.id };
    await publish({
      type: 'stage.started',
      ...ref,
      workerId: 'w',
      attempt: 1,
      resumedFromStep: null,
      totalSteps: 3,
      hyperparameters: {},
    });
    if (index === 0) for (const step of [1, 2, 3]) await publish(metrics(run, step));
    await publish({
      type: 'stage.completed',
      ...ref,
      result: {
        stageId: stage.id,
        kind: stage.kind as 'sft',
        modelKey: `runs/${run.id}/${stage.id}/final`,
        step: 3,
      },
    });
  }
}

const typesOf = (events: SseEvent[]) => events.map((e) => e.event);
const WORKER_EVENTS = [
  'stage.started',
  'metrics',
  'metrics',
  'metrics',
  'stage.completed',
  'stage.started',
  'stage.completed',
  'stage.started',
  'stage.completed',
];

describe('history', () => {
  let headers: { authorization: string };
  let run: RunRef;
  let history: SseEvent[];
  beforeAll(async () => {
    ({ headers } = await createTestTeam(api.app));
    run = await newRun(headers);
    await finishRun(run);
    await waitFor(
      async () =>
        (await api.app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers })).json().status ===
        'succeeded',
    );
  });

  test('a finished run streams its snapshot, every stored event in order with ids, then end', async () => {
    const stream = await openStream(`/v1/runs/${run.id}/events`, headers);
    await stream.ended;
    history = stream.events;
    expect(history[0]).toMatchObject({ event: 'run', data: { status: 'succeeded' } });
    expect(history.at(-1)?.event).toBe('end');
    const stored = history.slice(1, -1);
    // The worker events in the order they were sent, and the API's own status changes among them.
    expect(typesOf(stored).filter((t) => t !== 'run.updated')).toEqual(WORKER_EVENTS);
    expect(stored.filter((e) => e.event === 'metrics').map((e) => e.data.step)).toEqual([1, 2, 3]);
    const ids = stored.map((e) => BigInt(e.id as string));
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1])).toBe(true);
  });

  test('Last-Event-ID (header or ?lastEventId=) resumes right after that event', async () => {
    const secondMetrics = history.filter((e) => e.event === 'metrics')[1];
    const expected = history.slice(history.indexOf(secondMetrics) + 1, -1).map((e) => e.id);
    const byHeader = await openStream(`/v1/runs/${run.id}/events`, {
      ...headers,
      'last-event-id': secondMetrics.id as string,
    });
    const byQuery = await openStream(`/v1/runs/${run.id}/events?lastEventId=${secondMetrics.id}`, headers);
    await Promise.all([byHeader.ended, byQuery.ended]);
    for (const stream of [byHeader, byQuery]) {
      expect(stream.events[0].event).toBe('run');
      expect(stream.events.slice(1, -1).map((e) => e.id)).toEqual(expected);
      expect(stream.events.slice(1, -1)[0]).toMatchObject({ event: 'metrics', data: { step: 3 } });
    }
    const bad = await fetch(`${url}/v1/runs/${run.id}/events`, {
      headers: { ...headers, 'last-event-id': 'x1' },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as SseEvent['data']).error?.message).toMatch(/last-event-id/);
  });
});

describe('live', () => {
  test('a running run replays what it has so far, then sends new events once each', async () => {
    const { headers } = await createTestTeam(api.app);
    const run = await newRun(headers);
    await publish(metrics(run, 1));
    await waitFor(
      async () => (await api.app.services.prisma.runEvent.count({ where: { runId: run.id } })) > 0,
    );
    const stream = await openStream(`/v1/runs/${run.id}/events`, headers);
    await waitFor(async () => stream.events.some((e) => e.event === 'metrics'));
    await publish(metrics(run, 2));
    await waitFor(async () => stream.events.filter((e) => e.event === 'metrics').length === 2);
    await api.app.inject({ method: 'POST', url: `/v1/runs/${run.id}/cancel`, headers });
    await stream.ended;
    const sent = stream.events.slice(1);
    expect(sent.filter((e) => e.event === 'metrics').map((e) => e.data.step)).toEqual([1, 2]);
    const ids = sent.filter((e) => e.id).map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(typesOf(sent).slice(-2)).toEqual(['run.updated', 'end']);
  });
});

describe('stream tokens', () => {
  test('a token opens its run stream without the Authorization header (an EventSource), and nothing else', async () => {
    const owner = await createTestTeam(api.app);
    const other = await createTestTeam(api.app);
    const run = await newRun(owner.headers);
    const otherRun = await newRun(owner.headers);
    const issued = await api.app.inject({
      method: 'POST',
      url: `/v1/runs/${run.id}/stream-token`,
      headers: owner.headers,
    });
    expect(issued.statusCode).toBe(201);
    const { token, url: path, expiresAt } = issued.json();
    expect(path).toBe(`/v1/runs/${run.id}/events?token=${token}`);
    const ttl = Date.parse(expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(5 * 60_000);
    expect(token).not.toContain(owner.key.slice(5)); // not the key

    const stream = await openStream(path);
    await waitFor(async () => stream.events.length > 0);
    expect(stream.events[0]).toMatchObject({ event: 'run', data: { status: 'queued' } });
    stream.close();

    const refused = async (path: string) => {
      const response = await fetch(`${url}${path}`);
      return { status: response.status, body: (await response.json()) as { error: { message: string } } };
    };
    // Another run of the same team, another team's run, a forged or expired token: 401; only events open.
    const forOther = await refused(`/v1/runs/${otherRun.id}/events?token=${token}`);
    expect(forOther).toMatchObject({
      status: 401,
      body: { error: { message: 'the stream token is for another run' } },
    });
    const forged = `${token.split('.')[0]}.${'A'.repeat(43)}`;
    expect((await refused(`/v1/runs/${run.id}/events?token=${forged}`)).status).toBe(401);
    expect((await refused(`/v1/runs/${run.id}?token=${token}`)).status).toBe(401);
    const keyId = (
      await api.app.services.prisma.apiKey.findFirstOrThrow({ where: { teamId: owner.team.id } })
    ).id;
    const expired = await api.app.services.streamTokens.issue(
      { teamId: owner.team.id, runId: run.id, keyId },
      -1,
    );
    expect(await refused(`/v1/runs/${run.id}/events?token=${expired.token}`)).toMatchObject({
      status: 401,
      body: { error: { message: 'the stream token expired; ask for a new one' } },
    });
    // Tokens are only for the team's own runs, and the key itself never goes in a URL.
    const stranger = await api.app.inject({
      method: 'POST',
      url: `/v1/runs/${run.id}/stream-token`,
      headers: other.headers,
    });
    expect(stranger.statusCode).toBe(404);
    const keyInUrl = await fetch(`${url}/v1/runs/${run.id}/events?key=${owner.key}`, {
      headers: owner.headers,
    });
    expect(keyInUrl.status).toBe(400);

    // A revoked key's tokens open nothing.
    await api.app.services.prisma.apiKey.update({ where: { id: keyId }, data: { revokedAt: new Date() } });
    expect(await refused(path)).toMatchObject({
      status: 401,
      body: { error: { message: 'the key that issued the stream token was revoked' } },
    });
  });
});
