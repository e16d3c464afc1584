// Request and response schemas of the API, built from the resources of @rlhf/contracts (one source
// of truth); this file adds only what the HTTP layer needs (params, queries, detail views).
import {
  Artifact,
  Dataset,
  DatasetKind,
  ErrorBody,
  Id,
  MetricPoint,
  Page,
  POLICY_STAGES,
  Run,
  RunGate,
  RunRecord,
  RunStatus,
  Sample,
  Stage,
  WorkerInfo,
} from '@rlhf/contracts';
import Type, { type Static, type TSchema } from 'typebox';

const closed = { additionalProperties: false } as const;
const Nullable = <T extends TSchema>(type: T) => Type.Union([type, Type.Null()]);
const Time = Type.String({ format: 'date-time' });

export const RunParams = Type.Object({ runId: Id }, closed);
export const DatasetParams = Type.Object({ datasetId: Id }, closed);
export const ArtifactParams = Type.Object({ runId: Id, artifactId: Id }, closed);
export const TeamParams = Type.Object({ teamId: Id }, closed);
export const KeyParams = Type.Object({ keyId: Id }, closed);

const limit = (maximum: number, fallback: number) =>
  Type.Optional(Type.Integer({ minimum: 1, maximum, description: `page size (default ${fallback})` }));
// Query values reach Postgres: no NUL (text cannot hold it), steps within its 32-bit integers.
const NO_CONTROL = '^[^\\u0000-\\u001f]+$';
export const INT32_MAX = 2 ** 31 - 1;
const cursor = Type.Optional(
  Type.String({
    minLength: 1,
    maxLength: 512,
    pattern: NO_CONTROL,
    description: 'nextCursor of the previous page',
  }),
);

/** Error responses every route may give. */
export const Errors = { '4xx': ErrorBody, '5xx': ErrorBody } as const;

// Datasets ---------------------------------------------------------------------------------------

export const UploadQuery = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: '^[^\\u0000-\\u001f]+$',
      description: 'a name for the dataset (no control characters)',
    }),
    kind: DatasetKind,
  },
  closed,
);
export const DatasetListQuery = Type.Object(
  { kind: Type.Optional(DatasetKind), limit: limit(200, 50), cursor },
  closed,
);
export const DatasetPage = Page(Dataset);

// Runs -------------------------------------------------------------------------------------------

export const StageView = Type.Object(
  {
    ...Stage.properties,
    progress: Type.Number({ minimum: 0, maximum: 1, description: 'step / totalSteps (1 when finished)' }),
    latestMetrics: Type.Record(Type.String(), Type.Number(), {
      description: 'the last value of every metric the stage reported',
    }),
    modelKey: Nullable(Type.String({ description: 'artifact key of the finished model' })),
  },
  closed,
);
export type StageView = Static<typeof StageView>;

export const RunView = Type.Object(
  {
    ...Run.properties,
    stages: Type.Array(StageView),
    progress: Type.Number({ minimum: 0, maximum: 1, description: 'mean progress of the stages' }),
    error: Nullable(Type.String()),
    hyperparameters: RunRecord,
    admittedAt: Nullable(Time),
    priority: Nullable(Type.Integer({ description: 'BullMQ priority of its jobs (lower = sooner)' })),
    /** The eval stage's release gate; null = none declared. */
    gate: Nullable(RunGate),
  },
  closed,
);
export type RunView = Static<typeof RunView>;

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7e]+$',
      description: 'retries with the same key return the run created first',
    }),
  ),
});

export const RunListQuery = Type.Object(
  { status: Type.Optional(RunStatus), limit: limit(100, 20), cursor },
  closed,
);
export const RunPage = Page(RunView);

export const MetricsQuery = Type.Object(
  {
    stageId: Type.Optional(Id),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: NO_CONTROL })),
    afterStep: Type.Optional(
      Type.Integer({ minimum: -1, maximum: INT32_MAX, description: 'only steps greater than this' }),
    ),
    limit: limit(10_000, 1000),
    cursor,
  },
  closed,
);
export const MetricPage = Page(MetricPoint);

export const SamplesQuery = Type.Object(
  { stageId: Type.Optional(Id), limit: limit(500, 50), cursor },
  closed,
);
export const SamplePage = Page(Sample);

// Events (SSE) -----------------------------------------------------------------------------------

const EVENT_ID = '^[0-9]{1,18}$';
export const EventsQuery = Type.Object(
  {
    token: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 2048,
        pattern: '^[A-Za-z0-9_.-]+$',
        description:
          'a stream token from POST /v1/runs/:runId/stream-token, instead of the Authorization header',
      }),
    ),
    lastEventId: Type.Optional(
      Type.String({
        pattern: EVENT_ID,
        description: 'resume after this event id (as the Last-Event-ID header, for a new EventSource)',
      }),
    ),
  },
  closed,
);
export const EventsHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({
      pattern: EVENT_ID,
      description: 'resume after this event id (EventSource sends it on reconnect)',
    }),
  ),
});
export const StreamTokenView = Type.Object(
  {
    token: Type.String({ description: "opens this run's event stream as `?token=`; expires at expiresAt" }),
    expiresAt: Time,
    url: Type.String({ description: 'the stream URL with the token (path and query)' }),
  },
  closed,
);

