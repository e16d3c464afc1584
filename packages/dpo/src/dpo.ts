// DPO and its relatives (Rafailov et al. 2023; IPO, SLiC hinge, conservative DPO, SimPO, RPO): the policy learns
// from ranked responses directly, regularised toward a frozen reference, with no reward model. Rankings of K
// responses bring all C(K,2) pairs into one batch, weighted like the reward model's (packages/stage-kit ranked).
// The reference's sequence log-probs are computed once for the dataset before training (the reference never
// changes; a resumed stage recomputes them), by the scoring graph the policy is trained through.
import { type DpoConfig, type DpoConfigInput, DpoMetrics, resolveDpoConfig } from '@rlhf/contracts';
import { add, cast, div, gather, greater, max, mul, neg, reduceSum, sub, type Tensor } from '@rlhf/graph';
import {
  ByteTokenizer,
  createScorer,
  type GptConfig,
  longest,
  type ResponseBatch,
  scoreResponses,
  type Tokenizer,
} from '@rlhf/model';
import { float32, type HostTensor, int64, type Runtime } from '@rlhf/runtime';
import {
  effectiveMaxSeqLen,
  maxResponses,
  type ModelWeights,
  padRight,
  type RankedExample,
  type RankingRow,
  rankedBatch,
  rankedPairs,
  runSupervisedLoop,
  scoreRankings,
  type StageHooks,
  type StageResult,
  splitTrainValidation,
  stackSteps,
  tokenizeRanking,
  totalStepsOf,
} from '@rlhf/stage-kit';
import { dpoLogits, hingeLoss, ipoLoss, sigmoidLoss, simpoLoss } from './losses.js';

export interface DpoInput {
  /** A full config or any part of one (defaults from @rlhf/contracts fill the rest). */
  config: DpoConfig | DpoConfigInput;
  /** The starting policy (usually SFT); also the frozen reference unless `reference` is given. */
  model: ModelWeights;
  reference?: ModelWeights;
  rows: readonly RankingRow[];
  runtime: Runtime;
  hooks?: StageHooks;
  /** Default: ByteTokenizer. */
  tokenizer?: Tokenizer;
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

/** Trains the policy on rankings; resumes from hooks.checkpoints when it holds a checkpoint of this stage. */
export async function trainDpo(input: DpoInput): Promise<StageResult> {
  const config = resolveDpoConfig(input.config);
  const tokenizer = input.tokenizer ?? new ByteTokenizer();
  const model = languageModel(input.model);
  const reference = languageModel(input.reference ?? input.model);
  const modelConfig: GptConfig = model.config;
  const maxSeqLen = effectiveMaxSeqLen(config.maxSeqLen, modelConfig);
  const referenceFree = config.lossType === 'simpo';

  const tokenized = input.rows.map((row) => tokenizeRanking(tokenizer, row, maxSeqLen));
  const examples = tokenized.filter((t) => t !== null).map((t) => t.example);
  if (examples.length === 0) throw new Error('dpo: no ranking fits within maxSeqLen');
  const split = splitTrainValidation(
    examples.map((e, i) => ({ ...e, i })),
    config.validationFraction,
    config.seed,
  );
  const [train, validation] = [split.train, split.validation];
  const B = config.batchSize;
  const K = maxResponses(train);
  const P = B * rankedPairs(K).length;
  const totalSteps = totalStepsOf(config, train.length);
  const hyperparameters = {
    stage: 'dpo',
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
      reference: input.reference ? 'given' : 'starting policy',
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
  input.hooks?.log?.(`dpo: ${JSON.stringify(hyperparameters.effective)}`);

  // The reference never changes: its sequence log-probs once, for the whole dataset (none for SimPO).
  const ref = referenceFree
    ? { sums: examples.map((e) => e.responses.map(() => 0)), tokens: [] }
    : await sequenceLogps(input.runtime, reference, examples, tokenizer.padId);

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
    } satisfies Record<string, HostTensor>;
  };

