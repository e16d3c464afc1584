import type { SampleRow, StageJobResult } from '@rlhf/contracts';
import type { Redis } from 'ioredis';
import { DEFAULT_PREFIX, redisKeys } from './keys.js';

// Workers publish StageEvents to one Redis stream; the API reads it with a consumer group, persists to
// Postgres, then acks, so nothing is lost across an API restart (unacked entries are claimed again).

export type { SampleRow };

interface StageRef {
  runId: string;
  stageId: string;
}

export type StageEvent =
  | (StageRef & {
      type: 'stage.started';
      workerId: string;
      /** 1 for the first try; a re-taken job (retry, crash, shutdown) has a higher number or the same one */
      attempt: number;
      resumedFromStep: number | null;
      totalSteps: number | null;
      hyperparameters: Record<string, unknown>;
    })
  | (StageRef & { type: 'stage.progress'; step: number; totalSteps: number | null })
  | (StageRef & { type: 'metrics'; step: number; values: Record<string, number>; time: string })
  | (StageRef & { type: 'samples'; step: number; rows: readonly SampleRow[] })
  | (StageRef & {
      type: 'artifact';
      /** 'checkpoint' | 'final' | anything a runner names */
      kind: string;
      key: string;
      bytes: number;
      sha256?: string;
      step?: number;
    })
  | (StageRef & { type: 'stage.completed'; result: StageJobResult })
  | (StageRef & { type: 'stage.failed'; error: string; willRetry: boolean })
  | (StageRef & { type: 'stage.cancelled' })
  /** A worker stopped the stage for a shutdown; the job went back to the queue and will resume elsewhere. */
  | (StageRef & { type: 'stage.requeued'; workerId: string; step: number | null })
  /** The run was paused: the stage checkpointed at `step` and its job is parked until the run resumes. */
  | (StageRef & { type: 'stage.paused'; workerId: string; step: number | null });

export type StageEventType = StageEvent['type'];

export interface StreamEvent {
  /** Redis stream id (ack it with ackEvents). */
  id: string;
  event: StageEvent;
}

/** Stream length kept (approximate trim): ~100 MB at ~200 B per event. */
export const EVENTS_MAXLEN = 500_000;

/** XADD; returns the stream id. */
export async function publishEvent(
  redis: Redis,
  event: StageEvent,
  prefix = DEFAULT_PREFIX,
): Promise<string> {
  const id = await redis.xadd(
    redisKeys(prefix).events,
    'MAXLEN',
    '~',
    EVENTS_MAXLEN,
    '*',
    'type',
    event.type,
    'event',
    JSON.stringify(event),
  );
  return id as string;
}

/** Creates the consumer group once (idempotent). It starts at the stream's beginning, so no event is missed. */
export async function createEventGroup(redis: Redis, group: string, prefix = DEFAULT_PREFIX): Promise<void> {
  try {
    await redis.xgroup('CREATE', redisKeys(prefix).events, group, '0', 'MKSTREAM');
  } catch (error) {
    if (!(error instanceof Error) || !error.message.includes('BUSYGROUP')) throw error;
  }
}

export interface ReadEventsOptions {
  group: string;
  /** Stable name per API process (e.g. hostname); any name works: stale pending entries are claimed. */
  consumer: string;
  count?: number;
  /** How long to wait for new events (default 5000 ms); use a dedicated connection when blocking. */
  blockMs?: number;
  /** Entries read but not acked for this long (a crashed consumer, a failed persist) are delivered again. */
  claimIdleMs?: number;
  prefix?: string;
}

/**
 * Next events for a consumer group: first entries some consumer read but never acked for claimIdleMs, then new
 * ones (waiting up to blockMs). Ack each after persisting it; an unacked entry comes back after claimIdleMs.
 */
export async function readEvents(redis: Redis, opts: ReadEventsOptions): Promise<StreamEvent[]> {
  const stream = redisKeys(opts.prefix).events;
  const count = opts.count ?? 100;
  const claimed = (await redis.xautoclaim(
    stream,
    opts.group,
    opts.consumer,
    opts.claimIdleMs ?? 30_000,
    '0-0',
    'COUNT',
    count,
  )) as [string, [string, string[]][] | null];
  const stale = parseEntries(claimed[1] ?? []);
  if (stale.length > 0) return stale;
  const fresh = (await redis.xreadgroup(
    'GROUP',
    opts.group,
    opts.consumer,
    'COUNT',
    count,
    'BLOCK',
    opts.blockMs ?? 5000,
    'STREAMS',
    stream,
    '>',
  )) as [string, [string, string[]][]][] | null;
  return parseEntries(fresh?.[0]?.[1] ?? []);
}

export async function ackEvents(
  redis: Redis,
  group: string,
  ids: string[],
  prefix = DEFAULT_PREFIX,
): Promise<void> {
  if (ids.length > 0) await redis.xack(redisKeys(prefix).events, group, ...ids);
}

/**
 * Plain XREAD after `lastId` (no group, nothing acked): live tails, tests. '$' = only events after the call;
 * returns [] after blockMs without events.
 */
export async function tailEvents(
  redis: Redis,
  lastId: string,
  opts: { count?: number; blockMs?: number; prefix?: string } = {},
): Promise<StreamEvent[]> {
  const reply = (await redis.xread(
    'COUNT',
    opts.count ?? 100,
    'BLOCK',
    opts.blockMs ?? 5000,
    'STREAMS',
    redisKeys(opts.prefix).events,
    lastId,
  )) as [string, [string, string[]][]][] | null;
  return parseEntries(reply?.[0]?.[1] ?? []);
}

// Entries deleted by trimming come back from XAUTOCLAIM with null fields; they are skipped.
function parseEntries(entries: [string, string[] | null][]): StreamEvent[] {
  const out: StreamEvent[] = [];
  for (const [id, fields] of entries) {
    if (!fields) continue;
    const at = fields.indexOf('event');
    if (at >= 0) out.push({ id, event: JSON.parse(fields[at + 1]) as StageEvent });
  }
  return out;
}
