import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isCancelRequested, requestCancel, subscribeCancel } from './cancel.js';
import { createRedis } from './connection.js';
import { listWorkers, removeHeartbeat, type WorkerHeartbeat, writeHeartbeat } from './heartbeat.js';
import { deletePrefix } from './keys.js';
import { testPrefix } from './test-fixtures.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = testPrefix('cancel');
let redis: Redis;

beforeAll(() => {
  redis = createRedis(REDIS_URL);
});
afterAll(async () => {
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

describe('cancellation', () => {
  test('a cancel request reaches every subscriber and leaves a flag for later', async () => {
    const subscribers = [createRedis(REDIS_URL, { worker: true }), createRedis(REDIS_URL, { worker: true })];
    const seen: string[][] = [[], []];
    const stops = await Promise.all(
      subscribers.map((s, i) => subscribeCancel(s, (id) => seen[i].push(id), prefix)),
    );
    expect(await isCancelRequested(redis, 'runA', prefix)).toBe(false);
    await requestCancel(redis, 'runA', prefix);
    await requestCancel(redis, 'runB', `${prefix}-other`); // another namespace: not seen
    const deadline = Date.now() + 5000;
    while (seen.some((s) => s.length === 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([['runA'], ['runA']]);
    expect(await isCancelRequested(redis, 'runA', prefix)).toBe(true);
    for (const stop of stops) await stop();
    for (const s of subscribers) s.disconnect();
    await deletePrefix(redis, `${prefix}-other`);
  });
});

describe('heartbeats', () => {
  const beat = (workerId: string): WorkerHeartbeat => ({
    workerId,
    hostname: 'host1',
    pid: 123,
    device: 'cpu',
    currentRunId: null,
    currentStageId: null,
    startedAt: new Date(0).toISOString(),
    lastHeartbeat: new Date().toISOString(),
  });

  test('live workers are listed; expired and removed ones are not', async () => {
    await writeHeartbeat(redis, beat('w2'), { prefix });
    await writeHeartbeat(redis, { ...beat('w1'), currentStageId: 'st1', currentRunId: 'run1' }, { prefix });
    await writeHeartbeat(redis, beat('w3'), { prefix, ttlMs: 50 });
    await new Promise((r) => setTimeout(r, 100));
    const workers = await listWorkers(redis, prefix);
    expect(workers.map((w) => [w.workerId, w.currentStageId])).toEqual([
      ['w1', 'st1'],
      ['w2', null],
    ]);
    await removeHeartbeat(redis, 'w2', prefix);
    expect((await listWorkers(redis, prefix)).map((w) => w.workerId)).toEqual(['w1']);
  });
});
