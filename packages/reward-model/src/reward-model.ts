// Reward model (InstructGPT §3.5): a GPT trunk with a scalar head read at the last real token (EOS), trained
// with the Bradley–Terry loss −log σ(r_better − r_worse − margin) over all C(K,2) pairs of a prompt's K ranked
// responses. A prompt's pairs share one batch and one forward pass per response, and each prompt weighs the
// same whatever its K (the 1/C(K,2) factor of InstructGPT's eq. 1).
import {
  type RewardModelConfig,
  type RewardModelConfigInput,
  RewardModelMetrics,
  resolveRewardModelConfig,
} from '@rlhf/contracts';
import {
  cast,
  div,
  gather,
  greater,
  logSigmoid,
  max,
  mul,
  neg,
  reduceSum,
  sub,
  type Tensor,
} from '@rlhf/graph';
import {
  ByteTokenizer,
  createScorer,
  type GptConfig,
  gptHidden,
  initParams,
  longest,
  loraSettingsOf,
  type Scorer,
  scalarHead,
  sequenceScores,
  type Tokenizer,
  validateLora,
} from '@rlhf/model';
import { float32, int64, type Runtime } from '@rlhf/runtime';
import {
  effectiveMaxSeqLen,
  loraLoopAdapter,
  loraSharedInputs,
  loraSummary,
  loraTrainParams,
  mergedModel,
  type ModelWeights,
  maxResponses,
  padRight,
  type RankedExample,
  type RankingRow,
  rankedBatch,
  rankedPairs,
  microBatchSize,
  runSupervisedLoop,
  scoreRankings,
  type StageHooks,
  stageAdapter,
  type StageResult,
  splitHeldOut,
  stackSteps,
  tokenizeRanking,
  framingOf,
  totalStepsOf,
} from '@rlhf/stage-kit';

export type RewardRow = RankingRow;

export interface RewardModelInput {
  /** A full config or any part of one (defaults from @rlhf/contracts fill the rest). */
  config: RewardModelConfig | RewardModelConfigInput;
  /** The trunk: the SFT policy (init 'sft') or only its config (init 'fresh'). The scalar head is always new. */
  model: ModelWeights;
  rows: readonly RewardRow[];
  runtime: Runtime;
  hooks?: StageHooks;
  /** Default: ByteTokenizer. */
  tokenizer?: Tokenizer;
  /** With config.lora: the base's name or location, recorded as the adapter's base_model_name_or_path. */
  baseModel?: string;
}

/** Reward normalisation stored with the model (safetensors metadata) for PPO: score' = (score − mean) / std. */
export interface RewardNormalisation {
  mean: number;
  std: number;
}

const MEAN_KEY = 'reward_mean';
const STD_KEY = 'reward_std';

/** The normalisation a reward model was saved with, or null when it has none. */
export function rewardNormalisation(model: ModelWeights): RewardNormalisation | null {
  const mean = Number(model.metadata?.[MEAN_KEY]);
  const std = Number(model.metadata?.[STD_KEY]);
  return model.metadata?.[MEAN_KEY] !== undefined && Number.isFinite(mean) && Number.isFinite(std) && std > 0
    ? { mean, std }
    : null;
}

export interface PairEvaluation {
  /** Share of pairs with r_better > r_worse. */
  accuracy: number;
  /** Mean Bradley–Terry loss per pair. */
  loss: number;
  /** Mean r_better − r_worse. */
  margin: number;
  pairs: number;
  /** Mean and standard deviation of every response's score (the reference set for normalisation). */
  rewardMean: number;
  rewardStd: number;
}

/** Scores every response of the examples with packages/model's scorer (the graph PPO scores rollouts with). */
const scoreExamples = (
  scorer: Scorer,
  params: ReadonlyMap<string, Float32Array>,
  examples: readonly RankedExample[],
  padId: number,
): Promise<number[][]> => scoreRankings(scorer, params, examples, padId, (out, row) => out.scores![row]);

/** Held-out pair metrics as a mean over pairs (how users read pair accuracy); training weights each prompt's pairs 1/C(k,2). */
function evaluateScores(scores: readonly number[][], margin: number): PairEvaluation {
  let correct = 0;
  let loss = 0;
  let gap = 0;
  let pairs = 0;
  for (const s of scores)
    for (const [i, j] of rankedPairs(s.length)) {
      const d = s[i] - s[j];
      correct += d > 0 ? 1 : 0;
      // −log σ(x) = log(1 + e^(−x)), written stably
      const x = d - margin;
      loss += Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
      gap += d;
      pairs++;
    }
  const all = scores.flat();
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const std = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / all.length);
  return {
    accuracy: correct / pairs,
    loss: loss / pairs,
    margin: gap / pairs,
    pairs,
    rewardMean: mean,
    rewardStd: std,
  };
}

export interface EvaluateRewardModelInput {
  model: ModelWeights;
  rows: readonly RewardRow[];
  runtime: Runtime;
  /** Default 0. */
  margin?: number;
  /** Default: the model context. */
  maxSeqLen?: number;
  tokenizer?: Tokenizer;
}

