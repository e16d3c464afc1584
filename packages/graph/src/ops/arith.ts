// Elementwise arithmetic and math: Add Sub Mul Div Pow Max Min, Neg Abs Sqrt Exp Log Tanh Sigmoid Relu
// Reciprocal Sign Floor Sin Cos, Clip, Where, Cast, Identity/StopGradient; softplus and logSigmoid
// composites. Imports util.ts, logic.ts and broadcast.ts (see util.ts for the order of the op modules).
import { dataTypeFromCode, ONNX_DATA_TYPE } from '@rlhf/onnx';
import { defineOp, type GradContext, type OpContext, type OutputInfo, Tensor } from '../graph.js';
import { broadcastShapes } from '../shape.js';
import { type DType, formatShape, isFloat, isNumeric } from '../types.js';
import { unbroadcast } from './broadcast.js';
import { and, greater, greaterOrEqual, less, lessOrEqual } from './logic.js';
import { inferBroadcast, lift, type Operand } from './util.js';

const Add = defineOp({
  type: 'Add',
  infer: (ctx) => inferBroadcast(ctx, isNumeric, undefined, (a, b) => a + b),
  grad: ({ inputs: [a, b], grads: [dy] }) => [unbroadcast(dy!, a!), unbroadcast(dy!, b!)],
});

const Sub = defineOp({
  type: 'Sub',
  infer: (ctx) => inferBroadcast(ctx, isNumeric, undefined, (a, b) => a - b),
  grad: ({ inputs: [a, b], grads: [dy] }) => [unbroadcast(dy!, a!), unbroadcast(neg(dy!), b!)],
});

const Mul = defineOp({
  type: 'Mul',
  infer: (ctx) => inferBroadcast(ctx, isNumeric, undefined, (a, b) => a * b),
  grad: (ctx) => {
    const [a, b] = ctx.inputs as Tensor[];
    const dy = ctx.grads[0]!;
    return [
      ctx.wants(0) ? unbroadcast(mul(dy, b), a) : null,
      ctx.wants(1) ? unbroadcast(mul(dy, a), b) : null,
    ];
  },
});

const Div = defineOp({
  type: 'Div',
  infer: (ctx) => inferBroadcast(ctx, isNumeric, undefined, (a, b) => Math.trunc(a / b)),
  // d(a/b)/da = 1/b, d(a/b)/db = -(a/b)/b
  grad: (ctx) => {
    const [a, b] = ctx.inputs as Tensor[];
    const dy = ctx.grads[0]!;
    return [
      ctx.wants(0) ? unbroadcast(div(dy, b), a) : null,
      ctx.wants(1) ? unbroadcast(neg(div(mul(dy, ctx.outputs[0]), b)), b) : null,
    ];
  },
});

const Pow = defineOp({
  type: 'Pow',
  infer: (ctx) => inferBroadcast(ctx, isFloat),
  // d(a^b)/da = b a^(b-1), d(a^b)/db = a^b ln a
  grad: (ctx) => {
    const [a, b] = ctx.inputs as Tensor[];
    const dy = ctx.grads[0]!;
    return [
      ctx.wants(0) ? unbroadcast(mul(dy, mul(b, pow(a, sub(b, 1)))), a) : null,
      ctx.wants(1) ? unbroadcast(mul(dy, mul(ctx.outputs[0], log(a))), b) : null,
    ];
  },
});

// The gradient of max/min goes to the selected operand (ties go to the first).
const Max = defineOp({
  type: 'Max',
  infer: (ctx) => inferBroadcast(ctx, isNumeric),
  grad: ({ inputs: [a, b], grads: [dy] }) => {
    const first = greaterOrEqual(a!, b!);
    return [unbroadcast(where(first, dy!, 0), a!), unbroadcast(where(first, 0, dy!), b!)];
  },
});

const Min = defineOp({
  type: 'Min',
  infer: (ctx) => inferBroadcast(ctx, isNumeric),
  grad: ({ inputs: [a, b], grads: [dy] }) => {
    const first = lessOrEqual(a!, b!);
    return [unbroadcast(where(first, dy!, 0), a!), unbroadcast(where(first, 0, dy!), b!)];
  },
});

