// The next-token sampler of the generation graph, in two variants chosen when the graph is built, so a decode
// step pays for a sort only when a filter needs one:
// - 'plain' (no top-k, no top-p): greedy is ArgMax; sampling is inverse CDF over the unsorted vocabulary
//   (CumSum of exp(logits/T − max), the first token whose running mass exceeds u × total): O(V), no sort.
// - 'filtered' (top-k and/or top-p): TopK(k) with k = top_k, or, for top-p alone, the TOP_P_CANDIDATES most
//   likely tokens; top-p then keeps the smallest prefix of those candidates (renormalised over them) whose mass
//   reaches p. The bound makes top-p alone differ from the exact nucleus only when the candidates hold less than
//   p of the mass, which needs a distribution flatter than language models produce at usual temperatures. A
//   filtered graph asked for no filter sorts the whole vocabulary (exact, as before the plain variant existed).
// Both variants are inverse-CDF samplers driven by the same host uniforms (one per row and step), so a seed
// reproduces a generation exactly; the two variants order the tokens differently (vocabulary order vs. by
// probability), so the same seed gives different (equally distributed) samples in each.
import {
  argmax,
  cast,
  cumsum,
  dimOf,
  equal,
  exp,
  gather,
  gatherElements,
  greater,
  greaterOrEqual,
  less,
  lessOrEqual,
  logSoftmax,
  min,
  mul,
  or,
  range,
  reduceMax,
  reduceSum,
  softmax,
  squeeze,
  sub,
  type Tensor,
  topk,
  unsqueeze,
  where,
} from '@rlhf/graph';
import { withTemperature } from './score.js';

/** Scalar sampling settings as graph tensors. */
export interface SamplingInputs {
  /** dtype scalar; <= 0 means greedy. */
  temperature: Tensor;
  /** int64 scalar; <= 0 keeps the whole vocabulary. */
  topK: Tensor;
  /** dtype scalar in (0, 1]; 1 keeps the whole vocabulary. */
  topP: Tensor;
}

/** 'plain': temperature (or greedy) only; 'filtered': top-k and/or top-p as well. */
export type SamplerKind = 'plain' | 'filtered';

/** Tokens top-p chooses among when no top-k is given (the nucleus is found inside them). */
export const TOP_P_CANDIDATES = 1024;

/** The sampler a request needs: a top-k or top-p filter needs the sorted candidates. */
export const samplerFor = (s: { topK?: number; topP?: number }): SamplerKind =>
  (s.topK ?? 0) > 0 || (s.topP ?? 1) < 1 ? 'filtered' : 'plain';

/** The temperature logits are divided by: the given one, or 1 when greedy (temperature <= 0). */
export function effectiveTemperature(temperature: Tensor): Tensor {
  return where(greater(temperature, 0), temperature, 1);
}

/** Index of the first column of `cdf` [B, C] (non-decreasing rows) whose value exceeds `target` [B]. */
function firstAbove(cdf: Tensor, target: Tensor): Tensor {
  const below = reduceSum(cast(lessOrEqual(cdf, unsqueeze(target, [1])), 'int64'), 1);
  // The row's last token of nonzero mass (ArgMax takes the first maximum): rounding cannot pick past it.
  return min(below, argmax(cdf, 1));
}

/**
 * Next tokens int64 [B] from logits [B, V] and one uniform number per row [B]. 'plain' ignores topK/topP (the
 * caller chose it because they are off); 'filtered' applies temperature, top-k, then top-p, the order HF's
 * warpers apply them (the token that crosses top-p is kept; the most likely token always is).
 */
export function sampleTokens(
  logits: Tensor,
  uniform: Tensor,
  sampling: SamplingInputs,
  kind: SamplerKind = 'filtered',
): Tensor {
  const vocab = logits.shape[1];
  if (typeof vocab !== 'number') throw new Error('sampleTokens: the vocabulary size must be known');
  const greedy = lessOrEqual(sampling.temperature, 0);
  const scaled = withTemperature(logits, effectiveTemperature(sampling.temperature));
  if (kind === 'plain') {
    const weights = exp(sub(scaled, reduceMax(scaled, [1], true)));
    const cdf = cumsum(weights, 1);
    const total = gather(cdf, logits.graph.root.constant(vocab - 1, 'int64'), 1); // [B]
    return where(greedy, argmax(logits, 1), firstAbove(cdf, mul(uniform, total)));
  }
  const root = logits.graph.root;
  // top-k: k; top-p alone: the candidates; neither (a filtered graph asked for no filter): the whole vocabulary.
  const candidates = root.constant(Math.min(TOP_P_CANDIDATES, vocab), 'int64');
  const unfiltered = where(less(sampling.topP, 1), candidates, vocab);
  const k = min(where(greater(sampling.topK, 0), sampling.topK, unfiltered), vocab);
  const { values: sorted, indices: order } = topk(scaled, unsqueeze(k, [0])); // [B, k], descending
  const rank = range(root.constant(0, 'int64'), dimOf(sorted, 1)); // [k]
  const massBefore = cumsum(softmax(sorted, 1), 1, { exclusive: true });
  const keep = or(or(less(massBefore, sampling.topP), greaterOrEqual(sampling.topP, 1)), equal(rank, 0));
  const cdf = cumsum(softmax(where(keep, sorted, Number.NEGATIVE_INFINITY), 1), 1);
  const total = gather(cdf, sub(k, 1), 1); // [B]
  const pick = where(greedy, 0, firstAbove(cdf, mul(uniform, total)));
  return squeeze(gatherElements(order, unsqueeze(pick, [1]), 1), [1]);
}

/** The k most likely tokens and their log-probs under softmax(logits / T): { ids int64 [B, k], logprobs [B, k] }. */
export function topAlternatives(
  logits: Tensor,
  temperature: Tensor,
  k: number,
): { ids: Tensor; logprobs: Tensor } {
  const { values, indices } = topk(
    logSoftmax(withTemperature(logits, effectiveTemperature(temperature)), 1),
    k,
  );
  return { ids: indices, logprobs: values };
}