/** Pair accuracy, loss and margin of a reward model on ranked / preference rows (all C(K,2) pairs of each). */
export async function evaluateRewardModel(input: EvaluateRewardModelInput): Promise<PairEvaluation> {
  const tokenizer = input.tokenizer ?? new ByteTokenizer();
  const maxSeqLen = effectiveMaxSeqLen(
    input.maxSeqLen ?? input.model.config.maxPositions,
    input.model.config,
  );
  const examples = input.rows
    .map((row) => tokenizeRanking(tokenizer, row, maxSeqLen)?.example)
    .filter((e) => e !== undefined);
  const scorer = await createScorer(input.runtime, input.model.config, { outputs: ['scores'] });
  try {
    const scores = await scoreExamples(scorer, input.model.params, examples, tokenizer.padId);
    return evaluateScores(scores, input.margin ?? 0);
  } finally {
    await scorer.release();
  }
}

/** Trunk + a fresh scalar head (GPT-2 init of `score.*`, seeded). */
function rewardModelInit(model: ModelWeights, config: RewardModelConfig): ModelWeights {
  const rmConfig: GptConfig = { ...model.config, scalarHead: true };
  const fresh = initParams(rmConfig, config.seed);
  const params = new Map(config.init === 'fresh' ? fresh : model.params);
  params.set('score.weight', fresh.get('score.weight')!);
  params.set('score.bias', fresh.get('score.bias')!);
  return { config: rmConfig, params, metadata: { ...model.metadata } };
}

