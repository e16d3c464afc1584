// Neural-network ops: Softmax LogSoftmax Gelu (tanh form) LayerNormalization.
import { defineOp, type OpContext, type OutputInfo, type Tensor } from '../graph.js';
import { dimsCompatible } from '../shape.js';
import { formatShape, isFloat } from '../types.js';
import { add, div, exp, mul, sqrt, sub, tanh } from './arith.js';
import { reduceSum, unbroadcast } from './broadcast.js';
import { reduceMean } from './reduce.js';

function inferAlongAxis(ctx: OpContext): OutputInfo[] {
  const x = ctx.input(0);
  if (!isFloat(x.dtype)) ctx.fail(`dtype ${x.dtype} is not supported`);
  ctx.axis(ctx.int('axis', -1), x.rank);
  return [{ dtype: x.dtype, shape: x.shape }];
}

const Softmax = defineOp({
  type: 'Softmax',
  attrs: { axis: 'int' },
  infer: inferAlongAxis,
  // dx = y * (dy - sum(dy * y))
  grad: (ctx) => {
    const y = ctx.outputs[0];
    const dy = ctx.grads[0]!;
    return [mul(y, sub(dy, reduceSum(mul(dy, y), ctx.int('axis', -1), true)))];
  },
});

const LogSoftmax = defineOp({
  type: 'LogSoftmax',
  attrs: { axis: 'int' },
  infer: inferAlongAxis,
  // dx = dy - softmax(x) * sum(dy)
  grad: (ctx) => {
    const dy = ctx.grads[0]!;
    return [sub(dy, mul(exp(ctx.outputs[0]), reduceSum(dy, ctx.int('axis', -1), true)))];
  },
});

export const softmax = (x: Tensor, axis = -1): Tensor => Softmax.one([x], { axis });
export const logSoftmax = (x: Tensor, axis = -1): Tensor => LogSoftmax.one([x], { axis });

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

const Gelu = defineOp({
  type: 'Gelu',
  attrs: { approximate: 'string' },
  infer: (ctx) => {
    if (ctx.str('approximate', 'none') !== 'tanh') ctx.fail("only approximate = 'tanh' is supported");
    return inferAlongAxis(ctx);
  },
  // y = x/2 (1 + tanh u), u = c (x + a x^3): dy/dx = (1 + t)/2 + x/2 (1 - t^2) c (1 + 3 a x^2)
  grad: (ctx) => {
    const x = ctx.input(0);
    const x2 = mul(x, x);
    const t = tanh(mul(add(x, mul(mul(x2, x), GELU_A)), GELU_C));
    const du = mul(add(mul(x2, 3 * GELU_A), 1), GELU_C);
    const local = add(mul(add(t, 1), 0.5), mul(mul(mul(x, 0.5), sub(1, mul(t, t))), du));
    return [mul(ctx.grads[0]!, local)];
  },
});

/** GELU, tanh approximation (Hendrycks & Gimpel 2016; GPT-2's form). */
export const gelu = (x: Tensor): Tensor => Gelu.one([x], { approximate: 'tanh' });

const LayerNormalization = defineOp({
  type: 'LayerNormalization',
  attrs: { axis: 'int', epsilon: 'float', stash_type: 'int' },
  infer: (ctx) => {
    const x = ctx.input(0);
    if (!isFloat(x.dtype)) ctx.fail(`dtype ${x.dtype} is not supported`);
    const axis = ctx.axis(ctx.int('axis', -1), x.rank);
    const normalized = x.shape.slice(axis);
    for (const i of [1, 2]) {
      const p = ctx.inputs[i];
      if (!p) continue;
      if (p.dtype !== x.dtype) ctx.fail(`input ${i} dtype ${p.dtype} differs from ${x.dtype}`);
      if (
        p.rank > normalized.length ||
        p.shape.some((d, j) => !dimsCompatible(d, normalized[normalized.length - p.rank + j]))
      )
        ctx.fail(
          `input ${i} ${formatShape(p.shape)} does not match normalized dims ${formatShape(normalized)}`,
        );
    }
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  // Recomputes the statistics (standard ops only): xhat = (x - mean) / sqrt(var + eps),
  // dx = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / sqrt(var + eps) with dxhat = dy * scale.
  grad: (ctx) => {
    const [x, scale, bias] = ctx.inputs;
    const dy = ctx.grads[0]!;
    const axis = ctx.axis(ctx.int('axis', -1), x!.rank);
    const axes = Array.from({ length: x!.rank - axis }, (_, i) => axis + i);
    const centered = sub(x!, reduceMean(x!, axes, true));
    const inv = div(
      1,
      sqrt(add(reduceMean(mul(centered, centered), axes, true), ctx.float('epsilon', 1e-5))),
    );
    const xhat = mul(centered, inv);
    const dxhat = mul(dy, scale!);
    const dx = mul(
      inv,
      sub(sub(dxhat, reduceMean(dxhat, axes, true)), mul(xhat, reduceMean(mul(dxhat, xhat), axes, true))),
    );
    return [
      dx,
      ctx.wants(1) ? unbroadcast(mul(dy, xhat), scale!) : null,
      bias && ctx.wants(2) ? unbroadcast(dy, bias) : null,
    ];
  },
});

/** Layer normalization over the axes from `axis` on (Ba et al. 2016), with scale and optional bias. */
export function layerNorm(x: Tensor, scale: Tensor, bias: Tensor | null, epsilon = 1e-5, axis = -1): Tensor {
  return LayerNormalization.one([x, scale, bias], { axis, epsilon });
}
