// Training a policy directly on ranked responses (no reward model), shared by the DPO family and the list-wise
// objectives (PRO, RRHF): rankings of K responses laid out as B × K slots with all C(K,2) pairs between them
// (packages/stage-kit ranked), sequence log-probs through the scoring graph PPO also uses, an optional frozen
// reference whose log-probs are computed once for the dataset (a resumed stage recomputes them), an optional
// NLL term on each ranking's best response, TRL's metric names, and held-out pair accuracy of the implicit
// reward. An objective supplies only its loss and its notion of a response's reward.
import { DpoMetrics, type FramingConfig } from '@rlhf/contracts';
import { add, cast, div, gather, greater, max, mul, neg, reduceSum, sub, type Tensor } from '@rlhf/graph';
import {
  ByteTokenizer,
  createScorer,
  type GptConfig,
  longest,
  loraSettingsOf,
  type ResponseBatch,
  scoreResponses,
  type Tokenizer,
  validateLora,
} from '@rlhf/model';
import { float32, type HostTensor, int64, type Runtime } from '@rlhf/runtime';
import {
  effectiveMaxSeqLen,
  loraLoopAdapter,
  loraSharedInputs,
  loraSummary,
  loraTrainParams,
  maxResponses,
  mergedModel,
  type ModelWeights,
  padRight,
  type RankedExample,
  type RankingRow,
  rankedBatch,
  rankedPairs,
  microBatchSize,
  runSupervisedLoop,
  type StageHooks,
  type StageResult,
  type SupervisedConfig,
  stageAdapter,
  scoreRankings,
  splitHeldOut,
  stackSteps,
  tokenizeRanking,
  framingOf,
  totalStepsOf,
} from '@rlhf/stage-kit';
import type { LoraConfig } from '@rlhf/contracts';
import { loraSequenceLogps } from './lora.js';

export interface RankingInput<Config> {
  /** A full config or any part of one (defaults from @rlhf/contracts fill the rest). */
  config: Config;
  /** The starting policy (usually SFT); also the frozen reference unless `reference` is given. */
  model: ModelWeights;
  reference?: ModelWeights;
  rows: readonly RankingRow[];
  runtime: Runtime;
  hooks?: StageHooks;
  /** Default: ByteTokenizer. */
  tokenizer?: Tokenizer;
  /** With config.lora: the base's name or location, recorded as the adapter's base_model_name_or_path. */
  baseModel?: string;
}

/** A batch's sequences, as an objective's loss reads them. */
export interface RankingBatch {
  /** [B·K] log π(response) summed over its tokens; slot b·K + k is ranking b's k-th best response. */
  sums: Tensor;
  /** [B·K] response tokens (at least 1). */
  tokens: Tensor;
  /** [B·K] the reference's log-prob sums (0 without a reference). */
  refs: Tensor;
  /** [P] slot indices of each pair's better and worse response; its weight (1/C(k,2), 0 across a gap). */
  better: Tensor;
  worse: Tensor;
  weight: Tensor;
  /** [B, K] 1 where a slot holds a response, 0 in the gap of a ranking shorter than K. */
  slots: Tensor;
  B: number;
  K: number;
  /** Weighted mean over the pairs of a per-pair [P] value. */
  pairMean(x: Tensor): Tensor;
}

export interface RankingObjective {
  stage: string;
  config: SupervisedConfig & {
    maxSeqLen: number;
    validationFraction: number;
    validationRows?: number;
    framing?: FramingConfig;
  };
  /** Whether the loss reads the frozen reference (its log-probs are computed once before training). */
  usesReference: boolean;
  /** Train a LoRA adapter on the frozen policy, which is then also the reference (adapter off); absent = full. */
  lora?: LoraConfig;
  /** Weight of the NLL per token of each ranking's best response (RPO α, PRO/RRHF's SFT term); 0 = none. */
  sftWeight: number;
  /** A response's implicit reward from its log-prob sum, token count and reference sum (elementwise). */
  reward(sum: Tensor, tokens: Tensor, ref: Tensor): Tensor;
  /** The same on the host, for held-out metrics. */
  hostReward(sum: number, tokens: number, ref: number): number;
  /** A held-out pair's loss from its two implicit rewards (hostReward), where the loss is a function of them. */
  hostPairLoss?(chosen: number, rejected: number): number;
  /** The batch's loss (the SFT term is added by the trainer). */
  loss(batch: RankingBatch): Tensor;
  /** Settings recorded with the run besides the config. */
  effective?: Record<string, unknown>;
}

