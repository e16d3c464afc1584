// The preference losses, one function per formula, each per pair [P] (the trainer takes their weighted mean).
// Inputs are sequence log-probs: the sum over a response's tokens of log π(token), for the policy and the frozen
// reference, of the better ("chosen", w) and worse ("rejected", l) response of each pair. Names follow TRL.
import {
  div,
  greater,
  logSigmoid,
  logSoftmax,
  max,
  min,
  mul,
  neg,
  reduceSum,
  relu,
  sub,
  type Tensor,
  unsqueeze,
  where,
} from '@rlhf/graph';

/**
 * The DPO logits z = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l)) (Rafailov et al. 2023 eq. 7):
 * β·z is the implicit reward margin of the pair.
 */
export function dpoLogits(chosen: Tensor, rejected: Tensor, refChosen: Tensor, refRejected: Tensor): Tensor {
  return sub(sub(chosen, refChosen), sub(rejected, refRejected));
}

/**
 * DPO (Rafailov et al. 2023 eq. 7) with label smoothing ε, conservative DPO (Mitchell 2023):
 * −(1 − ε) log σ(β z) − ε log σ(−β z).
 */
export function sigmoidLoss(z: Tensor, beta: number, labelSmoothing = 0): Tensor {
  const bz = mul(z, beta);
  const loss = mul(neg(logSigmoid(bz)), 1 - labelSmoothing);
  return labelSmoothing === 0 ? loss : sub(loss, mul(logSigmoid(neg(bz)), labelSmoothing));
}

/** IPO (Azar et al. 2023 eq. 17): (z − 1/(2β))², on length-normalised log-probs as TRL computes it. */
export function ipoLoss(z: Tensor, beta: number): Tensor {
  const d = sub(z, 1 / (2 * beta));
  return mul(d, d);
}

/** SLiC hinge (Zhao et al. 2023, as TRL's loss_type 'hinge'): max(0, 1 − β z). */
export function hingeLoss(z: Tensor, beta: number): Tensor {
  return relu(sub(1, mul(z, beta)));
}

/**
 * SimPO (Meng et al. 2024 eq. 6), reference-free: −log σ(β (log π(y_w)/|y_w| − log π(y_l)/|y_l|) − γ), from the
 * mean log-prob per response token of each side.
 */
export function simpoLoss(meanChosen: Tensor, meanRejected: Tensor, beta: number, gamma: number): Tensor {
  return neg(logSigmoid(sub(mul(sub(meanChosen, meanRejected), beta), gamma)));
}

/**
 * PRO (Song et al. 2023 eq. 4), list-wise Plackett–Luce over a ranking y¹ ≻ … ≻ yⁿ of scores r:
 * −Σ_{k<n} log(e^{r_k} / Σ_{i≥k} e^{r_i}), here the mean of a ranking's n − 1 terms. scores, slots [B, K]
 * (slots 1 where a response is; a ranking shorter than K has gaps at its end); returns [B].
 */
export function plackettLuceLoss(scores: Tensor, slots: Tensor, K: number): Tensor {
  const g = scores.graph.root;
  const upper = (strict: boolean) =>
    g.constant(
      Array.from({ length: K * K }, (_, n) =>
        n % K > Math.floor(n / K) || (!strict && n % K === Math.floor(n / K)) ? 1 : 0,
      ),
      scores.dtype,
      [K, K],
    );
  const candidates = mul(unsqueeze(slots, [1]), upper(false)); // [B, K, K]: responses i >= k still in the race
  const logp = logSoftmax(where(greater(candidates, 0.5), unsqueeze(scores, [1]), -1e9), -1);
  const identity = g.constant(
    Array.from({ length: K * K }, (_, n) => (n % K === Math.floor(n / K) ? 1 : 0)),
    scores.dtype,
    [K, K],
  );
  const chosen = reduceSum(mul(logp, identity), -1); // [B, K]: log P(y_k first among y_k..y_n)
  // A term for each real response that has a real one after it.
  const terms = mul(slots, min(reduceSum(mul(unsqueeze(slots, [1]), upper(true)), -1), 1));
  return div(neg(reduceSum(mul(chosen, terms), -1)), max(reduceSum(terms, -1), 1));
}

/** RRHF (Yuan et al. 2023 eq. 2) per pair: max(0, p_worse − p_better) of length-normalised log-probs. */
export function rrhfRankLoss(better: Tensor, worse: Tensor): Tensor {
  return relu(sub(worse, better));
}