/** A file streamed as the response body. */
export const FileBody = Type.Unsafe<NodeJS.ReadableStream>({ type: 'string', format: 'binary' });

export const ArtifactList = Type.Object({ items: Type.Array(Artifact) }, closed);
export const ArtifactListQuery = Type.Object(
  { kind: Type.Optional(Artifact.properties.kind), stageId: Type.Optional(Id) },
  closed,
);

/** The query of a route that takes none: any parameter is a 400 naming it (routes without a querystring schema get it). */
export const NoQuery = Type.Object({}, closed);

export const GenerateBody = Type.Object(
  {
    prompts: Type.Array(Type.String({ minLength: 1, maxLength: 16_384 }), { minItems: 1, maxItems: 32 }),
    stage: Type.Optional(Type.Enum(POLICY_STAGES, { description: 'which policy (default: the last one)' })),
    maxNewTokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
    temperature: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 10 })),
    topK: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    topP: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 })),
    bestOf: Type.Optional(
      Type.Integer({
        minimum: 2,
        maximum: 16,
        description: "sample this many per prompt and return the one the run's reward model scores highest",
      }),
    ),
  },
  closed,
);
export type GenerateBody = Static<typeof GenerateBody>;
export const GenerateResponse = Type.Object(
  {
    stageId: Id,
    completions: Type.Array(
      Type.Object(
        {
          prompt: Type.String(),
          response: Type.String(),
          eos: Type.Boolean(),
          score: Type.Optional(Type.Number({ description: "the reward model's score (with bestOf)" })),
        },
        closed,
      ),
    ),
  },
  closed,
);

// Workers ----------------------------------------------------------------------------------------

export const WorkerList = Type.Object({ items: Type.Array(WorkerInfo) }, closed);

// Admin ------------------------------------------------------------------------------------------

const limits = {
  maxActiveStages: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 10_000, description: 'runs admitted to the queue at once' }),
  ),
  maxUploadBytes: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 2 ** 50, description: 'largest upload' }),
  ),
  requestsPerMinute: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
};
export const TeamBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }), ...limits },
  closed,
);
export const TeamLimitsBody = Type.Object(limits, closed);
export const TeamView = Type.Object(
  {
    id: Id,
    name: Type.String(),
    maxActiveStages: Type.Integer(),
    maxUploadBytes: Type.Integer(),
    requestsPerMinute: Type.Integer(),
    createdAt: Time,
  },
  closed,
);
export type TeamView = Static<typeof TeamView>;
export const TeamList = Type.Object({ items: Type.Array(TeamView) }, closed);
export const KeyBody = Type.Object(
  { name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) },
  closed,
);
export const DeadEventsQuery = Type.Object({ limit: limit(1000, 100) }, closed);
export const DeadEventsReplayBody = Type.Object(
  {
    ids: Type.Optional(
      Type.Array(
        Type.String({ pattern: '^[0-9]{1,20}-[0-9]{1,20}$', description: "a dead letter's stream id" }),
        {
          minItems: 1,
          maxItems: 1000,
          description: 'the dead letters to replay; absent: all of them (send {})',
        },
      ),
    ),
  },
  closed,
);
export const DeadEventsReplayed = Type.Object(
  {
    replayed: Type.Array(
      Type.Object(
        {
          id: Type.String({ description: "the dead letter's stream id" }),
          streamId: Type.String({ description: 'stream id of the event sent again' }),
        },
        closed,
      ),
    ),
    missing: Type.Array(Type.String(), {
      description: 'ids asked for that are not dead letters (any more: replayed already, or dropped)',
    }),
  },
  closed,
);
export const DeadEventList = Type.Object(
  {
    items: Type.Array(
      Type.Object(
        {
          id: Type.String({ description: 'Redis stream id of the event' }),
          error: Type.String({ description: 'why it could not be stored' }),
          at: Time,
          event: Type.Object(
            { type: Type.String(), runId: Type.String(), stageId: Type.String() },
            { description: 'the worker event as it was sent' },
          ),
        },
        closed,
      ),
    ),
    total: Type.Integer({ minimum: 0, description: 'dead letters kept (newest first, capped)' }),
  },
  closed,
);
export const CreatedKeyView = Type.Object(
  {
    id: Id,
    key: Type.String({ description: 'the secret: shown once, store it now' }),
    prefix: Type.String(),
    name: Type.String(),
    teamId: Nullable(Id),
    isAdmin: Type.Boolean(),
    createdAt: Time,
  },
  closed,
);
