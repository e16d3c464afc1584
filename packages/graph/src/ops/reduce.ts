// Reductions: ReduceMean ReduceMax ReduceMin ReduceProd (opset 18+: axes are an input). ReduceSum and the
// axis handling are in broadcast.ts, since every broadcasting op's gradient needs ReduceSum.
import { defineOp, type GradContext, type Tensor } from '../graph.js';
import { productDim } from '../shape.js';
import { cast, div, where } from './arith.js';
import {
  type Axes,
  expand,
  inferReduce,
  keptGrad,
  reduceAttrs,
  reduceAttrsOf,
  reducedAxes,
  reduceInputs,
} from './broadcast.js';
import { gather } from './indexing.js';
import { equal } from './logic.js';
import { shapeOf, staticOrDynamicShape } from './shape.js';

const ReduceMean = defineOp({
  type: 'ReduceMean',
  attrs: reduceAttrs,
  nonDiff: [1],
  infer: (ctx) => inferReduce(ctx),
  grad: (ctx) => {
    const x = ctx.input(0);
    const axes = reducedAxes(ctx);
    if (axes === null) return ctx.fail('gradient needs constant axes');
    const dims = axes.map((a) => x.shape[a]);
    const known = productDim(dims);
    const count =
      typeof known === 'number'
        ? known
        : cast(reduceProd(gather(shapeOf(x), x.graph.root.constant(axes, 'int64')), 0), x.dtype);
    return [div(expand(keptGrad(ctx, ctx.grads[0]!), staticOrDynamicShape(x)), count), null];
  },
});

// The gradient of max/min goes to every element equal to the result.
function extremumGrad(ctx: GradContext) {
  const x = ctx.input(0);
  const selected = equal(x, keptGrad(ctx, ctx.outputs[0]));
  return [where(selected, keptGrad(ctx, ctx.grads[0]!), 0), null];
}

const ReduceMax = defineOp({
  type: 'ReduceMax',
  attrs: reduceAttrs,
  nonDiff: [1],
  infer: (ctx) => inferReduce(ctx),
  grad: extremumGrad,
});

const ReduceMin = defineOp({
  type: 'ReduceMin',
  attrs: reduceAttrs,
  nonDiff: [1],
  infer: (ctx) => inferReduce(ctx),
  grad: extremumGrad,
});

const ReduceProd = defineOp({
  type: 'ReduceProd',
  attrs: reduceAttrs,
  nonDiff: [1],
  infer: (ctx) => inferReduce(ctx, productDim),
});

export function reduceMean(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return ReduceMean.one(reduceInputs(x, axes), reduceAttrsOf(keepdims));
}

export function reduceMax(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return ReduceMax.one(reduceInputs(x, axes), reduceAttrsOf(keepdims));
}

export function reduceMin(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return ReduceMin.one(reduceInputs(x, axes), reduceAttrsOf(keepdims));
}

/** Product over axes (no gradient; used for element counts). */
export function reduceProd(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return ReduceProd.one(reduceInputs(x, axes), reduceAttrsOf(keepdims));
}
