// Runs: creation (validation against the team's datasets and runs, idempotency), cancellation and
// the detail views. Routes in routes/runs.ts are the HTTP layer over these.
import { isDeepStrictEqual } from 'node:util';
import {
  type FieldError,
  type ModelPreset,
  type RunSpec,
  type StageKind,
  validateRunSpec,
} from '@rlhf/contracts';
import { Prisma, type Run as RunRow, type Stage as StageRow, type Team } from '@rlhf/db';
import { removeRunJobs, requestCancel } from '@rlhf/queue';
import { admitRuns, lockAdmission } from './admission.js';
import { ApiError, invalidRequest, notFound } from './errors.js';
import type { RunView } from './schemas.js';
import type { Services } from './services.js';
import { isUniqueViolation } from './teams.js';
import { isFinished, runView } from './views.js';

/** Run.hyperparameters: everything resolved about a run, recorded with it. */
export interface RunSettings {
  modelPreset: ModelPreset;
  /** model.fromRun: the earlier run and the artifact keys of its models this run starts from. */
  fromRun: { runId: string; stage: 'sft' | 'ppo'; policy: string; rewardModel: string | null } | null;
  /** Per stage kind: the resolved config, merged with what the worker reported when it started. */
  stages: Partial<Record<StageKind, Record<string, unknown>>>;
}

export type RunWithStages = RunRow & { stages: StageRow[] };

export async function findRun(s: Services, team: Team, runId: string): Promise<RunWithStages> {
  const run = await s.prisma.run.findFirst({
    where: { id: runId, teamId: team.id },
    include: { stages: true },
  });
  if (!run) throw notFound('run', runId);
  return run;
}

/** Last value of every metric, per stage id. */
export async function latestMetrics(
  s: Services,
  stageIds: string[],
): Promise<Map<string, Record<string, number>>> {
  const out = new Map<string, Record<string, number>>();
  if (stageIds.length === 0) return out;
  const rows = await s.prisma.$queryRaw<{ stageId: string; name: string; value: number }[]>`
    SELECT DISTINCT ON ("stageId", "name") "stageId", "name", "value" FROM "MetricPoint"
    WHERE "stageId" IN (${Prisma.join(stageIds)}) ORDER BY "stageId", "name", "step" DESC`;
  for (const row of rows) {
    const values = out.get(row.stageId) ?? {};
    values[row.name] = row.value;
    out.set(row.stageId, values);
  }
  return out;
}

export async function runViews(s: Services, runs: RunWithStages[]): Promise<RunView[]> {
  const latest = await latestMetrics(
    s,
    runs.flatMap((r) => r.stages.map((st) => st.id)),
  );
  return runs.map((run) => runView(run, latest));
}

export async function runDetail(s: Services, team: Team, runId: string): Promise<RunView> {
  const [view] = await runViews(s, [await findRun(s, team, runId)]);
  return view;
}

/** Checks a run spec against the team's datasets and runs; 400 naming every problem. */
async function resolveSpec(
  s: Services,
  team: Team,
  body: unknown,
): Promise<{ spec: RunSpec; settings: RunSettings }> {
  const raw = (typeof body === 'object' && body !== null ? body : {}) as {
    stages?: unknown;
    model?: unknown;
  };
  const datasetIds = Array.isArray(raw.stages)
    ? raw.stages.flatMap((st) => {
        const id = (st as { datasetId?: unknown } | null)?.datasetId;
        return typeof id === 'string' ? [id] : [];
      })
    : [];
  const datasets = await s.prisma.dataset.findMany({ where: { teamId: team.id, id: { in: datasetIds } } });
  const model = raw.model as { fromRun?: unknown; stage?: unknown } | undefined;
  const fromRunId = typeof model?.fromRun === 'string' ? model.fromRun : undefined;
  const fromRun = fromRunId
    ? await s.prisma.run.findFirst({ where: { id: fromRunId, teamId: team.id }, include: { stages: true } })
    : null;
  const extra: FieldError[] = [];
  if (fromRunId !== undefined && !fromRun)
    extra.push({ path: '/model/fromRun', message: `unknown run ${fromRunId}` });
  const finished = fromRun?.stages.filter((st) => st.status === 'succeeded' && st.modelKey !== null);
  const result = validateRunSpec(body, {
    datasets: Object.fromEntries(datasets.map((d) => [d.id, d.kind])),
    ...(finished ? { fromRunStages: finished.map((st) => st.kind) } : {}),
  });
  if (!result.ok || extra.length > 0) throw invalidRequest([...extra, ...(result.ok ? [] : result.errors)]);
  const spec = result.spec;
  const stages = Object.fromEntries(spec.stages.map((st) => [st.kind, st.config]));
  if ('preset' in spec.model)
    return { spec, settings: { modelPreset: spec.model.preset, fromRun: null, stages } };
  // validateRunSpec checked that the run has the stages this one starts from.
  const from = fromRun as RunWithStages;
  const stage = spec.model.stage ?? 'sft';
  const keyOf = (kind: StageKind) => finished?.find((st) => st.kind === kind)?.modelKey ?? null;
  const previous = from.hyperparameters as unknown as RunSettings;
  return {
    spec,
    settings: {
      modelPreset: previous.modelPreset,
      fromRun: { runId: from.id, stage, policy: keyOf(stage) as string, rewardModel: keyOf('reward_model') },
      stages,
    },
  };
}

