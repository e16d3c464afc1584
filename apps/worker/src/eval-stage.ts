// The `eval` stage runner: the run's last policy and the model it is compared with answer the same prompts with the
// same seeded sampling, a judge (a task's ground truth or a reward model) compares every pair (@rlhf/eval
// compareModels), and the gate, if any, is decided on the win rate's interval. One step on the shared driver: the
// checkpoint after it holds the whole result, so a job re-taken after that step only writes the files again.
import {
  type EvalConfig,
  type GraderSpec,
  type EvalJobData,
  type EvaluationPair,
  type EvaluationResult,
  formatJsonlError,
  type PromptRow,
  type RunGate,
  type StageJobData,
  type StageJobResult,
  validateJsonl,
} from '@rlhf/contracts';
import { compareModels, type EvalJudge, gateVerdict, memoryJudgmentCache } from '@rlhf/eval';
import type { Tokenizer } from '@rlhf/model';
import { HYPERPARAMETERS_FILE } from '@rlhf/queue';
import { framedPromptText, framingOf, type ModelWeights, runStage, type StageBody } from '@rlhf/stage-kit';
import { UnrecoverableError } from 'bullmq';
import type { StageContext } from './context.js';
import { buildJudge } from './evaluation-judges.js';
import { storedPair } from './evaluations.js';
import { loadModelAt, tokenizerAt } from './model-files.js';
import { groundTruthOf } from './tasks.js';

const RESULT_FILE = 'evaluation.json';
// A grader judge asks no judge model: nothing to cache.
const noJudgments = memoryJudgmentCache();
const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(`${JSON.stringify(value, null, 2)}\n`);

/** The policy's side of one eval stage's comparison, and the gate decided on it (what the API shows). */
export interface EvalStageOutcome {
  result: EvaluationResult;
  pair: Omit<EvaluationPair, 'rows'>;
  gate: Omit<RunGate, 'stageId'> | null;
}

/** What a comparison of a policy needs besides the policy: an eval stage's job, or a checkpoint evaluation's. */
export interface ComparisonSpec {
  config: EvalConfig;
  datasetKey: string;
  maxPrompts: number;
  inputs: { against?: string; rewardModel?: string };
  names: EvalJobData['names'];
}

/** The prompts, the model compared with and the judge, loaded once. */
export interface ComparisonSides {
  prompts: string[];
  against: ModelWeights;
  judge: EvalJudge;
}

export async function loadSides(
  spec: ComparisonSpec,
  ctx: StageContext,
  tokenizer: Tokenizer,
): Promise<ComparisonSides> {
  // The prompts validated again (the artifact store is shared: trust nothing read from it).
  const parsed = await validateJsonl('prompt', await ctx.artifacts.getText(spec.datasetKey));
  if (!parsed.ok)
    throw new UnrecoverableError(
      `dataset ${spec.datasetKey}: ${parsed.errors.map(formatJsonlError).join('; ')}`,
    );
  const rows = (parsed.rows as PromptRow[]).slice(0, spec.maxPrompts);
  const framing = framingOf(tokenizer); // `messages` prompts in the policy's own chat template when it has one
  const prompts = rows.map((row) => framedPromptText(row, framing));
  if (!spec.inputs.against) throw new UnrecoverableError('an eval needs the model it compares against');
  const { judge } = spec.config;
  const tieMargin = judge.tieMargin ?? 0;
  if (judge.type === 'reward_model' && !spec.inputs.rewardModel)
    throw new UnrecoverableError('the reward_model judge has no reward model to load');
  const against = await loadModelAt(ctx.artifacts, spec.inputs.against);
  if (judge.type === 'task')
    return {
      prompts,
      against,
      judge: { kind: 'score', score: groundTruthOf(ctx.tasks, judge.name)!, tieMargin },
    };
  if (judge.type === 'reward_model') {
    const model = await loadModelAt(ctx.artifacts, spec.inputs.rewardModel!);
    return { prompts, against, judge: { kind: 'reward_model', model, tieMargin } };
  }
  // A grader scores each response against its prompt row, as standalone evaluations' grader judges do.
  const built = await buildJudge(
    { type: 'grader', grader: judge.grader as GraderSpec, tieMargin },
    {
      runtime: ctx.runtime,
      artifacts: ctx.artifacts,
      tasks: ctx.tasks,
      rows,
      tokenizer,
      judgments: noJudgments,
    },
  );
  return { prompts, against, judge: built.judge };
}

