// Fine-tuning jobs of the OpenAI-compatible API: each job is one of our runs (one stage: sft for `supervised`,
// dpo for `dpo`, grpo for `reinforcement`), so it shows in /v1/runs, the dashboard and bull-board. What the job
// was asked for in OpenAI's terms is kept on the run (Run.fineTuning) and shown back in OpenAI's shapes.
import { Readable } from 'node:stream';
import { isModelPreset, resolveStageConfig } from '@rlhf/contracts';
import { Prisma, type Team } from '@rlhf/db';
import { uploadDataset } from '../datasets.js';
import { ApiError } from '../errors.js';
import { visibleTo } from '../models.js';
import type { RunWithStages } from '../run-store.js';
import { pauseRun, resumeRun } from '../pause.js';
import { cancelRun, createRun } from '../runs.js';
import type { Services } from '../services.js';
import { findFile, secondsOf } from './files.js';
import { convertFile, FORMAT_KINDS, type FileFormat } from './formats.js';
import { GRADER_PARAM, openaiGrader } from './graders.js';

export type MethodType = FileFormat;
const STAGE_OF = { supervised: 'sft', dpo: 'dpo', reinforcement: 'grpo' } as const;
const JOB_PREFIX = 'ftjob-';

/** OpenAI's hyperparameters: each 'auto' (our default) or a value. */
export interface Hyperparameters {
  n_epochs?: number | 'auto';
  batch_size?: number | 'auto';
  learning_rate_multiplier?: number | 'auto';
  beta?: number | 'auto';
}

/** What the job was asked for, kept on its run. */
export interface FineTuningRecord {
  model: string;
  training_file: string;
  validation_file: string | null;
  suffix: string | null;
  seed: number;
  metadata: Record<string, string> | null;
  method: MethodType;
  hyperparameters: Hyperparameters;
  /** reinforcement: the grader as sent (OpenAI's shape); the run's grpo stage has it in ours. */
  grader?: Record<string, unknown>;
}

const bad = (message: string, param: string) => new ApiError(400, 'invalid_request', message, param);
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The job's request checked field by field; 400 naming the `param`. */
function parseRequest(body: unknown): FineTuningRecord {
  if (!isObject(body)) throw bad('the body must be a JSON object', '');
  const known = [
    'model',
    'training_file',
    'validation_file',
    'suffix',
    'seed',
    'metadata',
    'method',
    'hyperparameters',
    'integrations',
  ];
  for (const key of Object.keys(body)) if (!known.includes(key)) throw bad(`unknown parameter ${key}`, key);
  const text = (key: string, required: boolean) => {
    const value = body[key];
    if (value === undefined || value === null) {
      if (required) throw bad(`missing required parameter ${key}`, key);
      return null;
    }
    if (typeof value !== 'string' || value.length === 0 || value.length > 256)
      throw bad(`${key} must be a non-empty string`, key);
    return value;
  };
  const suffix = text('suffix', false);
  if (suffix !== null && !/^[A-Za-z0-9_-]{1,64}$/.test(suffix))
    throw bad('suffix must be up to 64 letters, digits, _ or -', 'suffix');
  const seed = body.seed ?? 42;
  if (!Number.isInteger(seed) || (seed as number) < 0 || (seed as number) > 2 ** 31 - 1)
    throw bad('seed must be an integer in [0, 2147483647]', 'seed');
  const metadata = body.metadata ?? null;
  if (
    metadata !== null &&
    (!isObject(metadata) ||
      Object.keys(metadata).length > 16 ||
      Object.values(metadata).some((v) => typeof v !== 'string' || v.length > 512))
  )
    throw bad('metadata must be at most 16 string values of up to 512 characters', 'metadata');

  // `method: { type, [type]: { hyperparameters } }`, or the legacy top-level `hyperparameters` (supervised).
  const method = body.method ?? {
    type: 'supervised',
    supervised: { hyperparameters: body.hyperparameters ?? {} },
  };
  if (!isObject(method) || !['supervised', 'dpo', 'reinforcement'].includes(method.type as string))
    throw bad('method.type must be one of supervised, dpo, reinforcement', 'method.type');
  const type = method.type as MethodType;
  const settings = method[type] ?? {};
  if (!isObject(settings)) throw bad(`method.${type} must be an object`, `method.${type}`);
  const hyperparameters = (settings.hyperparameters ?? {}) as Record<string, unknown>;
  if (!isObject(hyperparameters))
    throw bad('hyperparameters must be an object', `method.${type}.hyperparameters`);
  const allowed = ['n_epochs', 'batch_size', 'learning_rate_multiplier', ...(type === 'dpo' ? ['beta'] : [])];
  for (const [key, value] of Object.entries(hyperparameters)) {
    const param = `method.${type}.hyperparameters.${key}`;
    if (!allowed.includes(key)) throw bad(`unknown hyperparameter ${key}`, param);
    if (value === 'auto') continue;
    const integer = key === 'n_epochs' || key === 'batch_size';
    if (typeof value !== 'number' || !(value > 0) || (integer && !Number.isInteger(value)))
      throw bad(`${key} must be 'auto' or a positive ${integer ? 'integer' : 'number'}`, param);
  }
  const grader = type === 'reinforcement' ? settings.grader : undefined;
  if (type === 'reinforcement' && !isObject(grader))
    throw bad('a reinforcement job needs a grader', 'method.reinforcement.grader');
  return {
    ...(isObject(grader) ? { grader } : {}),
    model: text('model', true) as string,
    training_file: text('training_file', true) as string,
    validation_file: text('validation_file', false),
    suffix,
    seed: seed as number,
    metadata: metadata as Record<string, string> | null,
    method: type,
    hyperparameters: hyperparameters as Hyperparameters,
  };
}

