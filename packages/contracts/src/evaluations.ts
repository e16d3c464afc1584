// Evaluations: two or more models answer the same prompts with the same seeded sampling, and a judge compares
// every pair (win / tie / loss with bootstrap intervals); the team's leaderboard rates all its models from every
// comparison so far (Bradley–Terry on the Elo scale). What POST /v1/evaluations accepts and what a worker gets.
import Type, { type Static } from 'typebox';
import type { GraderSpec } from './graders.js';
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

/** A grader spec as given; graderErrors (@rlhf/graders) checks it and names bad fields better than a union could. */
const EvalGraderShape = Type.Object(
  { type: Type.String({ maxLength: 32 }) },
  { additionalProperties: true, description: 'a declared grader (see POST /v1/graders/validate)' },
);

/** The language-model judge's default combination of the two orders: a verdict kept only when both agree. */
export const DEFAULT_JUDGE_COMBINE = 'consistent';

/**
 * Who compares: a reward model of a run of the team (score difference), a task the workers know, a grader (each
 * response scored, the prompt row's fields available to it), or a judge language model (a registered chat model
 * asked "A or B" in both orders, the verdict read from the answer tokens' log-probs).
 */
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
  Type.Object(
    {
      type: Type.Literal('grader'),
      grader: EvalGraderShape,
      tieMargin: Type.Optional(
        Type.Number({ minimum: 0, maximum: 1000, description: 'a smaller grade difference is a tie' }),
      ),
    },
    closed,
  ),
  Type.Object(
    {
      type: Type.Literal('language_model'),
      modelId: Id,
      template: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 8192,
          pattern: '^[^\\u0000]*$',
          description:
            'the judge prompt with {prompt}, {first} and {second}, asking for "A" (first better) or "B" (default: MT-Bench pairwise, shortened)',
        }),
      ),
      combine: Type.Optional(
        Type.Enum(['consistent', 'averaged'], {
          description:
            'consistent (default): a verdict only when both orders agree, else a tie; averaged: P(A better) averaged over both orders',
        }),
      ),
      tieMargin: Type.Optional(
        Type.Number({
          minimum: 0,
          exclusiveMaximum: 0.5,
          description: '|P(A better) − 1/2| ≤ tieMargin is a tie',
        }),
      ),
    },
    closed,
  ),
]);
export type EvalJudgeSpec = Static<typeof EvalJudgeSpec>;
export type EvalJudgeType = EvalJudgeSpec['type'];
/** Every kind of judge (the leaderboard's `judge` filter). */
export const EVAL_JUDGE_TYPES: readonly EvalJudgeType[] = [
  'reward_model',
  'task',
  'grader',
  'language_model',
];

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
    groundTruth: Type.Optional(
      Type.String({
        pattern: TASK_NAME,
        maxLength: 64,
        description:
          "a task the workers know (e.g. 'sort-digits'): every verdict is also decided by its ground truth, and the result reports the judge's agreement with it (share, share where the truth decides, Cohen's κ)",
      }),
    ),
  },
  closed,
);
export type EvaluationSpec = Static<typeof EvaluationSpec>;

/** What the evaluation queue carries: every fact the worker needs, resolved to artifact keys. */
export interface EvaluationJobData {
  evaluationId: string;
  teamId: string;
  /** `version`: the registered model's digest (an admin model's directory can change under the same key). */
  models: { name: string; key: string; version?: string }[];
  promptsKey: string;
  maxPrompts: number;
  seeds: number[];
  sampling: Static<typeof EvalSamplingSpec>;
  judge:
    | { type: 'reward_model'; key: string; tieMargin: number }
    | { type: 'task'; name: string; tieMargin: number }
    | { type: 'grader'; grader: GraderSpec; tieMargin: number }
    | {
        type: 'language_model';
        key: string;
        version?: string;
        template: string;
        combine: 'consistent' | 'averaged';
        tieMargin: number;
      };
  /** Where generations and judge answers are cached (resumed and shared by the team's evaluations). */
  cacheKey?: string;
  /** A task whose ground truth every verdict is checked against (EvaluationPair.groundTruthAgreement). */
  groundTruth?: string;
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
    /** The language-model judge's P(A better) with A shown first, and P(B better) with B shown first. */
    pAFirst?: number;
    pBFirst?: number;
    outcome: 'win' | 'tie' | 'loss';
  }[];
  /** Language-model judges: how often this pair's verdict changed with the order. */
  positionBias?: EvaluationPositionBias;
  /** With spec.groundTruth: how this pair's verdicts agree with the task's (tie margin 0). */
  groundTruthAgreement?: EvaluationAgreement;
}

/** A judge's verdicts against a ground truth's on the same comparisons. */
export interface EvaluationAgreement {
  task: string;
  /** Comparisons (prompt × seed). */
  n: number;
  /** Share where the judge's verdict equals the truth's. */
  agreement: number;
  /** The same share over the comparisons the truth decides (null when it decides none), and how many. */
  decidedAgreement: number | null;
  decided: number;
  /** Cohen's κ over win / tie / loss. */
  kappa: number;
}

/** A pairwise judge's position bias (Zheng et al. 2023): verdicts that change when the two answers swap. */
export interface EvaluationPositionBias {
  /** Judged pairs (prompt × seed), each in both orders. */
  judged: number;
  /** Fraction of them whose verdict changed with the order. */
  flipRate: number;
  /** Of those, how many favoured the answer shown first, and the answer shown second. */
  favouredFirst: number;
  favouredSecond: number;
  /** Mean P(first is better) over both orders: 1/2 for a judge with no position preference. */
  meanFirstPreference: number;
}

/** What the evaluation generated and judged now, and what it reused (cached by an earlier or interrupted one). */
export interface EvaluationWork {
  /** Generation batches (model × seed × prompt batch). */
  generations: { generated: number; reused: number };
  /** Pairwise judge answers (language-model judges; 0 otherwise). */
  judgments: { judged: number; reused: number };
}

export interface EvaluationResult {
  pairs: EvaluationPair[];
  meanScores: Record<string, number> | null;
  /** One per judged prompt and seed, a's outcome against b: the leaderboard's input. */
  comparisons: { a: string; b: string; outcome: 'win' | 'tie' | 'loss' }[];
  /** Language-model judges: the position bias over every pair of models. */
  positionBias?: EvaluationPositionBias;
  /** Absent in results written before resumable evaluations. */
  work?: EvaluationWork;
}