/** The policy against the other side: verdicts under the leaderboard names, the policy's win rate, the gate. */
export async function comparePolicy(
  spec: ComparisonSpec,
  sides: ComparisonSides,
  policy: ModelWeights,
  ctx: StageContext,
  tokenizer: Tokenizer,
): Promise<EvalStageOutcome> {
  const c = spec.config;
  const { prompts } = sides;
  // Names inside the comparison are the two sides; the leaderboard names replace them in the result.
  const compared = await compareModels({
    runtime: ctx.runtime,
    models: [
      { name: 'policy', model: policy },
      { name: 'against', model: sides.against, ...(c.againstSeeds ? { seeds: c.againstSeeds } : {}) },
    ],
    prompts,
    seeds: c.seeds,
    sampling: { maxNewTokens: c.maxNewTokens, temperature: c.temperature, topK: c.topK, topP: c.topP },
    judge: sides.judge,
    tokenizer,
    signal: ctx.hooks.signal,
  });
  const [compared0] = compared.pairs;
  const { winRate } = compared0;
  const rename = (side: string) => (side === 'policy' ? spec.names.policy : spec.names.against);
  const stored = { ...storedPair(compared0), a: spec.names.policy, b: spec.names.against };
  const { rows: _rows, positionBias: _bias, ...pair } = stored;
  const result: EvaluationResult = {
    pairs: [stored],
    meanScores: compared.meanScores
      ? Object.fromEntries(Object.entries(compared.meanScores).map(([side, v]) => [rename(side), v]))
      : null,
    comparisons: compared.comparisons.map((m) => ({ ...m, a: rename(m.a), b: rename(m.b) })),
  };
  if (!c.gate) return { result, pair, gate: null };
  const verdict = gateVerdict({ against: spec.names.against, ...c.gate }, winRate);
  const gate = {
    passed: verdict.pass,
    winRate: winRate.winRate,
    interval: winRate.interval,
    minWinRate: verdict.minWinRate,
    rule: verdict.rule,
  };
  return { result, pair, gate };
}

const metricsOf = (outcome: EvalStageOutcome): Record<string, number> => ({
  'eval/win_rate': outcome.pair.winRate,
  'eval/win_rate_lower': outcome.pair.interval.lower,
  'eval/win_rate_upper': outcome.pair.interval.upper,
  'eval/wins': outcome.pair.wins,
  'eval/ties': outcome.pair.ties,
  'eval/losses': outcome.pair.losses,
  ...(outcome.gate ? { 'eval/gate_passed': outcome.gate.passed ? 1 : 0 } : {}),
});

/** Runs an eval stage: one driver step that compares, then the result, verdicts and gate under final/. */
export async function evalStage(job: StageJobData, ctx: StageContext): Promise<StageJobResult> {
  if (job.kind !== 'eval') throw new Error(`eval runner got a ${job.kind} job`);
  const run = await runStage<EvalStageOutcome>({
    stage: 'eval',
    totalSteps: 1,
    checkpointEvery: 1,
    hooks: ctx.hooks,
    async start(resume) {
      const saved = resume?.files[RESULT_FILE];
      let outcome: EvalStageOutcome | null = saved
        ? (JSON.parse(new TextDecoder().decode(saved)) as EvalStageOutcome)
        : null;
      const body: StageBody<EvalStageOutcome> = {
        async step() {
          if (!job.inputs.policy)
            throw new UnrecoverableError('an eval stage needs the policy of an earlier stage or of the run');
          const spec = { ...job, datasetKey: job.dataset.key, maxPrompts: job.config.maxPrompts };
          const tokenizer = await tokenizerAt(ctx.artifacts, job.inputs.policy);
          outcome = await comparePolicy(
            spec,
            await loadSides(spec, ctx, tokenizer),
            await loadModelAt(ctx.artifacts, job.inputs.policy),
            ctx,
            tokenizer,
          );
          return { steps: 1, metrics: [metricsOf(outcome)] };
        },
        weights: () => new Map(),
        checkpoint: async () => ({ files: { [RESULT_FILE]: json(outcome) }, state: {} }),
        async finish() {
          if (!outcome) throw new Error('the eval stage finished without a result');
          return outcome;
        },
        async release() {},
      };
      return body;
    },
  });
  const { result, pair, gate } = run.result;
  const c = job.config;
  const resolved = {
    models: job.names,
    prompts: result.pairs[0].rows.length / c.seeds.length,
    seeds: c.seeds,
    againstSeeds: c.againstSeeds,
    sampling: { maxNewTokens: c.maxNewTokens, temperature: c.temperature, topK: c.topK, topP: c.topP },
    judge: c.judge,
    ...pair,
    gate,
  };
  const modelKey = await ctx.saveFinal({
    [RESULT_FILE]: json(result),
    [HYPERPARAMETERS_FILE]: json(resolved),
    'summary.json': json(metricsOf(run.result)),
    // The release decision beside the verdicts: what a deployment step reads.
    ...(gate ? { 'gate.json': json({ ...gate, policy: job.names.policy, against: job.names.against }) } : {}),
  });
  return { stageId: job.stageId, kind: 'eval', modelKey, step: run.step };
}
