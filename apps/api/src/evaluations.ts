// Evaluations: the spec checked and resolved to artifact keys (models of the team's runs or registered models, a
// prompt dataset, a judge), recorded, and handed to the evaluation queue; the row follows its job (read when
// asked: a finished job's result comes from the artifact store). The leaderboard rates every model the team has
// compared, from all its finished evaluations.
import {
  DEFAULT_JUDGE_COMBINE,
  type EvaluationJobData,
  type EvaluationResult,
  EvaluationSpec,
  type FieldError,
  type GraderSpec,
  POLICY_STAGES,
  type PromptRow,
  schemaErrors,
  validateJsonl,
} from '@rlhf/contracts';
import type { Evaluation as EvaluationRow, Prisma, Team } from '@rlhf/db';
import { type Comparison, DEFAULT_JUDGE_TEMPLATE, leaderboard } from '@rlhf/eval';
import { graderErrors, rowFieldErrors } from '@rlhf/graders';
import { addEvaluationJob, createEvaluationQueue, type EvaluationQueue, keys } from '@rlhf/queue';
import Value from 'typebox/value';
import { invalidRequest, notFound } from './errors.js';
import { pgText } from './events/persist.js';
import { uuidv7 } from './ids.js';
import { visibleTo } from './models.js';
import * as store from './run-store.js';
import type { Services } from './services.js';

const queues = new WeakMap<Services, EvaluationQueue>();
/** The evaluation queue of these services (one connection, closed with them). */
export function evaluationQueue(s: Services): EvaluationQueue {
  let queue = queues.get(s);
  if (!queue) {
    queue = createEvaluationQueue(s.redis, s.prefix);
    queues.set(s, queue);
  }
  return queue;
}

export interface ResolvedModel {
  name: string;
  key: string;
  version?: string;
}

// Each model of the spec as an artifact key and a name stable across evaluations (the leaderboard's identity).
async function resolveModels(s: Services, team: Team, spec: EvaluationSpec, errors: FieldError[]) {
  const models: ResolvedModel[] = [];
  for (const [i, ref] of spec.models.entries()) {
    const at = `/models/${i}`;
    if ('modelId' in ref) {
      const row = await s.prisma.model.findFirst({ where: { id: ref.modelId, ...visibleTo(team) } });
      if (!row) errors.push({ path: `${at}/modelId`, message: `unknown model ${ref.modelId}` });
      // An admin model's directory can be refreshed in place: its digest tells the caches apart.
      else models.push({ name: `model:${row.name}`, key: row.key, version: row.sha256 });
      continue;
    }
    const run = await store.findRun(s.prisma, team.id, ref.runId);
    const finished = run
      ? store.finishedModels(run).filter((m) => (POLICY_STAGES as readonly string[]).includes(m.kind))
      : [];
    const chosen = ref.stage ? finished.find((m) => m.kind === ref.stage) : finished.at(-1);
    if (!run) errors.push({ path: `${at}/runId`, message: `unknown run ${ref.runId}` });
    else if (!chosen)
      errors.push({ path: at, message: `run ${ref.runId} has no finished ${ref.stage ?? 'policy'} stage` });
    else models.push({ name: `run:${run.id}:${chosen.kind}`, key: chosen.modelKey });
  }
  const names = models.map((m) => m.name);
  names.forEach((name, i) => {
    if (names.indexOf(name) !== i) errors.push({ path: `/models/${i}`, message: `${name} is listed twice` });
  });
  return models;
}

type JobJudge = EvaluationJobData['judge'];

async function resolveJudge(
  s: Services,
  team: Team,
  spec: EvaluationSpec,
  rows: readonly PromptRow[] | undefined,
  errors: FieldError[],
): Promise<JobJudge | undefined> {
  const judge = spec.judge;
  const tieMargin = judge.tieMargin ?? 0;
  switch (judge.type) {
    case 'task':
      return { type: 'task', name: judge.name, tieMargin };
    case 'grader':
      return graderJudge(judge.grader, tieMargin, rows, errors);
    case 'language_model':
      return languageModelJudge(s, team, judge, errors);
    case 'reward_model': {
      const run = await store.findRun(s.prisma, team.id, judge.runId);
      const key =
        (run && store.finishedModels(run).find((m) => m.kind === 'reward_model')?.modelKey) ??
        run?.fromRunRewardModelKey;
      if (!key) {
        errors.push({ path: '/judge/runId', message: `run ${judge.runId} has no finished reward model` });
        return undefined;
      }
      return { type: 'reward_model', key, tieMargin };
    }
  }
}

