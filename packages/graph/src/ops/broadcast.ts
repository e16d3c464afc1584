// Broadcasting and its adjoint: Expand, ReduceSum and unbroadcast (the backward of NumPy broadcasting that
// every broadcasting op's gradient uses). They share this module because each one's gradient is built from
// the others. The axis handling of reductions is here too; reduce.ts builds the other reductions on it.
// Imports util.ts, logic.ts and shape.ts only (see util.ts for the order of the op modules).
import { defineOp, GraphError, type GradContext, type OpContext, type OutputInfo, Tensor } from '../graph.js';
import { broadcastShapes } from '../shape.js';
import { type Dim, formatShape, isNumeric } from '../types.js';
import { equal, nonZero } from './logic.js';
import { int64s, reshape, shapeOf, squeeze, staticOrDynamicShape, unsqueeze } from './shape.js';
import { shapeSpec } from './util.js';

const Expand = defineOp({
  type: 'Expand',
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    const spec = shapeSpec(ctx, 1);
    const shape = broadcastShapes([x.shape, spec]);
    if (!shape) return ctx.fail(`cannot expand ${formatShape(x.shape)} to ${formatShape(spec)}`);
    return [{ dtype: x.dtype, shape }];
  },
  grad: ({ inputs: [x], grads: [dy] }) => [unbroadcast(dy!, x!), null],
});

/** Broadcasts x to a shape (numbers and int64 pieces, or a 1-D int64 tensor). */
export function expand(x: Tensor, shape: Tensor | readonly (number | Tensor)[]): Tensor {
  return Expand.one([x, shape instanceof Tensor ? shape : int64s(shape, x)]);
}

/**
 * Sums a broadcast gradient back to the shape of `like` (the backward of NumPy broadcasting):
 * ReduceSum over the leading and the size-1 axes. Axes whose broadcasting cannot be decided at build time
 * (symbolic or unknown dims) are found at run time from Shape(like) == 1.
 */
export function unbroadcast(grad: Tensor, like: Tensor): Tensor {
  const lead = grad.rank - like.rank;
  if (lead < 0) throw new GraphError(`unbroadcast: gradient ${grad} has lower rank than ${like}`);
  const axes: number[] = [];
  let dynamic = false;
  for (let i = 0; i < grad.rank; i++) {
    if (i < lead) {
      axes.push(i);
      continue;
    }
    const want = like.shape[i - lead];
    const have = grad.shape[i];
    if (want === have && want !== null) continue;
    if (want === 1) axes.push(i);
    else if (typeof want !== 'number') dynamic = true;
  }
  let out = axes.length > 0 ? reduceSum(grad, axes, true) : grad;
  if (lead > 0)
    out = squeeze(
      out,
      Array.from({ length: lead }, (_, i) => i),
    );
  if (dynamic) {
    const ones = reshape(nonZero(equal(shapeOf(like), 1)), [-1]);
    out = reshape(reduceSum(out, ones, true, true), shapeOf(like));
  }
  return out;
}

// ---- reductions (opset 18+: axes are an input)

export const reduceAttrs = { keepdims: 'int', noop_with_empty_axes: 'int' } as const;

/** The reduced axes (sorted, non-negative), or null when they are only known at run time. */
export function reducedAxes(ctx: OpContext): number[] | null {
  const x = ctx.input(0);
  const axesT = ctx.inputs[1];
  if (!axesT) return ctx.int('noop_with_empty_axes', 0) ? [] : [...x.shape.keys()];
  if (!axesT.value || axesT.value.some((a) => typeof a !== 'number')) return null;
  const axes = (axesT.value as number[]).map((a) => ctx.axis(a, x.rank)).sort((a, b) => a - b);
  if (new Set(axes).size !== axes.length) ctx.fail(`repeated axes [${axes}]`);
  return axes.length === 0 && !ctx.int('noop_with_empty_axes', 0) ? [...x.shape.keys()] : axes;
}

export function inferReduce(ctx: OpContext, fold?: (values: readonly Dim[]) => Dim): OutputInfo[] {
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
export function keptGrad(ctx: GradContext, t: Tensor): Tensor {
  const axes = reducedAxes(ctx);
  // A scalar broadcasts as is (and unsqueezing a constant seed only makes ORT warn).
  if (ctx.int('keepdims', 1) === 1 || axes === null || axes.length === 0 || t.rank === 0) return t;
  return unsqueeze(t, axes);
}

/** Reduction axes: one axis, a list, null/undefined for all axes, or an int64 tensor computed at run time. */
export type Axes = number | readonly number[] | Tensor | null | undefined;

export function reduceInputs(x: Tensor, axes: Axes): [Tensor, Tensor | null] {
  if (axes === null || axes === undefined) return [x, null];
  if (axes instanceof Tensor) return [x, axes];
  return [x, x.graph.root.constant(typeof axes === 'number' ? [axes] : axes, 'int64')];
}

export const reduceAttrsOf = (keepdims: boolean, noopWithEmptyAxes = false) => ({
  keepdims: keepdims ? 1 : 0,
  noop_with_empty_axes: noopWithEmptyAxes ? 1 : 0,
});

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

/** Sum over axes (all when omitted); keepdims keeps them as size 1. noopWithEmptyAxes: [] means none. */
export function reduceSum(x: Tensor, axes?: Axes, keepdims = false, noopWithEmptyAxes = false): Tensor {
  return ReduceSum.one(reduceInputs(x, axes), reduceAttrsOf(keepdims, noopWithEmptyAxes));
}
