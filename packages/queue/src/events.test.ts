import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRedis } from './connection.js';
import {
  ackEvents,
  createEventGroup,
  publishEvent,
  readEvents,
  type StageEvent,
  tailEvents,
} from './events.js';
import { deletePrefix } from './keys.js';
import { testPrefix } from './test-fixtures.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = testPrefix('events');
let redis: Redis;

beforeAll(() => {
  redis = createRedis(REDIS_URL, { worker: true });
});
afterAll(async () => {
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

const metrics = (step: number): StageEvent => ({
  type: 'metrics',
  runId: 'run1',
  stageId: 'st1',
  step,
  values: { 'train/loss': 1 / step },
  time: new Date(0).toISOString(),
});

describe('events stream', () => {
  test('a consumer group gets every event once; unacked ones come back to a new consumer', async () => {
    // Published before the group exists: the group starts at the beginning of the stream.
    await publishEvent(redis, metrics(1), prefix);
    await createEventGroup(redis, 'api', prefix);
    await createEventGroup(redis, 'api', prefix); // idempotent
    await publishEvent(redis, metrics(2), prefix);

    const first = await readEvents(redis, { group: 'api', consumer: 'api-1', blockMs: 100, prefix });
    expect(first.map((e) => e.event)).toEqual([metrics(1), metrics(2)]);
    await ackEvents(redis, 'api', [first[0].id], prefix); // "crash" before persisting the second

    await publishEvent(redis, metrics(3), prefix);
    // A restarted API (another consumer name) first gets what was read but never acked, then new events.
    const opts = { group: 'api', consumer: 'api-2', blockMs: 100, claimIdleMs: 0, prefix };
    const claimed = await readEvents(redis, opts);
    expect(claimed.map((e) => e.event)).toEqual([metrics(2)]);
    await ackEvents(
      redis,
      'api',
      claimed.map((e) => e.id),
      prefix,
    );
    const fresh = await readEvents(redis, opts);
    expect(fresh.map((e) => e.event)).toEqual([metrics(3)]);
    await ackEvents(
      redis,
      'api',
      fresh.map((e) => e.id),
      prefix,
    );

    expect(await readEvents(redis, opts)).toEqual([]); // nothing left: returns after blockMs
  });

  test('tailEvents reads after an id without a group', async () => {
    const tailPrefix = `${prefix}-tail`;
    const id = await publishEvent(redis, metrics(10), tailPrefix);
    const next: StageEvent = { type: 'stage.cancelled', runId: 'run1', stageId: 'st1' };
    await publishEvent(redis, next, tailPrefix);
    const events = await tailEvents(redis, id, { blockMs: 100, prefix: tailPrefix });
    expect(events.map((e) => e.event)).toEqual([next]);
    expect(await tailEvents(redis, events[0].id, { blockMs: 50, prefix: tailPrefix })).toEqual([]);
    await deletePrefix(redis, tailPrefix);
  });
});
