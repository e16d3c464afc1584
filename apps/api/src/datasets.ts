// Datasets: the team's list and lookups, and uploads. The JSONL body is validated line by line while it streams into a temporary
// artifact; only a valid file is moved to its content address (datasets/{teamId}/{sha256}.jsonl)
// and recorded. A bad or oversized upload leaves nothing behind.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createJsonlValidator, type DatasetKind, formatJsonlError } from '@rlhf/contracts';
import type { DatasetKind as DatasetKindRow, Dataset as DatasetRow, Team } from '@rlhf/db';
import { keys } from '@rlhf/queue';
import { ApiError, notFound } from './errors.js';
import { createUtf8LineChecker } from './utf8.js';
import type { Services } from './services.js';
import { isUniqueViolation } from './teams.js';

/** Errors listed in a 400 at most (the validator stops after 20). */
const SHOWN_ERRORS = 5;

/** The team's datasets, newest first (uuid v7 ids); `cursor` is the last id of the previous page. */
export async function datasetPage(
  s: Services,
  team: Team,
  page: { kind?: DatasetKindRow; cursor?: string; limit: number },
): Promise<{ rows: DatasetRow[]; nextCursor: string | null }> {
  const rows = await s.prisma.dataset.findMany({
    where: {
      teamId: team.id,
      ...(page.kind ? { kind: page.kind } : {}),
      ...(page.cursor ? { id: { lt: page.cursor } } : {}),
    },
    orderBy: { id: 'desc' },
    take: page.limit + 1,
  });
  const items = rows.slice(0, page.limit);
  return { rows: items, nextCursor: rows.length > page.limit ? items[items.length - 1].id : null };
}

/** One of the team's datasets; 404 for anything else. */
export async function findDataset(s: Services, team: Team, datasetId: string): Promise<DatasetRow> {
  const row = await s.prisma.dataset.findFirst({ where: { id: datasetId, teamId: team.id } });
  if (!row) throw notFound('dataset', datasetId);
  return row;
}

export interface UploadResult {
  dataset: DatasetRow;
  /** false when the team already had this dataset: same name, kind and content (the upload is idempotent). */
  created: boolean;
}

export async function uploadDataset(
  s: Services,
  team: Team,
  upload: { name: string; kind: DatasetKind; body: Readable; declaredBytes?: number },
): Promise<UploadResult> {
  const limit = Number(team.maxUploadBytes);
  const tooLarge = () => {
    s.metrics.uploadRejected.inc({ reason: 'too_large' });
    return new ApiError(413, 'payload_too_large', `upload larger than the team's limit of ${limit} bytes`);
  };
  if (upload.declaredBytes !== undefined && upload.declaredBytes > limit) throw tooLarge();

  const validator = createJsonlValidator(upload.kind);
  const invalid = () => {
    const errors = validator.end().errors;
    s.metrics.uploadRejected.inc({ reason: 'invalid' });
    const shown = errors.slice(0, SHOWN_ERRORS).map(formatJsonlError);
    const more = errors.length > SHOWN_ERRORS ? ` (and ${errors.length - SHOWN_ERRORS} more)` : '';
    return new ApiError(
      400,
      'invalid_dataset',
      `not a valid ${upload.kind} dataset: ${shown.join('; ')}${more}`,
    );
  };
  const utf8 = createUtf8LineChecker();
  const notText = (line: number) => {
    s.metrics.uploadRejected.inc({ reason: 'invalid' });
    return new ApiError(
      400,
      'invalid_dataset',
      `not a valid ${upload.kind} dataset: line ${line}: invalid UTF-8 (datasets are UTF-8 text)`,
    );
  };
  let bytes = 0;
  async function* checked(): AsyncGenerator<Uint8Array> {
    for await (const chunk of upload.body as AsyncIterable<Buffer>) {
      bytes += chunk.byteLength;
      if (bytes > limit) throw tooLarge();
      const badLine = utf8.push(chunk);
      if (badLine !== null) throw notText(badLine);
      if (!validator.push(chunk)) throw invalid(); // enough errors: stop reading
      yield chunk;
    }
    const cutLine = utf8.end();
    if (cutLine !== null) throw notText(cutLine);
  }

  const temporary = `uploads/${team.id}/${randomUUID()}.jsonl`;
  const info = await s.artifacts.putStream(temporary, checked()); // nothing is left if it throws
  try {
    if (!validator.end().ok) throw invalid();
    const sha256 = info.sha256 as string;
    // The same name, kind and content is the same upload; anything else is a new record on the same file.
    const identity = { teamId: team.id, sha256, name: upload.name, kind: upload.kind };
    const existing = await s.prisma.dataset.findUnique({ where: { teamId_sha256_name_kind: identity } });
    if (existing) return { dataset: existing, created: false };
    await s.artifacts.move(temporary, keys.dataset(team.id, sha256));
    try {
      const dataset = await s.prisma.dataset.create({
        data: {
          teamId: team.id,
          name: upload.name,
          kind: upload.kind,
          sha256,
          rows: validator.count,
          bytes: BigInt(info.bytes),
        },
      });
      s.metrics.datasetsUploaded.inc();
      return { dataset, created: true };
    } catch (error) {
      // The same content uploaded twice at once: the other upload recorded it (and owns the same file).
      if (!isUniqueViolation(error)) throw error;
      const raced = await s.prisma.dataset.findUniqueOrThrow({
        where: { teamId_sha256_name_kind: identity },
      });
      return { dataset: raced, created: false };
    }
  } finally {
    // Best effort: on a read-only store this fails too, and the error that matters is the one above.
    await s.artifacts.delete(temporary).catch(() => {});
  }
}
