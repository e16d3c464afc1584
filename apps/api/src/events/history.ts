// The run's event history in Postgres (RunEvent): every message an SSE stream sends, stored before it is
// fanned out, so a stream replays it for a finished run and resumes after Last-Event-ID (the seq).
import type { PrismaClient } from '@rlhf/db';
import type { RunMessage } from './hub.js';
import { pgText } from './persist.js';

// jsonb cannot hold U+0000 either (a policy may emit it): stored as U+FFFD, as samples are.
const jsonText = (data: unknown) =>
  JSON.stringify(data, (_key, value: unknown) => (typeof value === 'string' ? pgText(value) : value));

/**
 * Stores a message of `runId` (once per `streamId` when given) and returns its seq, the SSE id; null when the
 * run does not exist (a deleted run, another deployment's event).
 */
export async function recordRunEvent(
  prisma: PrismaClient,
  message: Omit<RunMessage, 'id'>,
  streamId: string | null = null,
): Promise<string | null> {
  const rows = await prisma.$queryRaw<{ seq: bigint }[]>`
    INSERT INTO "RunEvent" ("runId", "streamId", "type", "data")
    SELECT ${message.runId}, ${streamId}, ${message.type}, ${jsonText(message.data ?? null)}::jsonb
    WHERE EXISTS (SELECT 1 FROM "Run" WHERE "id" = ${message.runId})
    ON CONFLICT ("streamId") DO UPDATE SET "type" = EXCLUDED."type"
    RETURNING "seq"`;
  return rows[0] === undefined ? null : String(rows[0].seq);
}

/** The run's stored messages after `afterSeq`, oldest first, `limit` at a time. */
export async function runEventsAfter(
  prisma: PrismaClient,
  runId: string,
  afterSeq: bigint,
  limit: number,
): Promise<RunMessage[]> {
  const rows = await prisma.runEvent.findMany({
    where: { runId, seq: { gt: afterSeq } },
    orderBy: { seq: 'asc' },
    take: limit,
  });
  return rows.map((row) => ({ runId, type: row.type, id: String(row.seq), data: row.data }));
}
