// Runs: creation (validation against the team's datasets and runs, idempotency), cancellation and
// the views of runs and what they produced. Routes in routes/runs.ts are the HTTP layer over these;
// the rows are read and written by run-store.ts.
import { isDeepStrictEqual } from 'node:util';
import {
  type Artifact,
  type FieldError,
  MAX_STEPS,
  type MetricPoint,
  type ModelRecord,
  type RunSpec,
  type Sample,
  type StageKind,
  validateRunSpec,
} from '@rlhf/contracts';
import type { RunStatus, Team } from '@rlhf/db';
import { removeRunJobs, requestCancel } from '@rlhf/queue';
import { admitSafely, lockAdmission } from './admission.js';
import { ApiError, invalidRequest, notFound } from './errors.js';
import { resolveEvalStage } from './eval-stage.js';
import * as store from './run-store.js';
import type { RunView } from './schemas.js';
import type { Services } from './services.js';
import { submit } from './submissions.js';
import { runGraderErrors } from './grader-checks.js';
import type { GptConfig } from '@rlhf/model';
import { callLimitErrors } from './call-limits.js';
import { type ModelShape, stepMemoryErrors } from './limits.js';
import { framingErrors } from './framing-checks.js';
import { loraErrorsOf } from './lora-checks.js';
import { registeredAdapterErrors } from './model-adapter.js';
import { visibleTo } from './models.js';
import { artifactView, isFinished, metricView, modelPresetOf, runView, sampleView } from './views.js';

export type { RunWithStages } from './run-store.js';

export async function findRun(s: Services, team: Team, runId: string): Promise<store.RunWithStages> {
  const run = await store.findRun(s.prisma, team.id, runId);
  if (!run) throw notFound('run', runId);
  return run;
}

export async function runViews(s: Services, runs: store.RunWithStages[]): Promise<RunView[]> {
  // A pending stage (its run not admitted yet) has no job, so no metrics: waiting runs cost no lookup.
  const latest = await store.latestMetrics(
    s.prisma,
    runs.flatMap((r) => r.stages.flatMap((st) => (st.status === 'pending' ? [] : [st.id]))),
  );
  return runs.map((run) => runView(run, latest));
}

export async function runDetail(s: Services, team: Team, runId: string): Promise<RunView> {
  const [view] = await runViews(s, [await findRun(s, team, runId)]);
  return view;
}

export async function runPage(
  s: Services,
  team: Team,
  page: { status?: RunStatus; cursor?: string; limit: number },
): Promise<{ items: RunView[]; nextCursor: string | null }> {
  const { rows, nextCursor } = await store.listRuns(s.prisma, team.id, page);
  return { items: await runViews(s, rows), nextCursor };
}

// The stage ids of a run a list reads: all, or the one asked for.
const stageIdsOf = (run: store.RunWithStages, stageId: string | undefined) =>
  run.stages.map((st) => st.id).filter((id) => stageId === undefined || id === stageId);

export async function metricHistory(
  s: Services,
  team: Team,
  runId: string,
  query: { stageId?: string; name?: string; afterStep?: number; after?: store.MetricCursor; limit: number },
): Promise<{ items: MetricPoint[]; next: store.MetricCursor | null }> {
  const run = await findRun(s, team, runId);
  const { rows, next } = await store.metricPage(s.prisma, stageIdsOf(run, query.stageId), query);
  return { items: rows.map(metricView), next };
}

export async function samplePage(
  s: Services,
  team: Team,
  runId: string,
  query: { stageId?: string; cursor?: string; limit: number },
): Promise<{ items: Sample[]; nextCursor: string | null }> {
  const run = await findRun(s, team, runId);
  const { rows, nextCursor } = await store.samplePage(s.prisma, stageIdsOf(run, query.stageId), query);
  return { items: rows.map(sampleView), nextCursor };
}

export async function artifactList(
  s: Services,
  team: Team,
  runId: string,
  filter: { kind?: Artifact['kind']; stageId?: string } = {},
): Promise<Artifact[]> {
  const run = await findRun(s, team, runId);
  const rows = await store.listArtifacts(s.prisma, stageIdsOf(run, filter.stageId));
  return rows
    .map((row) => artifactView(row, run.id))
    .filter((artifact) => filter.kind === undefined || artifact.kind === filter.kind);
}

/** An artifact of the team's run and its file's store key; 404 for anything else. */
export async function findArtifact(
  s: Services,
  team: Team,
  runId: string,
  artifactId: string,
): Promise<{ artifact: Artifact; path: string }> {
  const run = await findRun(s, team, runId);
  const row = await store.findArtifact(s.prisma, stageIdsOf(run, undefined), artifactId);
  if (!row) throw notFound('artifact', artifactId);
  return { artifact: artifactView(row, run.id), path: row.path };
}