/** A grader judge checked as the worker will run it: the spec, and every prompt row having its fields. */
function graderJudge(
  grader: unknown,
  tieMargin: number,
  rows: readonly PromptRow[] | undefined,
  errors: FieldError[],
): JobJudge | undefined {
  // An evaluation has no run reward model to serve a reward_model grader (the reward_model judge is that).
  const specErrors = graderErrors(grader, { rewardModel: false, tokenizer: true });
  errors.push(...specErrors.map((e) => ({ ...e, path: `/judge/grader${e.path}` })));
  if (specErrors.length > 0) return undefined;
  const valid = grader as GraderSpec;
  const missing = rows === undefined ? [] : rowFieldErrors(valid, rows);
  for (const e of missing) {
    const [, row, field] = e.path.split('/');
    errors.push({
      path: '/datasetId',
      message: `prompt ${Number(row) + 1} has no field "${field}", which the grader at /judge/grader refers to`,
    });
  }
  return missing.length > 0 ? undefined : { type: 'grader', grader: valid, tieMargin };
}

/** A judge language model: a registered model of the team with a chat template and no scalar head. */
async function languageModelJudge(
  s: Services,
  team: Team,
  judge: Extract<EvaluationSpec['judge'], { type: 'language_model' }>,
  errors: FieldError[],
): Promise<JobJudge | undefined> {
  const template = judge.template ?? DEFAULT_JUDGE_TEMPLATE;
  const placeholders = ['{first}', '{second}'].filter((p) => !template.includes(p));
  if (placeholders.length > 0)
    errors.push({
      path: '/judge/template',
      message: `the judge template must show both answers: ${placeholders.join(' and ')} missing`,
    });
  const row = await s.prisma.model.findFirst({ where: { id: judge.modelId, ...visibleTo(team) } });
  if (!row) {
    errors.push({ path: '/judge/modelId', message: `unknown model ${judge.modelId}` });
    return undefined;
  }
  if (!row.hasChatTemplate)
    errors.push({
      path: '/judge/modelId',
      message: `model ${row.name} has no chat template (tokenizer_config.json chat_template): a judge model must be a chat model`,
    });
  else if ((row.config as { scalarHead?: boolean }).scalarHead)
    errors.push({
      path: '/judge/modelId',
      message: `model ${row.name} has a scalar head: a judge model must be a language model`,
    });
  if (errors.some((e) => e.path.startsWith('/judge/'))) return undefined;
  return {
    type: 'language_model',
    key: row.key,
    version: row.sha256,
    template,
    combine: judge.combine ?? DEFAULT_JUDGE_COMBINE,
    tieMargin: judge.tieMargin ?? 0,
  };
}

/** The rows an evaluation of `spec` reads: the first maxPrompts of the dataset (undefined if it is unreadable). */
async function promptRows(s: Services, key: string, maxPrompts: number): Promise<PromptRow[] | undefined> {
  const parsed = await validateJsonl('prompt', await s.artifacts.getText(key));
  return parsed.ok ? (parsed.rows as PromptRow[]).slice(0, maxPrompts) : undefined;
}

/** Checks, records and queues an evaluation; 400 naming every problem, nothing stored then. */
export async function createEvaluation(s: Services, team: Team, body: unknown): Promise<EvaluationRow> {
  const completed = Value.Default(EvaluationSpec, structuredClone(body ?? {}));
  const shape = schemaErrors(EvaluationSpec, completed);
  if (shape.length > 0) throw invalidRequest(shape);
  const spec = completed as EvaluationSpec;
  const errors: FieldError[] = [];
  const models = await resolveModels(s, team, spec, errors);
  const dataset = await s.prisma.dataset.findFirst({ where: { id: spec.datasetId, teamId: team.id } });
  if (!dataset) errors.push({ path: '/datasetId', message: `unknown dataset ${spec.datasetId}` });
  else if (dataset.kind !== 'prompt')
    errors.push({
      path: '/datasetId',
      message: `dataset ${spec.datasetId} is of kind "${dataset.kind}"; an evaluation needs "prompt"`,
    });
  else if (dataset.rows === 0)
    errors.push({ path: '/datasetId', message: `dataset ${spec.datasetId} has no prompts` });
  const promptsKey = dataset ? keys.dataset(team.id, dataset.sha256) : undefined;
  // Only a grader reads the rows' fields at submission (the worker reads the prompts again).
  const rows =
    spec.judge.type === 'grader' && dataset?.kind === 'prompt' && promptsKey
      ? await promptRows(s, promptsKey, spec.maxPrompts)
      : undefined;
  const judge = await resolveJudge(s, team, spec, rows, errors);
  if (errors.length > 0 || !dataset || !judge || !promptsKey) throw invalidRequest(errors);

  const id = uuidv7();
  const job: EvaluationJobData = {
    evaluationId: id,
    teamId: team.id,
    models,
    promptsKey,
    maxPrompts: spec.maxPrompts,
    seeds: spec.seeds,
    sampling: spec.sampling,
    judge,
    resultKey: `evaluations/${team.id}/${id}/result.json`,
    // Shared by the team's evaluations: the same model, prompts, seed and sampling are generated once.
    cacheKey: `evaluations/${team.id}/cache`,
    ...(spec.groundTruth ? { groundTruth: spec.groundTruth } : {}),
  };
  // Recorded first (with its job, to add it again if it is lost), then queued: a job that could not be added
  // is added when the evaluation is next read.
  const recorded = await s.prisma.evaluation.create({
    data: {
      id,
      teamId: team.id,
      name: spec.name ?? models.map((m) => m.name).join(' vs '),
      spec: { ...spec, job } as unknown as Prisma.InputJsonObject,
      models: models as unknown as Prisma.InputJsonArray,
      resultKey: job.resultKey,
    },
  });
  await addEvaluationJob(evaluationQueue(s), job).catch((error: unknown) =>
    s.logger.warn({ err: error, evaluationId: id }, 'evaluation job not added yet'),
  );
  return recorded;
}

