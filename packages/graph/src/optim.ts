// Optimizers as graph ops: AdamW and global-norm gradient clipping.
import type { Tensor } from './graph.js';
import { add, cast, div, min, mul, pow, sqrt, sub } from './ops/arith.js';
import { reduceSum } from './ops/broadcast.js';

export interface AdamWOptions {
  /** Learning rate (a scalar tensor, so schedules are computed on the host and fed per step). */
  lr: Tensor | number;
  /** 1-based number of this optimizer step (int64 or float scalar), for bias correction. */
  step: Tensor;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Per-parameter: apply weight decay (default true for every parameter). */
  decay?: readonly boolean[];
}

export interface AdamWResult {
  params: Tensor[];
  m: Tensor[];
  v: Tensor[];
}

/**
 * AdamW (Loshchilov & Hutter 2019, Alg. 2; PyTorch's formulation): decoupled weight decay p -= lr wd p,
 * moments m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
 */
export function adamw(
  params: readonly Tensor[],
  grads: readonly Tensor[],
  state: { m: readonly Tensor[]; v: readonly Tensor[] },
  opts: AdamWOptions,
): AdamWResult {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = opts;
  const out: AdamWResult = { params: [], m: [], v: [] };
  // Bias corrections in float64, as torch computes them: in float32, 1 - 0.999 is off by 1.3e-5 (relative).
  const t = cast(opts.step, 'float64');
  const correction1 = sub(1, pow(beta1, t));
  const correction2 = sub(1, pow(beta2, t));
  params.forEach((p, i) => {
    const g = grads[i];
    const lr = typeof opts.lr === 'number' ? opts.lr : cast(opts.lr, p.dtype);
    const m = add(mul(state.m[i], beta1), mul(g, 1 - beta1));
    const v = add(mul(state.v[i], beta2), mul(mul(g, g), 1 - beta2));
    const mHat = div(m, cast(correction1, p.dtype));
    const vHat = div(v, cast(correction2, p.dtype));
    const decayed = weightDecay > 0 && (opts.decay?.[i] ?? true) ? sub(p, mul(mul(p, lr), weightDecay)) : p;
    out.params.push(sub(decayed, mul(div(mHat, add(sqrt(vHat), eps)), lr)));
    out.m.push(m);
    out.v.push(v);
  });
  return out;
}

/** sqrt of the sum of squares of all gradients (in the first gradient's dtype). */
export function globalNorm(grads: readonly Tensor[]): Tensor {
  const dtype = grads[0].dtype;
  return sqrt(grads.map((g) => cast(reduceSum(mul(g, g)), dtype)).reduce((a, b) => add(a, b)));
}

/** Scales gradients so their global norm is at most maxNorm (PyTorch clip_grad_norm_); returns the norm before. */
export function clipByGlobalNorm(
  grads: readonly Tensor[],
  maxNorm: number,
): { grads: Tensor[]; norm: Tensor } {
  const norm = globalNorm(grads);
  const scale = min(div(maxNorm, add(norm, 1e-6)), 1);
  return { grads: grads.map((g) => mul(g, cast(scale, g.dtype))), norm };
}
