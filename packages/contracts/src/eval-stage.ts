// The `eval` stage a run pipeline can end with: the run's last policy answers a prompt dataset against another
// model (an earlier stage of the run, another run's stage, a registered model) with the same seeded sampling, a
// judge compares every answer pair, and an optional gate says whether the policy may ship. A leaf module:
// configs.ts and run-spec.ts build on it.
import Type, { type Static } from 'typebox';

/** The stage kinds whose output is a policy (a language model), in pipeline order. */
export const POLICY_STAGES = ['sft', 'dpo', 'pro', 'raft', 'grpo', 'ppo'] as const;
export type PolicyStage = (typeof POLICY_STAGES)[number];

const closed = { additionalProperties: false } as const;
// run-spec.ts' Id (that module imports this one).
const RefId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
const Key = Type.String({ minLength: 1, maxLength: 512, description: 'artifact store key (set by the API)' });
const PolicyStageEnum = Type.Enum(POLICY_STAGES);

const Name = Type.String({ minLength: 1, maxLength: 200 });

/** What the policy is compared with. */
export const EvalAgainst = Type.Union([
  Type.Object({ stage: PolicyStageEnum }, { ...closed, description: 'an earlier policy stage of this run' }),
  Type.Object(
    { runId: RefId, stage: Type.Optional(PolicyStageEnum) },
    {
      ...closed,
      description: "a finished policy stage of another run of the team (default: that run's last)",
    },
  ),
  Type.Object({ modelId: RefId }, { ...closed, description: 'a registered model of the team' }),
]);
export type EvalAgainst = Static<typeof EvalAgainst>;

const tieMargin = Type.Optional(
  Type.Number({ minimum: 0, maximum: 1000, description: 'a smaller score gap is a tie (default 0)' }),
);
/** Who compares: a task's ground truth, or a reward model (this run's own; another run's; a registered one). */
export const EvalStageJudge = Type.Union([
  Type.Object(
    {
      type: Type.Literal('task'),
      name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]*$', maxLength: 64 }),
      tieMargin,
    },
    { ...closed, description: 'a programmatic ground truth the workers know' },
  ),
  Type.Object(
    {
      type: Type.Literal('reward_model'),
      runId: Type.Optional(RefId),
      modelId: Type.Optional(RefId),
      tieMargin,
    },
    {
      ...closed,
      description:
        "score difference of a reward model: this run's reward_model stage (or model.fromRun's), runId's, or a registered scalar-head model",
    },
  ),
  Type.Object(
    {
      type: Type.Literal('grader'),
      // graderSpecErrors (graders.ts) checks it, as for a GRPO reward; reward_model graders are not served here.
      grader: Type.Unsafe<{ type: string; [field: string]: unknown }>(
        Type.Object({ type: Type.String({ maxLength: 32 }) }, { additionalProperties: true }),
      ),
      tieMargin,
    },
    {
      ...closed,
      description: 'score difference of a declared grader over each prompt row (POST /v1/graders/validate)',
    },
  ),
]);
export type EvalStageJudge = Static<typeof EvalStageJudge>;

/** What the API resolved at submission: models that are not stages of this run, as files and leaderboard names. */
export const EvalResolved = Type.Object(
  {
    policy: Type.Optional(Name),
    against: Type.Optional(Type.Object({ name: Name, key: Key }, closed)),
    judgeKey: Type.Optional(Key),
  },
  { ...closed, description: 'set by the API' },
);
export type EvalResolved = Static<typeof EvalResolved>;

/** Pass when the win rate's interval lower bound (rule 'lower') or the win rate itself ('point') reaches minWinRate. */
export const EvalGate = Type.Object(
  {
    minWinRate: Type.Number({ minimum: 0, maximum: 1 }),
    rule: Type.Optional(Type.Enum(['lower', 'point'], { description: "default 'lower'" })),
  },
  closed,
);
export type EvalGate = Static<typeof EvalGate>;