// Only ids of the Id pattern are looked up (a NUL in one is a Postgres error, not a client's 400);
// validateRunSpec names the others.
const ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Checks a run spec against the team's datasets and runs; 400 naming every problem. */
async function resolveSpec(
  s: Services,
  team: Team,
  body: unknown,
): Promise<{ spec: RunSpec; model: ModelRecord }> {
  const raw = (typeof body === 'object' && body !== null ? body : {}) as {
    stages?: unknown;
    model?: unknown;
  };
  const datasetIds = Array.isArray(raw.stages)
    ? raw.stages.flatMap((st) => {
        const id = (st as { datasetId?: unknown } | null)?.datasetId;
        return typeof id === 'string' && ID.test(id) ? [id] : [];
      })
    : [];
  const datasets = await store.datasetKinds(s.prisma, team.id, datasetIds);
  const model = raw.model as { fromRun?: unknown; stage?: unknown; modelId?: unknown } | undefined;
  const fromRunId = typeof model?.fromRun === 'string' ? model.fromRun : undefined;
  const fromRun = fromRunId && ID.test(fromRunId) ? await store.findRun(s.prisma, team.id, fromRunId) : null;
  const extra: FieldError[] = [];
  if (fromRunId !== undefined && !fromRun)
    extra.push({ path: '/model/fromRun', message: `unknown run ${fromRunId}` });
  // A registered model: the team's own or an admin model (another team's id is unknown); a fromRun run keeps its run's.
  const modelId =
    typeof model?.modelId === 'string' && fromRunId === undefined
      ? model.modelId
      : (fromRun?.modelId ?? undefined);
  const registered =
    modelId && ID.test(modelId)
      ? await s.prisma.model.findFirst({ where: { id: modelId, ...visibleTo(team) } })
      : null;
  if (modelId !== undefined && !registered && fromRunId === undefined)
    extra.push({ path: '/model/modelId', message: `unknown model ${modelId}` });
  const finished = fromRun ? store.finishedModels(fromRun) : undefined;
  const result = validateRunSpec(body, {
    datasets: Object.fromEntries(datasets.map((d) => [d.id, d.kind])),
    ...(finished ? { fromRunStages: finished.map((st) => st.kind) } : {}),
  });
  if (!result.ok || extra.length > 0) throw invalidRequest([...extra, ...(result.ok ? [] : result.errors)]);
  const spec = result.spec;
  const evalErrors = await resolveEvalStage(s, team, spec);
  if (evalErrors.length > 0) throw invalidRequest(evalErrors);
  const preset = 'preset' in spec.model ? spec.model.preset : fromRun ? modelPresetOf(fromRun) : null;
  const registeredModel = registered ? { modelId: registered.id, key: registered.key } : null;
  const shape = preset ?? (registered?.config as unknown as ModelShape | undefined);
  const tooLarge = [
    ...epochStepErrors(spec, new Map(datasets.map((d) => [d.id, d.rows]))),
    ...(shape ? stepMemoryErrors(spec, shape) : []),
    ...(shape ? callLimitErrors(spec, preset ?? (registered?.config as unknown as GptConfig)) : []),
    ...loraErrorsOf(spec, preset, registered?.config),
    ...(await registeredAdapterErrors(s.artifacts, spec, registered)),
    ...framingErrors(spec, registered?.hasChatTemplate ?? false),
    ...(await runGraderErrors(s, team, spec, {
      fromRunRewardModel: finished?.some((st) => st.kind === 'reward_model') ?? false,
    })),
  ];
  if (tooLarge.length > 0) throw invalidRequest(tooLarge);
  if (!('fromRun' in spec.model))
    return { spec, model: { modelPreset: preset, registeredModel, fromRun: null } };
  // validateRunSpec checked that the run has the stages this one starts from.
  const from = fromRun as store.RunWithStages;
  const stage = spec.model.stage ?? 'sft';
  const keyOf = (kind: StageKind) => finished?.find((st) => st.kind === kind)?.modelKey ?? null;
  return {
    spec,
    model: {
      modelPreset: preset,
      registeredModel,
      fromRun: { runId: from.id, stage, policy: keyOf(stage) as string, rewardModel: keyOf('reward_model') },
    },
  };
}

// Epochs over a dataset become steps the workers count in 32-bit columns: at most epochs × ⌈rows / batch⌉.
function epochStepErrors(spec: RunSpec, rows: ReadonlyMap<string, number>): FieldError[] {
  return spec.stages.flatMap((stage, i) => {
    if (
      stage.kind === 'ppo' ||
      stage.kind === 'raft' ||
      stage.kind === 'grpo' ||
      stage.kind === 'eval' ||
      stage.config.maxSteps !== null
    )
      return [];
    const steps = stage.config.epochs * Math.ceil((rows.get(stage.datasetId) ?? 0) / stage.config.batchSize);
    if (steps <= MAX_STEPS) return [];
    return [
      {
        path: `/stages/${i}/config/epochs`,
        message: `${stage.config.epochs} epochs of this dataset are up to ${steps} steps: must be <= ${MAX_STEPS} (set maxSteps, or fewer epochs)`,
      },
    ];
  });
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
  extra: store.RunExtra = {},
): Promise<{ run: RunView; created: boolean }> {
  // A team's burst takes a few database connections for its checks, not all of them: other teams'
  // requests do not queue behind it. Its writes are batched (submissions.ts).
  const { spec, model } = await s.teamGate.run(team.id, () => resolveSpec(s, team, body));
  const outcome = await submit(s, team, { spec, model, idempotencyKey, extra });
  if ('full' in outcome) {
    const { waiting, limit } = outcome.full;
    throw new ApiError(
      429,
      'too_many_waiting_runs',
      `the team has ${waiting} runs waiting for admission, the limit is ${limit} (maxWaitingRuns): wait for some to start, or cancel some`,
    );
  }
  if (!outcome.created && !isDeepStrictEqual(outcome.spec, spec)) {
    throw new ApiError(
      409,
      'idempotency_key_reused',
      `Idempotency-Key "${idempotencyKey}" was used for run ${outcome.run.id} with a different spec`,
    );
  }
  return { run: outcome.run, created: outcome.created };
}

/**
 * Cancels a run: waiting and queued stages at once, a running stage when its worker stops it
 * (stage.cancelled event). 409 if the run already finished.
 */
export async function cancelRun(s: Services, team: Team, runId: string): Promise<RunView> {
  const run = await findRun(s, team, runId);
  const now = new Date();
  await s.prisma.$transaction(async (tx) => {
    await lockAdmission(tx, team.id); // admission cannot add this run's flow meanwhile
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