/** `model`: a preset, a registered model of the team (id or name), or a fine-tuned model `ft:…:<job run id>`. */
async function modelSource(s: Services, team: Team, model: string): Promise<object> {
  if (model.startsWith('ft:')) {
    const runId = model.split(':').at(-1) as string;
    const run = await s.prisma.run.findFirst({ where: { id: runId, teamId: team.id, status: 'succeeded' } });
    const from = run?.fineTuning as unknown as FineTuningRecord | null;
    if (!run || !from)
      throw new ApiError(404, 'model_not_found', `The model ${model} does not exist`, 'model');
    return { fromRun: run.id, stage: STAGE_OF[from.method] };
  }
  if (isModelPreset(model)) return { preset: model };
  const registered = await s.prisma.model.findFirst({
    // The team's own or an admin model (MODEL_DIRS), by id or name.
    where: { AND: [visibleTo(team), { OR: [{ id: model }, { name: model }] }] },
  });
  if (!registered) throw new ApiError(404, 'model_not_found', `The model ${model} does not exist`, 'model');
  return { modelId: registered.id };
}

/** A file of the job converted to our rows (`param` names it in errors). */
async function rowsOf(s: Services, team: Team, fileId: string, method: MethodType, param: string) {
  const file = await findFile(s, team, fileId, param);
  if (file.format !== method)
    throw bad(`file ${fileId} holds ${file.format} rows; a ${method} job needs ${method} rows`, param);
  return { file, rows: convertFile(await s.artifacts.getText(file.key), method).rows };
}

/**
 * The training rows, then the validation rows (the stage holds the last `validation` rows out: its
 * validationRows), stored as one dataset; our validators check every row again.
 */
async function datasetOf(s: Services, team: Team, job: FineTuningRecord) {
  const training = await rowsOf(s, team, job.training_file, job.method, 'training_file');
  const validation = job.validation_file
    ? await rowsOf(s, team, job.validation_file, job.method, 'validation_file')
    : null;
  // Reinforcement prompts have no held-out loss to compute: their validation file is checked, not trained on.
  const held = job.method === 'reinforcement' ? [] : (validation?.rows ?? []);
  const rows = [...training.rows, ...held];
  const jsonl = `${rows.map((row) => JSON.stringify(row)).join('\n')}\n`;
  const { dataset } = await uploadDataset(s, team, {
    name:
      validation && held.length > 0
        ? `${training.file.filename} + ${validation.file.filename}`
        : training.file.filename,
    kind: FORMAT_KINDS[job.method],
    body: Readable.from([Buffer.from(jsonl)]),
  });
  return { dataset, trainingRows: training.rows.length, validationRows: held.length };
}

