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

export async function findRunByIdempotencyKey(
  prisma: PrismaClient,
  teamId: string,
  idempotencyKey: string,
): Promise<RunRow | null> {
  return prisma.run.findUnique({ where: { teamId_idempotencyKey: { teamId, idempotencyKey } } });
}

/** What a run may carry beyond its spec: the OpenAI-compatible job it is (apps/api/src/openai). */
export interface RunExtra {
  fineTuning?: Prisma.InputJsonObject;
}

/** A new run, queued, with one pending row per stage. */
export async function insertRun(
  prisma: PrismaClient,
  teamId: string,
  spec: RunSpec,
  model: ModelRecord,
  idempotencyKey: string | undefined,
  extra: RunExtra = {},
): Promise<RunWithStages> {
  return prisma.run.create({
    include: { stages: true },
    data: {
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
      stages: {
        create: spec.stages.map((stage, index) => ({
          index,
          kind: stage.kind,
          config: stage.config as Prisma.InputJsonObject,
          datasetId: stage.datasetId,
        })),
      },
    },
  });
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
