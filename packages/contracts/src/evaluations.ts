// Evaluations: two or more models answer the same prompts with the same seeded sampling, and a judge compares
// every pair (win / tie / loss with bootstrap intervals); the team's leaderboard rates all its models from every
// comparison so far (Bradley–Terry on the Elo scale). What POST /v1/evaluations accepts and what a worker gets.
import Type, { type Static } from 'typebox';
import { Id, POLICY_STAGES } from './run-spec.js';

const closed = { additionalProperties: false } as const;
const TASK_NAME = '^[a-z0-9][a-z0-9_-]*$';

/** A model to evaluate: a run's finished policy stage (default: its last one) or a registered model. */
export const EvalModelRef = Type.Union([
  Type.Object(
    {
      runId: Id,
      stage: Type.Optional(
        Type.Enum(POLICY_STAGES, { description: 'which policy of the run (default: its last)' }),
      ),
    },
    closed,
  ),
  Type.Object({ modelId: Id }, closed),
]);
export type EvalModelRef = Static<typeof EvalModelRef>;

/** Who compares: a reward model of a run of the team (score difference), or a task the workers know. */
export const EvalJudgeSpec = Type.Union([
  Type.Object(
    {
      type: Type.Literal('reward_model'),
      runId: Id,
      tieMargin: Type.Optional(
        Type.Number({ minimum: 0, maximum: 1000, description: 'a smaller score gap is a tie' }),
      ),
    },
    closed,
  ),
  Type.Object(
    {
      type: Type.Literal('task'),
      name: Type.String({ pattern: TASK_NAME, maxLength: 64 }),
      tieMargin: Type.Optional(Type.Number({ minimum: 0, maximum: 1000 })),
    },
    closed,
  ),
]);
export type EvalJudgeSpec = Static<typeof EvalJudgeSpec>;

export const EvalSamplingSpec = Type.Object(
  {
    maxNewTokens: Type.Integer({ minimum: 1, maximum: 1024, default: 32 }),
    temperature: Type.Number({ minimum: 0, maximum: 10, default: 1, description: '0 = greedy' }),
    topK: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    topP: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  },
  closed,
);

export const EvaluationSpec = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]+$' })),
    models: Type.Array(EvalModelRef, { minItems: 2, maxItems: 8 }),
    /** A prompt dataset of the team; its first `maxPrompts` rows. */
    datasetId: Id,
    maxPrompts: Type.Integer({ minimum: 1, maximum: 2000, default: 200 }),
    seeds: Type.Array(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }), {
      minItems: 1,
      maxItems: 8,
      default: [1],
      description: 'one generation per prompt and seed, the same seeds for every model',
    }),
    sampling: EvalSamplingSpec,
    judge: EvalJudgeSpec,
  },
  closed,
);
export type EvaluationSpec = Static<typeof EvaluationSpec>;

/** What the evaluation queue carries: every fact the worker needs, resolved to artifact keys. */
export interface EvaluationJobData {
  evaluationId: string;
  teamId: string;
  models: { name: string; key: string }[];
  promptsKey: string;
  maxPrompts: number;
  seeds: number[];
  sampling: Static<typeof EvalSamplingSpec>;
  judge:
    | { type: 'reward_model'; key: string; tieMargin: number }
    | { type: 'task'; name: string; tieMargin: number };
  /** Where the worker writes the result (EvaluationResult as JSON). */
  resultKey: string;
}

/** One pair's verdicts, as stored and shown. */
export interface EvaluationPair {
  a: string;
  b: string;
  wins: number;
  ties: number;
  losses: number;
  /** (wins + ties / 2) / n over every prompt and seed. */
  winRate: number;
  /** Percentile bootstrap interval of the win rate, prompts resampled. */
  interval: { lower: number; upper: number; level: number };
  rows: {
    prompt: string;
    seedIndex: number;
    responseA: string;
    responseB: string;
    scoreA?: number;
    scoreB?: number;
    outcome: 'win' | 'tie' | 'loss';
  }[];
}

export interface EvaluationResult {
  pairs: EvaluationPair[];
  meanScores: Record<string, number> | null;
  /** One per judged prompt and seed, a's outcome against b: the leaderboard's input. */
  comparisons: { a: string; b: string; outcome: 'win' | 'tie' | 'loss' }[];
}
