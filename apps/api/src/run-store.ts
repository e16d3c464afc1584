// Runs in Postgres: every query of the runs routes and of run creation (reads, pages, the run row and its
// stages). Routes translate HTTP; runs.ts decides; this module only reads and writes rows.
import type { ModelRecord, RunSpec, StageKind } from '@rlhf/contracts';
import {
  type Artifact as ArtifactRow,
  type MetricPoint as MetricRow,
  Prisma,
  type PrismaClient,
  type Run as RunRow,
  type RunStatus,
  type Sample as SampleRow,
  type Stage as StageRow,
} from '@rlhf/db';

export type RunWithStages = RunRow & { stages: StageRow[] };

export async function findRun(
  prisma: PrismaClient,
  teamId: string,
  runId: string,
): Promise<RunWithStages | null> {
  return prisma.run.findFirst({ where: { id: runId, teamId }, include: { stages: true } });
}

/** A run's status (null: no such run). */
export async function runStatus(prisma: PrismaClient, runId: string): Promise<RunStatus | null> {
  return (await prisma.run.findUnique({ where: { id: runId }, select: { status: true } }))?.status ?? null;
}

/** Of `stageIds`, those of the team's runs. */
export async function teamStageIds(
  prisma: PrismaClient,
  teamId: string,
  stageIds: string[],
): Promise<Set<string>> {
  const rows = await prisma.stage.findMany({
    where: { id: { in: stageIds }, run: { teamId } },
    select: { id: true },
  });
  return new Set(rows.map((row) => row.id));
}

/** The team's runs named by these idempotency keys. */
export async function runsByIdempotencyKeys(
  prisma: PrismaClient,
  teamId: string,
  keys: string[],
): Promise<RunRow[]> {
  if (keys.length === 0) return [];
  return prisma.run.findMany({ where: { teamId, idempotencyKey: { in: keys } } });
}

/** The team's runs among `ids`, with their stages. */
export async function findRuns(
  prisma: PrismaClient,
  teamId: string,
  ids: string[],
): Promise<RunWithStages[]> {
  return prisma.run.findMany({ where: { teamId, id: { in: ids } }, include: { stages: true } });
}

/** Runs of the team waiting for admission. */
export async function waitingRuns(prisma: PrismaClient, teamId: string): Promise<number> {
  return prisma.run.count({ where: { teamId, status: 'queued', admittedAt: null } });
}

/** What a run may carry beyond its spec: the OpenAI-compatible job it is (apps/api/src/openai). */
export interface RunExtra {
  fineTuning?: Prisma.InputJsonObject;
}

/** A run to insert; `id` is made by the caller (uuid v7). */
export interface NewRun {
  id: string;
  spec: RunSpec;
  model: ModelRecord;
  idempotencyKey: string | undefined;
  extra: RunExtra;
}

/**
 * New runs, queued, with one pending row per stage, in one transaction. A run whose idempotency key the team
 * already has (another request wrote it meanwhile) is left out: the runs returned are those inserted.
 */
export async function insertRuns(
  prisma: PrismaClient,
  teamId: string,
  runs: NewRun[],
): Promise<RunWithStages[]> {
  if (runs.length === 0) return [];
  const byId = new Map(runs.map((run) => [run.id, run]));
  return prisma.$transaction(
    async (tx) => {
      const rows = await tx.run.createManyAndReturn({
        skipDuplicates: true,
        data: runs.map(({ id, spec, model, idempotencyKey, extra }) => ({
          id,
          teamId,
          name: spec.name ?? '',
          spec: spec as Prisma.InputJsonObject,
          modelPreset: model.modelPreset,
          modelId: model.registeredModel?.modelId ?? null,
          baseModelKey: model.registeredModel?.key ?? null,
          fromRunId: model.fromRun?.runId ?? null,
          fromRunStage: model.fromRun?.stage ?? null,
          fromRunPolicyKey: model.fromRun?.policy ?? null,
          fromRunRewardModelKey: model.fromRun?.rewardModel ?? null,
          idempotencyKey: idempotencyKey ?? null,
          ...(extra.fineTuning ? { fineTuning: extra.fineTuning } : {}),
        })),
      });
      const stages = await tx.stage.createManyAndReturn({
        data: rows.flatMap((row) =>
          (byId.get(row.id) as NewRun).spec.stages.map((stage, index) => ({
            runId: row.id,
            index,
            kind: stage.kind,
            config: stage.config as Prisma.InputJsonObject,
            datasetId: stage.datasetId,
          })),
        ),
      });
      const of = new Map<string, StageRow[]>(rows.map((row) => [row.id, []]));
      for (const st of stages) of.get(st.runId)?.push(st);
      return rows.map((row) => ({ ...row, stages: of.get(row.id) ?? [] }));
    },
    // A burst's batch waits for its turn on a busy server rather than failing.
    { maxWait: 30_000, timeout: 60_000 },
  );
}