/** One side of a batch's pairs: policy and reference sequence log-probs, summed and per token. */
export interface PairSide {
  sum: Tensor;
  tokens: Tensor;
  ref: Tensor;
  mean: Tensor;
  refMean: Tensor;
}

/** The responses at `index` (better or worse of each pair). */
export function pairSide(batch: RankingBatch, index: Tensor): PairSide {
  const sum = gather(batch.sums, index, 0);
  const n = gather(batch.tokens, index, 0);
  const ref = gather(batch.refs, index, 0);
  return { sum, tokens: n, ref, mean: div(sum, n), refMean: div(ref, n) };
}

/** Sequence log-prob (sum over response tokens) and token count of every response of every ranking. */
interface SequenceLogps {
  sums: number[][];
  tokens: number[][];
}

/** log π(response | prompt) summed over each response's tokens, with the scoring graph PPO also uses. */
export async function sequenceLogps(
  runtime: Runtime,
  model: ModelWeights,
  examples: readonly RankedExample[],
  padId: number,
): Promise<SequenceLogps> {
  const scorer = await createScorer(runtime, model.config, { outputs: ['logprobs'] });
  try {
    const sums = await scoreRankings(scorer, model.params, examples, padId, (out, row, response) =>
      out.logprobs![row].slice(0, response.length).reduce((a, x) => a + x, 0),
    );
    return { sums, tokens: examples.map((e) => e.responses.map((r) => r.length)) };
  } finally {
    await scorer.release();
  }
}

/** The policy without a scalar head (an RM checkpoint's head is dropped). */
function languageModel(model: ModelWeights): ModelWeights {
  if (!model.config.scalarHead) return model;
  const params = new Map(model.params);
  params.delete('score.weight');
  params.delete('score.bias');
  return { ...model, config: { ...model.config, scalarHead: false }, params };
}

