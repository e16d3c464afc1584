import Type, { type Static, type TSchema } from 'typebox';
import { PpoConfig, RewardModelConfig, SftConfig, StageKind, withoutDefaults } from './configs.js';
import { DatasetKind } from './datasets.js';
import { Id, MAX_STEPS, RunSpec } from './run-spec.js';

// What the API returns. Times are ISO 8601 strings; absent facts are null, never missing.

const Time = Type.String({ format: 'date-time' });
const Nullable = <T extends TSchema>(type: T) => Type.Union([type, Type.Null()]);
const closed = { additionalProperties: false } as const;

export const RunStatus = Type.Enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'paused']);
export type RunStatus = Static<typeof RunStatus>;

/** pending: waiting for earlier stages or the team's quota; queued: in Redis; running: a worker holds it. */
export const StageStatus = Type.Enum(['pending', 'queued', 'running', 'succeeded', 'failed', 'cancelled']);
export type StageStatus = Static<typeof StageStatus>;

export const Stage = Type.Object(
  {
    id: Id,
    runId: Id,
    kind: StageKind,
    position: Type.Integer({ minimum: 0, description: 'index in the run spec' }),
    status: StageStatus,
    datasetId: Id,
    config: Type.Union([SftConfig, RewardModelConfig, PpoConfig].map(withoutDefaults), {
      description: 'the resolved config',
    }),
    step: Type.Integer({
      minimum: 0,
      maximum: MAX_STEPS,
      description: 'optimizer steps (PPO: iterations) done',
    }),
    totalSteps: Nullable(Type.Integer({ minimum: 0, maximum: MAX_STEPS })),
    attempts: Type.Integer({ minimum: 0 }),
    workerId: Nullable(Id),
    error: Nullable(Type.String()),
    createdAt: Time,
    startedAt: Nullable(Time),
    finishedAt: Nullable(Time),
  },
  closed,
);
export type Stage = Static<typeof Stage>;

export const Run = Type.Object(
  {
    id: Id,
    teamId: Id,
    name: Nullable(Type.String()),
    status: RunStatus,
    spec: RunSpec,
    stages: Type.Array(Stage),
    createdAt: Time,
    startedAt: Nullable(Time),
    finishedAt: Nullable(Time),
  },
  closed,
);
export type Run = Static<typeof Run>;

export const Dataset = Type.Object(
  {
    id: Id,
    teamId: Id,
    name: Type.String(),
    kind: DatasetKind,
    rowCount: Type.Integer({ minimum: 1 }),
    sizeBytes: Type.Integer({ minimum: 0 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    createdAt: Time,
  },
  closed,
);
export type Dataset = Static<typeof Dataset>;

/** One scalar of one stage at one step; `name` is one of the metric names in metrics.ts. */
export const MetricPoint = Type.Object(
  { stageId: Id, step: Type.Integer({ minimum: 0 }), name: Type.String(), value: Type.Number(), time: Time },
  closed,
);
export type MetricPoint = Static<typeof MetricPoint>;

/** One PPO rollout shown to users: what the policy wrote and how it was scored. */
export const Sample = Type.Object(
  {
    stageId: Id,
    step: Type.Integer({ minimum: 0 }),
    prompt: Type.String(),
    response: Type.String({
      description: 'NUL characters (U+0000, which Postgres text cannot hold) are stored as U+FFFD',
    }),
    score: Type.Number({ description: 'reward model score (after any missing-EOS penalty)' }),
    kl: Type.Number({ description: 'Σ_t log π − log π_ref over the response' }),
    eos: Type.Boolean({ description: 'false when the response hit maxNewTokens without EOS' }),
    parts: Type.Optional(
      Type.Record(Type.String(), Type.Number(), {
        description:
          "each named part of the reward (a grader, the reward model, a task): this response's score",
      }),
    ),
  },
  closed,
);
export type Sample = Static<typeof Sample>;
/** A sample as a trainer reports it (the stage and step travel beside it). */
export type SampleRow = Omit<Sample, 'stageId' | 'step'>;

/**
 * checkpoint: resumable training state; model: final weights (safetensors + config); onnx: an exported graph;
 * adapter: a LoRA stage's PEFT adapter (adapter_config.json + adapter_model.safetensors) beside its merged model.
 */
export const Artifact = Type.Object(
  {
    id: Id,
    runId: Id,
    stageId: Nullable(Id),
    kind: Type.Enum(['checkpoint', 'model', 'onnx', 'adapter']),
    key: Type.String({ description: 'artifact store key' }),
    step: Nullable(Type.Integer({ minimum: 0 })),
    sizeBytes: Type.Integer({ minimum: 0 }),
    sha256: Nullable(Type.String({ pattern: '^[0-9a-f]{64}$' })),
    createdAt: Time,
  },
  closed,
);
export type Artifact = Static<typeof Artifact>;

/** A worker process (one per GPU), as the API last heard from it. */
export const WorkerInfo = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 256 }),
    hostname: Type.String(),
    device: Type.String({ description: "execution provider and device, e.g. 'cuda:0' or 'cpu'" }),
    status: Type.Enum(['idle', 'busy', 'offline']),
    stageId: Nullable(Id),
    lastSeenAt: Time,
  },
  closed,
);
export type WorkerInfo = Static<typeof WorkerInfo>;

/** Every error response: `field` is a JSON Pointer into the request body when one field is at fault. */
export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      { code: Type.String(), message: Type.String(), field: Type.Optional(Type.String()) },
      closed,
    ),
  },
  closed,
);
export type ErrorBody = Static<typeof ErrorBody>;

/** A page of a list: pass `nextCursor` back as `?cursor=` for the next page; null on the last page. */
export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String()) }, closed);

/** A model directory a team uploaded (POST /v1/models), as validated. */
export const ModelFile = Type.Object(
  {
    name: Type.String(),
    bytes: Type.Integer({ minimum: 0 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  },
  closed,
);
export const RegisteredModelView = Type.Object(
  {
    id: Id,
    teamId: Type.Union([Id, Type.Null()], {
      description: "null: an admin model (the API's MODEL_DIRS), visible to every team, read-only",
    }),
    name: Type.String(),
    object: Type.Literal('model'),
    created: Type.Integer({ minimum: 0, description: 'Unix seconds (as OpenAI model objects have it)' }),
    owned_by: Type.String({
      description: "the team id, or 'system' for an admin model (as OpenAI model objects have it)",
    }),
    architecture: Type.String({ description: "transformers class, e.g. 'LlamaForCausalLM'" }),
    modelType: Type.String({ description: "config.json's model_type" }),
    parameterCount: Type.Integer({ minimum: 0 }),
    dtype: Type.String({ description: 'dtype of the stored weights (F32, F16, BF16)' }),
    contextLength: Type.Integer({ minimum: 1 }),
    vocabSize: Type.Integer({ minimum: 1 }),
    hasTokenizer: Type.Boolean(),
    hasChatTemplate: Type.Boolean(),
    files: Type.Array(ModelFile),
    sizeBytes: Type.Integer({ minimum: 0 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of the uploaded archive' }),
    createdAt: Time,
  },
  closed,
);
export type RegisteredModelView = Static<typeof RegisteredModelView>;