/** The stage config from OpenAI's hyperparameters ('auto' = our default; lr = default × multiplier). */
function stageConfig(job: FineTuningRecord, rows: number, validationRows: number): Record<string, unknown> {
  const kind = STAGE_OF[job.method];
  const defaults = resolveStageConfig(kind) as { lr: number; batchSize?: number };
  const h = job.hyperparameters;
  const value = <T>(v: T | 'auto' | undefined): T | undefined => (v === 'auto' ? undefined : v);
  const config: Record<string, unknown> = { seed: job.seed };
  const multiplier = value(h.learning_rate_multiplier);
  if (multiplier !== undefined) config.lr = defaults.lr * multiplier;
  if (kind === 'grpo') {
    // batch_size prompts an iteration, n_epochs passes over the prompts; a checkpoint per pass.
    const prompts = value(h.batch_size) ?? Math.min(16, rows);
    const perEpoch = Math.ceil(rows / prompts);
    return {
      ...config,
      promptsPerIteration: prompts,
      iterations: (value(h.n_epochs) ?? 1) * perEpoch,
      checkpointEvery: perEpoch,
      reward: openaiGrader(job.grader as Record<string, unknown>),
    };
  }
  const batchSize = value(h.batch_size) ?? Math.min(defaults.batchSize ?? 16, rows);
  config.batchSize = batchSize;
  const epochs = value(h.n_epochs);
  if (epochs !== undefined) config.epochs = epochs;
  // One checkpoint per epoch, as OpenAI's jobs list them.
  config.checkpointEvery = Math.max(1, Math.ceil(rows / batchSize));
  config.stepsPerCall = Math.min(8, config.checkpointEvery as number); // fused calls end on epoch boundaries
  const beta = value(h.beta);
  if (beta !== undefined) config.beta = beta;
  // A validation file: its rows are the held-out set, evaluated once an epoch (with each checkpoint).
  if (validationRows > 0)
    Object.assign(config, { validationRows, evalEvery: config.checkpointEvery as number });
  return config;
}

/** Creates the job's run; errors in OpenAI's terms (`param` names the request field). */
export async function createJob(s: Services, team: Team, body: unknown): Promise<RunWithStages> {
  const job = parseRequest(body);
  const model = await modelSource(s, team, job.model);
  const { dataset, trainingRows, validationRows } = await datasetOf(s, team, job);
  const spec = {
    name: job.suffix ?? `fine-tune ${job.model}`,
    model,
    stages: [
      {
        kind: STAGE_OF[job.method],
        datasetId: dataset.id,
        config: stageConfig(job, trainingRows, validationRows),
      },
    ],
  };
  const { run } = await createRun(s, team, spec, undefined, {
    fineTuning: job as unknown as Prisma.InputJsonObject,
  }).catch((error: unknown) => {
    // Our spec's paths mean nothing to an OpenAI client: name the part of its request instead.
    if (error instanceof ApiError && error.field === '/stages/0/datasetId')
      throw bad(error.message, 'training_file');
    if (error instanceof ApiError && error.field?.startsWith('/stages/0/config/reward'))
      throw bad(error.message, GRADER_PARAM);
    if (error instanceof ApiError && error.field?.startsWith('/stages/0/config'))
      throw bad(error.message, `method.${job.method}.hyperparameters`);
    throw error;
  });
  return findJobRun(s, team, `${JOB_PREFIX}${run.id}`);
}