/** The team's datasets among `ids`, with their kinds and sizes (run spec validation). */
export async function datasetKinds(prisma: PrismaClient, teamId: string, ids: string[]) {
  return prisma.dataset.findMany({
    where: { teamId, id: { in: ids } },
    select: { id: true, kind: true, rows: true },
  });
}

/** Newest first; `cursor` is the last id of the previous page. */
export async function listRuns(
  prisma: PrismaClient,
  teamId: string,
  page: { status?: RunStatus; cursor?: string; limit: number },
): Promise<{ rows: RunWithStages[]; nextCursor: string | null }> {
  const rows = await prisma.run.findMany({
    where: {
      teamId,
      ...(page.status ? { status: page.status } : {}),
      ...(page.cursor ? { id: { lt: page.cursor } } : {}),
    },
    orderBy: { id: 'desc' },
    take: page.limit + 1,
    include: { stages: true },
  });
  return pageOf(rows, page.limit, (row) => row.id);
}

/** Last value of every metric, per stage id. */
export async function latestMetrics(
  prisma: PrismaClient,
  stageIds: string[],
): Promise<Map<string, Record<string, number>>> {
  const out = new Map<string, Record<string, number>>();
  if (stageIds.length === 0) return out;
  const rows = await prisma.$queryRaw<{ stageId: string; name: string; value: number }[]>`
    SELECT DISTINCT ON ("stageId", "name") "stageId", "name", "value" FROM "MetricPoint"
    WHERE "stageId" IN (${Prisma.join(stageIds)}) ORDER BY "stageId", "name", "step" DESC`;
  for (const row of rows) {
    const values = out.get(row.stageId) ?? {};
    values[row.name] = row.value;
    out.set(row.stageId, values);
  }
  return out;
}

/** Where a metrics page starts: after this (stage, step, name). */
export interface MetricCursor {
  stageId: string;
  step: number;
  name: string;
}

/** Metric points ordered by stage, step, name. */
export async function metricPage(
  prisma: PrismaClient,
  stageIds: string[],
  page: { name?: string; afterStep?: number; after?: MetricCursor; limit: number },
): Promise<{ rows: MetricRow[]; next: MetricCursor | null }> {
  const { name, afterStep, after, limit } = page;
  const rows = await prisma.metricPoint.findMany({
    where: {
      stageId: { in: stageIds },
      ...(name ? { name } : {}),
      ...(afterStep === undefined ? {} : { step: { gt: afterStep } }),
      ...(after
        ? {
            OR: [
              { stageId: { gt: after.stageId } },
              { stageId: after.stageId, step: { gt: after.step } },
              { stageId: after.stageId, step: after.step, name: { gt: after.name } },
            ],
          }
        : {}),
    },
    orderBy: [{ stageId: 'asc' }, { step: 'asc' }, { name: 'asc' }],
    take: limit + 1,
  });
  const items = rows.slice(0, limit);
  return { rows: items, next: rows.length > limit ? cursorOf(items[items.length - 1]) : null };
}

const cursorOf = (row: MetricRow): MetricCursor => ({ stageId: row.stageId, step: row.step, name: row.name });

/** Samples newest first (uuid v7 ids); `cursor` is the last id of the previous page. */
export async function samplePage(
  prisma: PrismaClient,
  stageIds: string[],
  page: { cursor?: string; limit: number },
): Promise<{ rows: SampleRow[]; nextCursor: string | null }> {
  const rows = await prisma.sample.findMany({
    where: { stageId: { in: stageIds }, ...(page.cursor ? { id: { lt: page.cursor } } : {}) },
    orderBy: { id: 'desc' },
    take: page.limit + 1,
  });
  return pageOf(rows, page.limit, (row) => row.id);
}

export async function listArtifacts(prisma: PrismaClient, stageIds: string[]): Promise<ArtifactRow[]> {
  return prisma.artifact.findMany({
    where: { stageId: { in: stageIds } },
    orderBy: [{ createdAt: 'asc' }, { path: 'asc' }],
  });
}

export async function findArtifact(
  prisma: PrismaClient,
  stageIds: string[],
  artifactId: string,
): Promise<ArtifactRow | null> {
  return prisma.artifact.findFirst({ where: { id: artifactId, stageId: { in: stageIds } } });
}

/** The finished stages of a run with their models (a later run's model.fromRun). */
export const finishedModels = (run: RunWithStages): { kind: StageKind; modelKey: string }[] =>
  run.stages.flatMap((st) =>
    st.status === 'succeeded' && st.modelKey !== null ? [{ kind: st.kind, modelKey: st.modelKey }] : [],
  );

// One more row than the page tells whether there is a next page.
function pageOf<T>(rows: T[], limit: number, cursor: (row: T) => string) {
  const page = rows.slice(0, limit);
  return { rows: page, nextCursor: rows.length > limit ? cursor(page[page.length - 1]) : null };
}