/** Postgres cannot store U+0000 (an untrained byte-level model emits it): responses keep U+FFFD instead. */
function withoutNul(value: unknown): unknown {
  if (typeof value === 'string') return pgText(value);
  if (Array.isArray(value)) return value.map(withoutNul);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNul(v)]));
  return value;
}

/** The row brought up to date with its job: running, finished (result read), failed; a lost job re-added. */
async function refresh(s: Services, row: EvaluationRow): Promise<EvaluationRow> {
  if (row.status !== 'queued' && row.status !== 'running') return row;
  const queue = evaluationQueue(s);
  const job = await queue.getJob(row.id);
  if (!job) {
    await addEvaluationJob(queue, (row.spec as unknown as { job: EvaluationJobData }).job);
    return row;
  }
  const state = await job.getState();
  if (state === 'completed') {
    const result = withoutNul(JSON.parse(await s.artifacts.getText(row.resultKey))) as EvaluationResult;
    return s.prisma.evaluation.update({
      where: { id: row.id },
      data: {
        status: 'succeeded',
        result: result as unknown as Prisma.InputJsonObject,
        finishedAt: new Date(),
      },
    });
  }
  if (state === 'failed')
    return s.prisma.evaluation.update({
      where: { id: row.id },
      data: { status: 'failed', error: job.failedReason || 'the evaluation failed', finishedAt: new Date() },
    });
  if (state === 'active' && row.status === 'queued')
    return s.prisma.evaluation.update({ where: { id: row.id }, data: { status: 'running' } });
  return row;
}

export async function findEvaluation(s: Services, team: Team, id: string): Promise<EvaluationRow> {
  const row = await s.prisma.evaluation.findFirst({ where: { id, teamId: team.id } });
  if (!row) throw notFound('evaluation', id);
  return refresh(s, row);
}

export async function listEvaluations(s: Services, team: Team, page: { cursor?: string; limit: number }) {
  const rows = await s.prisma.evaluation.findMany({
    where: { teamId: team.id, ...(page.cursor ? { id: { lt: page.cursor } } : {}) },
    orderBy: { id: 'desc' },
    take: page.limit + 1,
  });
  const items = await Promise.all(rows.slice(0, page.limit).map((row) => refresh(s, row)));
  return { rows: items, nextCursor: rows.length > page.limit ? items[items.length - 1].id : null };
}

/** Ratings of every model the team compared (Bradley–Terry, Elo scale, bootstrap intervals), best first. */
export async function teamLeaderboard(s: Services, team: Team, judge?: string) {
  const pending = await s.prisma.evaluation.findMany({
    where: { teamId: team.id, status: { in: ['queued', 'running'] } },
  });
  for (const row of pending) await refresh(s, row);
  const rows = await s.prisma.evaluation.findMany({ where: { teamId: team.id, status: 'succeeded' } });
  const comparisons: Comparison[] = rows
    .filter((row) => judge === undefined || (row.spec as unknown as EvaluationSpec).judge.type === judge)
    .flatMap((row) => (row.result as unknown as EvaluationResult).comparisons);
  if (comparisons.length === 0) return { rows: [], comparisons: 0, evaluations: 0 };
  const board = leaderboard(comparisons, { seed: 1 });
  return { ...board, evaluations: rows.length };
}

/** An evaluation as the API shows it. */
export type EvaluationView = ReturnType<typeof evaluationView>;
/** The team's leaderboard as the API shows it. */
export type LeaderboardView = Awaited<ReturnType<typeof teamLeaderboard>>;

export function evaluationView(row: EvaluationRow) {
  const { job: _job, ...spec } = row.spec as unknown as EvaluationSpec & { job?: unknown };
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    spec,
    models: row.models as unknown as ResolvedModel[],
    result: (row.result as unknown as EvaluationResult | null) ?? null,
    error: row.error,
    createdAt: row.createdAt.toISOString(),
    finishedAt: row.finishedAt?.toISOString() ?? null,
  };
}
