// Reductions: ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd (opset 18+: axes are an input).
import { defineOp, type GradContext, type OpContext, type OutputInfo, Tensor } from '../graph.js';
import { productDim } from '../shape.js';
import { type Dim, isNumeric } from '../types.js';
import { cast, div } from './arith.js';
import { gather } from './indexing.js';
import { equal, where } from './logic.js';
import { expand, shapeOf, unsqueeze } from './shape.js';
import { staticOrDynamicShape } from './util.js';

const reduceAttrs = { keepdims: 'int', noop_with_empty_axes: 'int' } as const;

/** The reduced axes (sorted, non-negative), or null when they are only known at run time. */
function reducedAxes(ctx: OpContext): number[] | null {
  const x = ctx.input(0);
  const axesT = ctx.inputs[1];
  if (!axesT) return ctx.int('noop_with_empty_axes', 0) ? [] : [...x.shape.keys()];
  if (!axesT.value || axesT.value.some((a) => typeof a !== 'number')) return null;
  const axes = (axesT.value as number[]).map((a) => ctx.axis(a, x.rank)).sort((a, b) => a - b);
  if (new Set(axes).size !== axes.length) ctx.fail(`repeated axes [${axes}]`);
  return axes.length === 0 && !ctx.int('noop_with_empty_axes', 0) ? [...x.shape.keys()] : axes;
}

function inferReduce(ctx: OpContext, fold?: (values: readonly Dim[]) => Dim): OutputInfo[] {
  const x = ctx.input(0);
  if (!isNumeric(x.dtype)) ctx.fail(`dtype ${x.dtype} is not supported`);
  const keep = ctx.int('keepdims', 1) === 1;
  const axes = reducedAxes(ctx);
  if (axes === null) {
    if (!keep) ctx.fail('axes computed at run time need keepdims = 1');
    return [{ dtype: x.dtype, shape: x.shape.map(() => null) }];
  }
  const shape = keep
    ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : x.shape.filter((_, i) => !axes.includes(i));
  const value = fold && x.rank === 1 && x.value && axes.length === 1 ? [fold(x.value)] : undefined;
  return [{ dtype: x.dtype, shape, value }];
}

/** The output gradient with the reduced axes put back as size-1 dims. */
function keptGrad(ctx: GradContext, t: Tensor): Tensor {
  const axes = reducedAxes(ctx);
  // A scalar broadcasts as is (and unsqueezing a constant seed only makes ORT warn).
  if (ctx.int('keepdims', 1) === 1 || axes === null || axes.length === 0 || t.rank === 0) return t;
  return unsqueeze(t, axes);
}

const ReduceSum = defineOp({
  type: 'ReduceSum',
  attrs: reduceAttrs,
  nonDiff: [1],
  infer: (ctx) =>
    inferReduce(ctx, (v) =>
      v.every((d) => typeof d === 'number') ? (v as number[]).reduce((a, b) => a + b, 0) : null,
    ),
  grad: (ctx) => [expand(keptGrad(ctx, ctx.grads[0]!), staticOrDynamicShape(ctx.input(0))), null],
});

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

/** Reduction axes: one axis, a list, null/undefined for all axes, or an int64 tensor computed at run time. */
export type Axes = number | readonly number[] | Tensor | null | undefined;

function reduceInputs(x: Tensor, axes: Axes): [Tensor, Tensor | null] {
  if (axes === null || axes === undefined) return [x, null];
  if (axes instanceof Tensor) return [x, axes];
  return [x, x.graph.root.constant(typeof axes === 'number' ? [axes] : axes, 'int64')];
}

const reduceAttrsOf = (keepdims: boolean, noopWithEmptyAxes = false) => ({
  keepdims: keepdims ? 1 : 0,
  noop_with_empty_axes: noopWithEmptyAxes ? 1 : 0,
});

/** Sum over axes (all when omitted); keepdims keeps them as size 1. noopWithEmptyAxes: [] means none. */
export function reduceSum(x: Tensor, axes?: Axes, keepdims = false, noopWithEmptyAxes = false): Tensor {
  return ReduceSum.one(reduceInputs(x, axes), reduceAttrsOf(keepdims, noopWithEmptyAxes));
}

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