/** Trains a reward model; resumes from hooks.checkpoints when it holds a checkpoint of this stage. */
export async function trainRewardModel(input: RewardModelInput): Promise<StageResult> {
  const config = resolveRewardModelConfig(input.config);
  const tokenizer = input.tokenizer ?? new ByteTokenizer();
  const model = rewardModelInit(input.model, config);
  const maxSeqLen = effectiveMaxSeqLen(config.maxSeqLen, model.config);
  // LoRA: the trunk is frozen; the adapter and the new score head train (PEFT SEQ_CLS's modules_to_save).
  const lora = config.lora && loraSettingsOf(config.lora, model.config, ['score']);
  if (lora) validateLora(model.config, lora);
  const adapter =
    lora && loraLoopAdapter('reward_model', model, lora, { seed: config.seed, baseModel: input.baseModel });
  // The weights the loop hands back are the adapter's with LoRA: scored and saved as the merged model.
  const merged = (weights: ModelWeights): ModelWeights =>
    lora ? mergedModel(model, lora, weights) : weights;

  const framing = framingOf(tokenizer, config.framing, 'config.framing');
  const tokenized = input.rows.map((row, i) =>
    tokenizeRanking(tokenizer, row, maxSeqLen, framing, `rows[${i}].prompt`),
  );
  const source = tokenized.flatMap((t, i) => (t === null ? [] : [i]));
  const examples = source.map((i) => (tokenized[i] as NonNullable<(typeof tokenized)[number]>).example);
  if (examples.length === 0) throw new Error('reward model: no ranking fits within maxSeqLen');
  const { train, validation } = splitHeldOut(examples, source, tokenized.length, config);
  // The reference set for the reward normalisation PPO applies: held-out responses (training ones if none).
  const reference = validation.length > 0 ? validation : train.slice(0, 256);

  const B = microBatchSize(config);
  const K = maxResponses(train);
  const pairs = rankedPairs(K);
  const P = B * pairs.length;
  const totalSteps = totalStepsOf(config, train.length);
  const hyperparameters = {
    stage: 'reward_model',
    config,
    model: model.config,
    effective: {
      maxSeqLen,
      totalSteps,
      trainPrompts: train.length,
      validationPrompts: validation.length,
      responsesPerPrompt: K,
      pairsPerBatch: P,
      sequencesPerBatch: B * K,
      ...(lora && { lora: loraSummary(model.config, lora) }),
      truncatedResponses: tokenized.reduce((n, t) => n + (t?.truncated ?? 0), 0),
      droppedRows: tokenized.length - examples.length,
      tokenizer: {
        bos: tokenizer.bosId,
        eos: tokenizer.eosId,
        pad: tokenizer.padId,
        vocab: tokenizer.vocabSize,
      },
    },
  };
  input.hooks?.log?.(`reward_model: ${JSON.stringify(hyperparameters.effective)}`);

  // One training batch: B prompts × K response slots (unused slots of shorter rankings are empty, weight 0).
  const batchTensors = (indices: number[], length: number) => {
    const { slots, better, worse, weight } = rankedBatch(train, indices, K);
    const sequences = slots.map((s) =>
      s ? [...train[s.example].prompt, ...train[s.example].responses[s.response]] : [],
    );
    return {
      input_ids: int64([B * K, length], padRight(sequences, length, tokenizer.padId)),
      attention_mask: int64(
        [B * K, length],
        padRight(
          sequences.map((s) => s.map(() => 1)),
          length,
          0,
        ),
      ),
      better: int64([P], better),
      worse: int64([P], worse),
      pair_weight: float32([P], weight),
    };
  };

  const scorer = await createScorer(input.runtime, model.config, { outputs: ['scores'] });
  let lastReference: RewardNormalisation = { mean: 0, std: 1 };
  const evaluate = async (weights: ModelWeights): Promise<Record<string, number>> => {
    const result = evaluateScores(
      await scoreExamples(scorer, merged(weights).params, reference, tokenizer.padId),
      config.margin,
    );
    lastReference = { mean: result.rewardMean, std: result.rewardStd };
    if (validation.length === 0) return {};
    return {
      [RewardModelMetrics.evalLoss]: result.loss,
      [RewardModelMetrics.evalAccuracy]: result.accuracy,
      [RewardModelMetrics.evalMargin]: result.margin,
    };
  };

  const result = await runSupervisedLoop({
    stage: 'reward_model',
    config,
    model,
    runtime: input.runtime,
    hooks: input.hooks,
    trainSize: train.length,
    adapter: adapter || undefined,
    graph: {
      batch: [
        { name: 'input_ids', dtype: 'int64', shape: [B * K, 'seq'] },
        { name: 'attention_mask', dtype: 'int64', shape: [B * K, 'seq'] },
        { name: 'better', dtype: 'int64', shape: [P] },
        { name: 'worse', dtype: 'int64', shape: [P] },
        { name: 'pair_weight', dtype: 'float32', shape: [P] },
      ],
      ...(lora && { shared: loraSharedInputs(model.config, lora) }),
      loss: (trained: Map<string, Tensor>, batch: Record<string, Tensor>, shared: Record<string, Tensor>) => {
        // With LoRA `trained` is the adapter (dropout on) and the frozen trunk comes in as shared inputs.
        const params = lora
          ? loraTrainParams(model.config, lora, trained, shared, { dropout: true })
          : trained;
        // Right padding: causal attention keeps real tokens from seeing it, so the trunk needs no mask.
        const { hidden } = gptHidden(params, model.config, batch.input_ids, { recompute: config.recompute });
        const scores = sequenceScores(scalarHead(params, hidden), batch.attention_mask); // [B·K]
        const gap = sub(gather(scores, batch.better, 0), gather(scores, batch.worse, 0)); // [P]
        const w = batch.pair_weight;
        const total = max(reduceSum(w), 1e-6);
        const pairLoss = neg(logSigmoid(sub(gap, config.margin)));
        const correct = cast(greater(gap, 0), 'float32');
        return {
          loss: div(reduceSum(mul(pairLoss, w)), total),
          metrics: { accuracy: div(reduceSum(mul(correct, w)), total) },
        };
      },
    },
    metricNames: { accuracy: RewardModelMetrics.accuracy },
    feeds(batches) {
      const length = longest(
        batches.flat().flatMap((i) => train[i].responses.map((r) => [...train[i].prompt, ...r])),
      );
      const tokens = batches
        .flat()
        .reduce(
          (n, i) => n + train[i].responses.reduce((m, r) => m + train[i].prompt.length + r.length, 0),
          0,
        );
      return { feeds: stackSteps(batches.map((indices) => batchTensors(indices, length))), tokens };
    },
    evaluate,
  }).catch(async (error: unknown) => {
    await scorer.release();
    throw error;
  });

  // Scores are normalised by the reference statistics of the weights kept: the last evaluation was the last
  // weights'; with keepBest the best weights are scored again for theirs.
  const lastNormalisation = lastReference;
  if (result.best) await evaluate(result.model).finally(() => scorer.release());
  else await scorer.release();
  const normalisation = lastReference;
  if (!(normalisation.std > 0))
    input.hooks?.log?.(
      'reward_model: every reference score is the same (std 0): PPO will use raw scores; the model has not learned to rank',
    );
  const finalModel: ModelWeights = {
    ...merged(result.model),
    metadata: {
      ...result.model.metadata,
      stage: 'reward_model',
      [MEAN_KEY]: String(normalisation.mean),
      [STD_KEY]: String(normalisation.std),
    },
  };
  return {
    step: result.step,
    model: finalModel,
    ...(result.last && {
      last: {
        ...merged(result.last),
        metadata: {
          ...result.last.metadata,
          stage: 'reward_model',
          [MEAN_KEY]: String(lastNormalisation.mean),
          [STD_KEY]: String(lastNormalisation.std),
        },
      },
    }),
    ...(lora && { adapter: stageAdapter(model.config, lora, result.model.params, input.baseModel ?? null) }),
    summary: { ...result.eval, 'reward/mean': normalisation.mean, 'reward/std': normalisation.std },
    hyperparameters: {
      ...hyperparameters,
      resumedFrom: result.resumedFrom,
      ...(result.best && { best: result.best }),
    },
  };
}