export const add = (a: Operand, b: Operand): Tensor => Add.one(lift(a, b));
export const sub = (a: Operand, b: Operand): Tensor => Sub.one(lift(a, b));
export const mul = (a: Operand, b: Operand): Tensor => Mul.one(lift(a, b));
export const div = (a: Operand, b: Operand): Tensor => Div.one(lift(a, b));
export const pow = (a: Operand, b: Operand): Tensor => Pow.one(lift(a, b));
/** Elementwise maximum of two tensors (ONNX Max). */
export const max = (a: Operand, b: Operand): Tensor => Max.one(lift(a, b));
/** Elementwise minimum of two tensors (ONNX Min). */
export const min = (a: Operand, b: Operand): Tensor => Min.one(lift(a, b));

/** Shape rule of elementwise unary ops. */
function inferUnary(ctx: OpContext, accepts: (dtype: DType) => boolean): OutputInfo[] {
  const x = ctx.input(0);
  if (!accepts(x.dtype)) ctx.fail(`dtype ${x.dtype} is not supported`);
  return [{ dtype: x.dtype, shape: x.shape }];
}

function unary(type: string, accepts: (dtype: DType) => boolean, grad?: (ctx: GradContext) => Tensor) {
  const op = defineOp({
    type,
    infer: (ctx) => inferUnary(ctx, accepts),
    grad: grad && ((ctx) => [grad(ctx)]),
  });
  return (x: Tensor): Tensor => op.one([x]);
}

const dy = (ctx: GradContext) => ctx.grads[0]!;
const x0 = (ctx: GradContext) => ctx.inputs[0]!;
const y0 = (ctx: GradContext) => ctx.outputs[0];

export const neg = unary('Neg', isNumeric, (c) => neg(dy(c)));
export const abs = unary('Abs', isNumeric, (c) => mul(dy(c), sign(x0(c))));
/** -1, 0 or 1 (no gradient). */
export const sign = unary('Sign', isNumeric);
export const sqrt = unary('Sqrt', isFloat, (c) => div(mul(dy(c), 0.5), y0(c)));
export const exp = unary('Exp', isFloat, (c) => mul(dy(c), y0(c)));
export const log = unary('Log', isFloat, (c) => div(dy(c), x0(c)));
export const tanh = unary('Tanh', isFloat, (c) => mul(dy(c), sub(1, mul(y0(c), y0(c)))));
export const sigmoid = unary('Sigmoid', isFloat, (c) => mul(dy(c), mul(y0(c), sub(1, y0(c)))));
export const relu = unary('Relu', isFloat, (c) => where(greater(x0(c), 0), dy(c), 0));
export const reciprocal = unary('Reciprocal', isFloat, (c) => neg(mul(dy(c), mul(y0(c), y0(c)))));

/**
 * log(1 + e^x), stable for large |x| (ORT has no float64 Softplus): x + log(1 + e^−x) where x > 0, else
 * log(1 + e^x). Each branch only sees values it cannot overflow on, so the unused one passes a 0 gradient (not
 * NaN), and the gradient is σ(x) everywhere, also at x = 0 where relu(x) + log(1 + e^−|x|) would give 0.
 */
export const softplus = (x: Tensor): Tensor => {
  const positive = relu(x); // x where x > 0, else 0
  const nonPositive = sub(x, positive); // x where x <= 0, else 0; its derivative at 0 is 1
  return where(greater(x, 0), add(positive, log(add(exp(neg(positive)), 1))), log(add(exp(nonPositive), 1)));
};

/** log(sigmoid(x)) = -softplus(-x), stable for large |x| (Bradley-Terry losses). */
export const logSigmoid = (x: Tensor): Tensor => neg(softplus(neg(x)));
export const sin = unary('Sin', isFloat, (c) => mul(dy(c), cos(x0(c))));
export const cos = unary('Cos', isFloat, (c) => neg(mul(dy(c), sin(x0(c)))));
/** Rounds down (no gradient). */
export const floor = unary('Floor', isFloat);