/**
 * Creates a run (queued, stages pending) and runs admission. With an idempotency key, a retry returns
 * the run created first (`created: false`); the same key with a different spec is a 409.
 */
export async function createRun(
  s: Services,
  team: Team,
  body: unknown,
  idempotencyKey: string | undefined,
): Promise<{ run: RunView; created: boolean }> {
  const { spec, settings } = await resolveSpec(s, team, body);
  const replay = async (): Promise<{ run: RunView; created: boolean } | null> => {
    if (idempotencyKey === undefined) return null;
    const existing = await s.prisma.run.findUnique({
      where: { teamId_idempotencyKey: { teamId: team.id, idempotencyKey } },
    });
    if (!existing) return null;
    if (!isDeepStrictEqual(existing.spec, spec)) {
      throw new ApiError(
        409,
        'idempotency_key_reused',
        `Idempotency-Key "${idempotencyKey}" was used for run ${existing.id} with a different spec`,
      );
    }
    return { run: await runDetail(s, team, existing.id), created: false };
  };
  const earlier = await replay();
  if (earlier) return earlier;
  let run: RunRow;
  try {
    run = await s.prisma.run.create({
      data: {
        teamId: team.id,
        name: spec.name ?? '',
        spec: spec as unknown as Prisma.InputJsonValue,
        hyperparameters: settings as unknown as Prisma.InputJsonValue,
        idempotencyKey: idempotencyKey ?? null,
        stages: {
          create: spec.stages.map((stage, index) => ({
            index,
            kind: stage.kind,
            config: stage.config as unknown as Prisma.InputJsonValue,
            datasetId: stage.datasetId,
          })),
        },
      },
    });
  } catch (error) {
    // Two retries raced: the other one created it.
    const raced = isUniqueViolation(error) ? await replay() : null;
    if (raced) return raced;
    throw error;
  }
  s.metrics.runsCreated.inc();
  await admitSafely(s, team.id);
  return { run: await runDetail(s, team, run.id), created: true };
}

/** Admission that never fails the request: a run it could not admit now waits for the next pass. */
export async function admitSafely(s: Services, teamId?: string): Promise<void> {
  try {
    await admitRuns(s, teamId);
  } catch (error) {
    s.logger.error({ err: error }, 'admission failed; waiting runs are retried on the next pass');
  }
}

/**
 * Cancels a run: waiting and queued stages at once, a running stage when its worker stops it
 * (stage.cancelled event). 409 if the run already finished.
 */
export async function cancelRun(s: Services, team: Team, runId: string): Promise<RunView> {
  const run = await findRun(s, team, runId);
  const now = new Date();
  await s.prisma.$transaction(async (tx) => {
    await lockAdmission(tx); // admission cannot add this run's flow meanwhile
    const current = await tx.run.findUniqueOrThrow({ where: { id: run.id } });
    if (isFinished(current.status)) {
      throw new ApiError(409, 'run_finished', `run ${run.id} already ${current.status}`);
    }
    if (current.admittedAt !== null) {
      // Redis before the commit: if it fails, nothing is marked cancelled and a retry cancels for real. The flag
      // first: a worker taking one of the jobs from now on sees it.
      await requestCancel(s.redis, run.id, s.prefix);
      await removeRunJobs(
        s.queue,
        run.stages.map((st) => st.id),
      );
    }
    await tx.stage.updateMany({
      where: { runId: run.id, status: { in: ['pending', 'queued'] } },
      data: { status: 'cancelled', finishedAt: now },
    });
    await tx.run.update({ where: { id: run.id }, data: { status: 'cancelled', finishedAt: now } });
  });
  await s.hub.publish({ runId: run.id, type: 'run.updated', data: { runId: run.id, status: 'cancelled' } });
  await admitSafely(s, team.id);
  return runDetail(s, team, run.id);
}
