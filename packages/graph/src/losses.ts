// Generic losses built from standard ops (no NegativeLogLikelihoodLoss: it has no CUDA kernel).
import type { Tensor } from './graph.js';
import { div, max, mul, neg } from './ops/arith.js';
import { gatherElements } from './ops/indexing.js';
import { logSoftmax } from './ops/nn.js';
import { reduceSum } from './ops/broadcast.js';
import { reduceMean } from './ops/reduce.js';
import { squeeze, unsqueeze } from './ops/shape.js';

/** logp[..., target]: log-probs [..., V] picked at int64 targets [...] -> [...]. */
export function pickLogProbs(logp: Tensor, targets: Tensor): Tensor {
  const axis = logp.rank - 1;
  return squeeze(gatherElements(logp, unsqueeze(targets, [axis]), axis), [axis]);
}

/** log softmax(logits)[target] at every position: logits [..., V], targets int64 [...] -> [...]. */
export function tokenLogProbs(logits: Tensor, targets: Tensor): Tensor {
  return pickLogProbs(logSoftmax(logits, logits.rank - 1), targets);
}

/** Mean of x over the positions where mask is 1 (mask has x's dtype; an all-zero mask gives 0). */
export function maskedMean(x: Tensor, mask: Tensor): Tensor {
  return div(reduceSum(mul(x, mask)), max(reduceSum(mask), 1));
}

/** Cross-entropy of integer targets under logits, averaged over positions (or over mask = 1 positions). */
export function crossEntropy(logits: Tensor, targets: Tensor, mask?: Tensor): Tensor {
  const nll = neg(tokenLogProbs(logits, targets));
  return mask ? maskedMean(nll, mask) : reduceMean(nll);
}