const Clip = defineOp({
  type: 'Clip',
  infer: (ctx) => {
    const x = ctx.input(0);
    for (const i of [1, 2]) {
      const bound = ctx.inputs[i];
      if (bound && (bound.rank !== 0 || bound.dtype !== x.dtype))
        ctx.fail(`bound ${i} must be a ${x.dtype} scalar`);
    }
    return inferUnary(ctx, isNumeric);
  },
  // Gradient passes where lo <= x <= hi; below/above it flows to the bound.
  grad: (ctx) => {
    const [x, lo, hi] = ctx.inputs;
    const g = dy(ctx);
    let inside: Tensor | null = null;
    if (lo) inside = greaterOrEqual(x!, lo);
    if (hi) inside = inside ? and(inside, lessOrEqual(x!, hi)) : lessOrEqual(x!, hi);
    return [
      inside ? where(inside, g, 0) : g,
      lo && ctx.wants(1) ? unbroadcast(where(less(x!, lo), g, 0), lo) : null,
      hi && ctx.wants(2) ? unbroadcast(where(less(hi, x!), g, 0), hi) : null,
    ];
  },
});

/** Clamps x to [lo, hi] (either may be omitted with null). */
export function clip(x: Tensor, lo: Operand | null, hi: Operand | null): Tensor {
  const bound = (v: Operand | null) => (v === null ? null : v instanceof Tensor ? v : lift(v, x)[0]);
  return Clip.one([x, bound(lo), bound(hi)]);
}

const Where = defineOp({
  type: 'Where',
  nonDiff: [0],
  infer: (ctx) => {
    const [cond, a, b] = [ctx.input(0), ctx.input(1), ctx.input(2)];
    if (cond.dtype !== 'bool') ctx.fail(`condition must be bool, not ${cond.dtype}`);
    if (a.dtype !== b.dtype) ctx.fail(`dtypes differ: ${a.dtype} and ${b.dtype}`);
    const shape = broadcastShapes([cond.shape, a.shape, b.shape]);
    if (!shape)
      return ctx.fail(`shapes ${[cond, a, b].map((t) => formatShape(t.shape)).join(', ')} do not broadcast`);
    return [{ dtype: a.dtype, shape }];
  },
  grad: (ctx) => {
    const [cond, a, b] = ctx.inputs as Tensor[];
    const dy = ctx.grads[0]!;
    return [
      null,
      ctx.wants(1) ? unbroadcast(where(cond, dy, 0), a) : null,
      ctx.wants(2) ? unbroadcast(where(cond, 0, dy), b) : null,
    ];
  },
});

/** cond ? a : b elementwise, with broadcasting; a number takes the dtype of the other branch. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const [x, y] = lift(a, b);
  return Where.one([cond, x, y]);
}

const Cast = defineOp({
  type: 'Cast',
  attrs: { to: 'int', saturate: 'int' },
  infer: (ctx) => {
    const x = ctx.input(0);
    const to = dataTypeFromCode(ctx.int('to'));
    return [{ dtype: to, shape: x.shape, value: to === 'int64' || to === 'int32' ? x.value : undefined }];
  },
  // Float-to-float casts pass the gradient back in the input's precision; integer sources have none.
  grad: (ctx) => [isFloat(x0(ctx).dtype) ? cast(dy(ctx), x0(ctx).dtype) : null],
});

export function cast(x: Tensor, to: DType): Tensor {
  return x.dtype === to ? x : Cast.one([x], { to: ONNX_DATA_TYPE[to] });
}

const Identity = defineOp({
  type: 'Identity',
  infer: (ctx) => [{ dtype: ctx.input(0).dtype, shape: ctx.input(0).shape, value: ctx.input(0).value }],
  grad: (ctx) => [dy(ctx)],
});

/** A copy of x under a new node (graph outputs, loop outputs). */
export const identity = (x: Tensor): Tensor => Identity.one([x]);

const StopGradient = defineOp({
  type: 'Identity',
  name: 'StopGradient',
  nonDiff: [0],
  infer: (ctx) => [{ dtype: ctx.input(0).dtype, shape: ctx.input(0).shape, value: ctx.input(0).value }],
  grad: () => [null],
});

/** x, treated as a constant by autodiff (the gradient does not flow through it). */
export const stopGradient = (x: Tensor): Tensor => StopGradient.one([x]);