/** Trains the policy on rankings with `objective`; resumes from hooks.checkpoints (a checkpoint of this stage). */
export async function trainOnRankings<Config>(
  input: RankingInput<Config>,
  objective: RankingObjective,
): Promise<StageResult> {
  const { config, stage } = objective;
  const tokenizer = input.tokenizer ?? new ByteTokenizer();
  const model = languageModel(input.model);
  const reference = languageModel(input.reference ?? input.model);
  const modelConfig: GptConfig = model.config;
  const maxSeqLen = effectiveMaxSeqLen(config.maxSeqLen, modelConfig);
  const lora = objective.lora && loraSettingsOf(objective.lora, modelConfig);
  if (lora) validateLora(modelConfig, lora);
  if (lora && input.reference)
    throw new Error(
      `${stage}: with lora the reference is the base with the adapter off; no other reference is taken`,
    );
  const adapter =
    lora && loraLoopAdapter(stage, model, lora, { seed: config.seed, baseModel: input.baseModel });
  // With LoRA the loop's weights are the adapter's: the policy's log-probs come from the LoRA scoring graph.
  const policyLogps = (weights: ModelWeights, of: readonly RankedExample[]) =>
    lora
      ? loraSequenceLogps(input.runtime, model, lora, weights.params, of, tokenizer.padId, 'policy')
      : sequenceLogps(input.runtime, weights, of, tokenizer.padId);

  const framing = framingOf(tokenizer, config.framing, 'config.framing');
  const tokenized = input.rows.map((row, i) =>
    tokenizeRanking(tokenizer, row, maxSeqLen, framing, `rows[${i}].prompt`),
  );
  const source = tokenized.flatMap((t, i) => (t === null ? [] : [i]));
  const examples = source.map((i) => (tokenized[i] as NonNullable<(typeof tokenized)[number]>).example);
  if (examples.length === 0) throw new Error(`${stage}: no ranking fits within maxSeqLen`);
  const split = splitHeldOut(
    examples.map((e, i) => ({ ...e, i })),
    source,
    tokenized.length,
    config,
  );
  const [train, validation] = [split.train, split.validation];
  const B = microBatchSize(config);
  const K = maxResponses(train);
  const P = B * rankedPairs(K).length;
  const totalSteps = totalStepsOf(config, train.length);
  const hyperparameters = {
    stage,
    config,
    model: modelConfig,
    effective: {
      maxSeqLen,
      totalSteps,
      trainPrompts: train.length,
      validationPrompts: validation.length,
      responsesPerPrompt: K,
      pairsPerBatch: P,
      sequencesPerBatch: B * K,
      reference: objective.usesReference ? (input.reference ? 'given' : 'starting policy') : 'none',
      ...objective.effective,
      ...(lora && {
        lora: loraSummary(modelConfig, lora),
        reference: objective.usesReference ? 'the base, adapter off' : 'none',
      }),
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
  input.hooks?.log?.(`${stage}: ${JSON.stringify(hyperparameters.effective)}`);

  // The reference never changes: its sequence log-probs once, for the whole dataset.
  const ref = objective.usesReference
    ? adapter && lora
      ? await loraSequenceLogps(
          input.runtime,
          model,
          lora,
          adapter.initial,
          examples,
          tokenizer.padId,
          'reference',
        )
      : await sequenceLogps(input.runtime, reference, examples, tokenizer.padId)
    : { sums: examples.map((e) => e.responses.map(() => 0)), tokens: [] };

  // One training batch: B rankings × K response slots; a gap repeats the ranking's best response (weight 0).
  const batchTensors = (indices: number[], promptLength: number, responseLength: number) => {
    const { slots, better, worse, weight } = rankedBatch(train, indices, K);
    const filled = slots.map((s, n) => s ?? { example: indices[Math.floor(n / K)], response: 0 });
    const prompts = filled.map((s) => train[s.example].prompt);
    const responses = filled.map((s) => train[s.example].responses[s.response]);
    const leftPadded = (fill: (token: number) => number, pad: number) =>
      prompts.flatMap((p) => [...new Array(promptLength - p.length).fill(pad), ...p.map(fill)]);
    return {
      prompt_ids: int64(
        [B * K, promptLength],
        leftPadded((t) => t, tokenizer.padId),
      ),
      prompt_mask: int64(
        [B * K, promptLength],
        leftPadded(() => 1, 0),
      ),
      response_ids: int64([B * K, responseLength], padRight(responses, responseLength, tokenizer.padId)),
      response_mask: int64(
        [B * K, responseLength],
        padRight(
          responses.map((r) => r.map(() => 1)),
          responseLength,
          0,
        ),
      ),
      ref_logps: float32(
        [B * K],
        filled.map((s) => ref.sums[train[s.example].i][s.response]),
      ),
      better: int64([P], better),
      worse: int64([P], worse),
      pair_weight: float32([P], weight),
      best: int64(
        [B],
        indices.map((_, b) => b * K),
      ),
      slot_mask: float32(
        [B, K],
        slots.map((s) => (s ? 1 : 0)),
      ),
    } satisfies Record<string, HostTensor>;
  };

  const result = await runSupervisedLoop({
    stage,
    config,
    model,
    runtime: input.runtime,
    hooks: input.hooks,
    trainSize: train.length,
    adapter: adapter || undefined,
    graph: {
      batch: [
        { name: 'prompt_ids', dtype: 'int64', shape: [B * K, 'prompt'] },
        { name: 'prompt_mask', dtype: 'int64', shape: [B * K, 'prompt'] },
        { name: 'response_ids', dtype: 'int64', shape: [B * K, 'response'] },
        { name: 'response_mask', dtype: 'int64', shape: [B * K, 'response'] },
        { name: 'ref_logps', dtype: 'float32', shape: [B * K] },
        { name: 'better', dtype: 'int64', shape: [P] },
        { name: 'worse', dtype: 'int64', shape: [P] },
        { name: 'pair_weight', dtype: 'float32', shape: [P] },
        { name: 'best', dtype: 'int64', shape: [B] },
        { name: 'slot_mask', dtype: 'float32', shape: [B, K] },
      ],
      ...(lora && { shared: loraSharedInputs(modelConfig, lora) }),
      loss: (trained: Map<string, Tensor>, batch: Record<string, Tensor>, shared: Record<string, Tensor>) => {
        // With LoRA `trained` is the adapter (dropout on) and the frozen base comes in as shared inputs.
        const params = lora
          ? loraTrainParams(modelConfig, lora, trained, shared, { dropout: true })
          : trained;
        const sequences: ResponseBatch = {
          promptIds: batch.prompt_ids,
          promptMask: batch.prompt_mask,
          responseIds: batch.response_ids,
          responseMask: batch.response_mask,
        };
        const mask = cast(batch.response_mask, 'float32');
        const { logprobs } = scoreResponses(params, modelConfig, sequences, { recompute: config.recompute });
        const sums = reduceSum(mul(logprobs, mask), -1); // [B·K] log π(response)
        const tokens = max(reduceSum(mask, -1), 1);
        const w = batch.pair_weight;
        const total = max(reduceSum(w), 1e-6);
        const mean = (x: Tensor) => div(reduceSum(mul(x, w)), total);
        const ranking: RankingBatch = {
          sums,
          tokens,
          refs: batch.ref_logps,
          better: batch.better,
          worse: batch.worse,
          weight: w,
          slots: batch.slot_mask,
          B,
          K,
          pairMean: mean,
        };
        let loss = objective.loss(ranking);
        // NLL per token of each ranking's best response (RPO's α, PRO's and RRHF's SFT term).
        if (objective.sftWeight > 0) {
          const nll = div(
            neg(reduceSum(gather(sums, batch.best, 0))),
            reduceSum(gather(tokens, batch.best, 0)),
          );
          loss = add(loss, mul(nll, objective.sftWeight));
        }
        const chosen = pairSide(ranking, batch.better);
        const rejected = pairSide(ranking, batch.worse);
        const rewardOf = (side: PairSide) => objective.reward(side.sum, side.tokens, side.ref);
        const [rc, rr] = [rewardOf(chosen), rewardOf(rejected)];
        return {
          loss,
          metrics: {
            rewardsChosen: mean(rc),
            rewardsRejected: mean(rr),
            rewardsAccuracies: mean(cast(greater(rc, rr), 'float32')),
            rewardsMargins: mean(sub(rc, rr)),
            logpsChosen: mean(chosen.sum),
            logpsRejected: mean(rejected.sum),
          },
        };
      },
    },
    metricNames: {
      rewardsChosen: DpoMetrics.rewardsChosen,
      rewardsRejected: DpoMetrics.rewardsRejected,
      rewardsAccuracies: DpoMetrics.rewardsAccuracies,
      rewardsMargins: DpoMetrics.rewardsMargins,
      logpsChosen: DpoMetrics.logpsChosen,
      logpsRejected: DpoMetrics.logpsRejected,
    },
    feeds(batches) {
      const all = batches.flat().map((i) => train[i]);
      const promptLength = longest(all.map((e) => e.prompt));
      const responseLength = longest(all.flatMap((e) => e.responses));
      const tokens = all.reduce(
        (n, e) => n + e.responses.reduce((m, r) => m + e.prompt.length + r.length, 0),
        0,
      );
      return {
        feeds: stackSteps(batches.map((indices) => batchTensors(indices, promptLength, responseLength))),
        tokens,
      };
    },
    evaluate: async (weights) =>
      validation.length === 0 ? {} : heldOut(await policyLogps(weights, validation)),
  });

  /** Held-out pair metrics (a mean over pairs, as users read accuracy) from the policy's sequence log-probs. */
  function heldOut(policy: SequenceLogps): Record<string, number> {
    let [pairs, correct, margin, chosen, rejected, kl, loss] = [0, 0, 0, 0, 0, 0, 0];
    validation.forEach((e, v) => {
      const reward = (k: number) =>
        objective.hostReward(policy.sums[v][k], policy.tokens[v][k], ref.sums[e.i][k]);
      if (objective.usesReference) kl += policy.sums[v][0] - ref.sums[e.i][0];
      for (const [i, j] of rankedPairs(e.responses.length)) {
        pairs++;
        correct += reward(i) > reward(j) ? 1 : 0;
        loss += objective.hostPairLoss?.(reward(i), reward(j)) ?? 0;
        margin += reward(i) - reward(j);
        chosen += reward(i);
        rejected += reward(j);
      }
    });
    return {
      ...(objective.hostPairLoss ? { [DpoMetrics.evalLoss]: loss / pairs } : {}),
      [DpoMetrics.evalRewardsAccuracies]: correct / pairs,
      [DpoMetrics.evalRewardsMargins]: margin / pairs,
      [DpoMetrics.evalRewardsChosen]: chosen / pairs,
      [DpoMetrics.evalRewardsRejected]: rejected / pairs,
      ...(objective.usesReference ? { [DpoMetrics.evalKl]: kl / validation.length } : {}),
    };
  }

  // A LoRA stage's output is the merged model (what later stages load), its adapter beside it.
  const output = (weights: ModelWeights) => (lora ? mergedModel(model, lora, weights) : weights);
  const [final, last] = [output(result.model), result.last && output(result.last)];
  return {
    step: result.step,
    model: { ...final, metadata: { ...final.metadata, stage } },
    ...(last && { last: { ...last, metadata: { ...last.metadata, stage } } }),
    ...(lora && { adapter: stageAdapter(modelConfig, lora, result.model.params, input.baseModel ?? null) }),
    summary: result.eval,
    hyperparameters: {
      ...hyperparameters,
      resumedFrom: result.resumedFrom,
      ...(result.best && { best: result.best }),
    },
  };
}