  const lossOf = (chosen: PairSide, rejected: PairSide): Tensor => {
    switch (config.lossType) {
      case 'sigmoid':
        return sigmoidLoss(
          dpoLogits(chosen.sum, rejected.sum, chosen.ref, rejected.ref),
          config.beta,
          config.labelSmoothing,
        );
      case 'hinge':
        return hingeLoss(dpoLogits(chosen.sum, rejected.sum, chosen.ref, rejected.ref), config.beta);
      case 'ipo':
        return ipoLoss(dpoLogits(chosen.mean, rejected.mean, chosen.refMean, rejected.refMean), config.beta);
      case 'simpo':
        return simpoLoss(chosen.mean, rejected.mean, config.beta, config.simpoGamma);
    }
  };
  // Implicit reward of a response: β(log π − log π_ref); SimPO's is β · mean log π.
  const rewardOf = (side: PairSide): Tensor =>
    referenceFree ? mul(side.mean, config.beta) : mul(sub(side.sum, side.ref), config.beta);

  const result = await runSupervisedLoop({
    stage: 'dpo',
    config,
    model,
    runtime: input.runtime,
    hooks: input.hooks,
    trainSize: train.length,
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
      ],
      loss: (params: Map<string, Tensor>, batch: Record<string, Tensor>) => {
        const sequences: ResponseBatch = {
          promptIds: batch.prompt_ids,
          promptMask: batch.prompt_mask,
          responseIds: batch.response_ids,
          responseMask: batch.response_mask,
        };
        const mask = cast(batch.response_mask, 'float32');
        const { logprobs } = scoreResponses(params, modelConfig, sequences);
        const sums = reduceSum(mul(logprobs, mask), -1); // [B·K] log π(response)
        const tokens = max(reduceSum(mask, -1), 1);
        const side = (index: Tensor): PairSide => {
          const sum = gather(sums, index, 0);
          const n = gather(tokens, index, 0);
          const refSum = gather(batch.ref_logps, index, 0);
          return { sum, ref: refSum, mean: div(sum, n), refMean: div(refSum, n) };
        };
        const chosen = side(batch.better);
        const rejected = side(batch.worse);
        const w = batch.pair_weight;
        const total = max(reduceSum(w), 1e-6);
        const mean = (x: Tensor) => div(reduceSum(mul(x, w)), total);
        let loss = mean(lossOf(chosen, rejected));
        // RPO: NLL per token of each ranking's best response (TRL rpo_alpha).
        if (config.rpoAlpha > 0) {
          const nll = div(
            neg(reduceSum(gather(sums, batch.best, 0))),
            reduceSum(gather(tokens, batch.best, 0)),
          );
          loss = add(loss, mul(nll, config.rpoAlpha));
        }
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
      validation.length === 0
        ? {}
        : heldOut(await sequenceLogps(input.runtime, weights, validation, tokenizer.padId)),
  });

  /** Held-out pair metrics (a mean over pairs, as users read accuracy) from the policy's sequence log-probs. */
  function heldOut(policy: SequenceLogps): Record<string, number> {
    let [pairs, correct, margin, chosen, rejected, kl] = [0, 0, 0, 0, 0, 0];
    validation.forEach((e, v) => {
      const reward = (k: number) =>
        referenceFree
          ? (config.beta * policy.sums[v][k]) / policy.tokens[v][k]
          : config.beta * (policy.sums[v][k] - ref.sums[e.i][k]);
      if (!referenceFree) kl += policy.sums[v][0] - ref.sums[e.i][0];
      for (const [i, j] of rankedPairs(e.responses.length)) {
        pairs++;
        correct += reward(i) > reward(j) ? 1 : 0;
        margin += reward(i) - reward(j);
        chosen += reward(i);
        rejected += reward(j);
      }
    });
    return {
      [DpoMetrics.evalRewardsAccuracies]: correct / pairs,
      [DpoMetrics.evalRewardsMargins]: margin / pairs,
      [DpoMetrics.evalRewardsChosen]: chosen / pairs,
      [DpoMetrics.evalRewardsRejected]: rejected / pairs,
      ...(referenceFree ? {} : { [DpoMetrics.evalKl]: kl / validation.length }),
    };
  }

  return {
    step: result.step,
    model: { ...result.model, metadata: { ...result.model.metadata, stage: 'dpo' } },
    summary: result.eval,
    hyperparameters: { ...hyperparameters, resumedFrom: result.resumedFrom },
  };
}

/** One side of the batch's pairs: policy and reference sequence log-probs, summed and per token. */
interface PairSide {
  sum: Tensor;
  ref: Tensor;
  mean: Tensor;
  refMean: Tensor;
}