/** Per-checkpoint evaluation of the policy stage the eval stage follows (its against, judge and sampling). */
export const CheckpointEvalSettings = Type.Object(
  {
    every: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      description:
        "compare at each of the stage's checkpoints that passes a multiple of `every` steps (checkpoints come every checkpointEvery steps and at the end)",
    }),
    maxPrompts: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 2000,
        description: 'first rows of the prompt dataset (default 32)',
      }),
    ),
  },
  closed,
);
export type CheckpointEvalSettings = Static<typeof CheckpointEvalSettings>;

/** A run's top-level gate: the eval stage's gate, with the `against` it is measured on (the eval stage's) if given. */
export const RunGateSpec = Type.Object(
  {
    against: Type.Optional(EvalAgainst),
    minWinRate: Type.Number({ minimum: 0, maximum: 1 }),
    rule: Type.Optional(Type.Enum(['lower', 'point'], { description: "default 'lower'" })),
  },
  closed,
);
export type RunGateSpec = Static<typeof RunGateSpec>;

const seedList = (extra: object) =>
  Type.Array(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }), { minItems: 1, maxItems: 8, ...extra });

// Every field but `against` and `judge`; `withDefaults` false for what a user sends (withoutDefaults' rule).
const optionalFields = (withDefaults: boolean) => {
  const d = (value: unknown, description?: string) => ({
    ...(withDefaults ? { default: value } : {}),
    description: `${description ? `${description} ` : ''}(default: ${JSON.stringify(value)})`,
  });
  return {
    maxPrompts: Type.Integer({ minimum: 1, maximum: 2000, ...d(200, 'first rows of the prompt dataset') }),
    seeds: seedList(d([1], 'one generation per prompt and seed, the same for both models')),
    againstSeeds: Type.Union(
      [
        seedList({ description: 'seeds of the `against` model instead (e.g. SFT against itself)' }),
        Type.Null(),
      ],
      d(null),
    ),
    maxNewTokens: Type.Integer({ minimum: 1, maximum: 1024, ...d(32) }),
    temperature: Type.Number({ minimum: 0, maximum: 10, ...d(1, '0 = greedy') }),
    topK: Type.Integer({ minimum: 0, maximum: 100_000, ...d(0, '0 = off') }),
    topP: Type.Number({ exclusiveMinimum: 0, maximum: 1, ...d(1, '1 = off') }),
    gate: Type.Union([EvalGate, Type.Null()], d(null, 'a release gate; null = none')),
    checkpoints: Type.Union(
      [CheckpointEvalSettings, Type.Null()],
      d(
        null,
        'also compare the checkpoints of the policy stage before this one: eval/win_rate on that stage',
      ),
    ),
  };
};

export const EvalConfig = Type.Object(
  {
    against: EvalAgainst,
    judge: EvalStageJudge,
    ...optionalFields(true),
    resolved: Type.Optional(EvalResolved),
  },
  { ...closed, description: "the run's last policy against another model on a prompt dataset, judged" },
);
export type EvalConfig = Static<typeof EvalConfig>;
export const EvalConfigInput = Type.Object(
  {
    against: EvalAgainst,
    judge: EvalStageJudge,
    ...Type.Partial(Type.Object(optionalFields(false))).properties,
  },
  closed,
);
export type EvalConfigInput = Static<typeof EvalConfigInput>;

/** A run's gate as GET /v1/runs/:id shows it: null values until its eval stage has measured the win rate. */
export const RunGate = Type.Object(
  {
    stageId: RefId,
    passed: Type.Union([Type.Boolean(), Type.Null()]),
    winRate: Type.Union([Type.Number(), Type.Null()]),
    interval: Type.Union([
      Type.Object({ lower: Type.Number(), upper: Type.Number(), level: Type.Number() }, closed),
      Type.Null(),
    ]),
    minWinRate: Type.Number(),
    rule: Type.Enum(['lower', 'point']),
  },
  closed,
);
export type RunGate = Static<typeof RunGate>;