/** The run of one of the team's jobs; 404 otherwise (another team's job included). */
export async function findJobRun(s: Services, team: Team, jobId: string): Promise<RunWithStages> {
  const runId = jobId.startsWith(JOB_PREFIX) ? jobId.slice(JOB_PREFIX.length) : '';
  const run = /^[A-Za-z0-9_-]{1,64}$/.test(runId)
    ? await s.prisma.run.findFirst({
        where: { id: runId, teamId: team.id, fineTuning: { not: Prisma.DbNull } },
        include: { stages: { orderBy: { index: 'asc' } } },
      })
    : null;
  if (!run?.fineTuning)
    throw new ApiError(404, 'not_found', `No such fine-tuning job: ${jobId}`, 'fine_tuning_job_id');
  return run;
}

export async function listJobRuns(s: Services, team: Team, page: { after?: string; limit: number }) {
  const after = page.after?.startsWith(JOB_PREFIX) ? page.after.slice(JOB_PREFIX.length) : undefined;
  const rows = await s.prisma.run.findMany({
    where: {
      teamId: team.id,
      fineTuning: { not: Prisma.DbNull },
      ...(after ? { id: { lt: after } } : {}),
    },
    include: { stages: { orderBy: { index: 'asc' } } },
    orderBy: { id: 'desc' },
    take: page.limit + 1,
  });
  return { rows: rows.slice(0, page.limit), hasMore: rows.length > page.limit };
}

export async function cancelJob(s: Services, team: Team, jobId: string): Promise<RunWithStages> {
  const run = await findJobRun(s, team, jobId);
  await cancelRun(s, team, run.id);
  return findJobRun(s, team, jobId);
}

/** pause / resume: the run's (pause.ts); a job in the wrong state is a 409 in OpenAI's error shape. */
export async function pauseJob(s: Services, team: Team, jobId: string, action: 'pause' | 'resume') {
  const run = await findJobRun(s, team, jobId);
  await (action === 'pause' ? pauseRun : resumeRun)(s, team, run.id);
  return findJobRun(s, team, jobId);
}

/** The fine-tuned model's name: ft:<base>:<team>:<suffix>:<run id> (OpenAI's ft:<base>:<org>:<suffix>:<id>). */
export const fineTunedModel = (team: Team, run: RunWithStages) => {
  const job = run.fineTuning as unknown as FineTuningRecord;
  return `ft:${job.model}:${team.name}:${job.suffix ?? ''}:${run.id}`;
};

const STATUS = {
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  paused: 'paused',
} as const;

/** OpenAI's fine_tuning.job object of a run. */
export function jobObject(team: Team, run: RunWithStages) {
  const job = run.fineTuning as unknown as FineTuningRecord;
  const stage = run.stages[0];
  const config = (stage?.config ?? {}) as { epochs?: number; batchSize?: number; lr?: number; beta?: number };
  const hyperparameters = {
    n_epochs: job.hyperparameters.n_epochs ?? config.epochs ?? 'auto',
    batch_size: job.hyperparameters.batch_size ?? config.batchSize ?? 'auto',
    learning_rate_multiplier: job.hyperparameters.learning_rate_multiplier ?? 'auto',
    ...(job.method === 'dpo' ? { beta: job.hyperparameters.beta ?? config.beta ?? 'auto' } : {}),
  };
  return {
    id: `${JOB_PREFIX}${run.id}`,
    object: 'fine_tuning.job' as const,
    created_at: secondsOf(run.createdAt),
    finished_at: run.finishedAt ? secondsOf(run.finishedAt) : null,
    model: job.model,
    fine_tuned_model: run.status === 'succeeded' ? fineTunedModel(team, run) : null,
    organization_id: team.id,
    status: STATUS[run.status],
    training_file: job.training_file,
    validation_file: job.validation_file,
    hyperparameters,
    method: { type: job.method, [job.method]: { hyperparameters } },
    result_files: [],
    trained_tokens: null,
    error:
      run.status === 'failed'
        ? { code: 'training_failed', message: run.error ?? 'the run failed', param: null }
        : null,
    seed: job.seed,
    suffix: job.suffix,
    metadata: job.metadata,
    estimated_finish: null,
    integrations: [],
    user_provided_suffix: job.suffix,
  };
}
