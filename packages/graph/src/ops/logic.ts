// Comparisons, boolean logic and Where. Comparisons have no gradient: a loss that depends on parameters
// through them fails at build time (use where(), relu() or stopGradient() to say what you mean).
import { defineOp, type Tensor } from '../graph.js';
import { broadcastShapes } from '../shape.js';
import { formatShape, isNumeric } from '../types.js';
import { inferBroadcast } from './arith.js';
import { lift, type Operand, unbroadcast } from './util.js';

const isBool = (dtype: string) => dtype === 'bool';

const Equal = defineOp({ type: 'Equal', infer: (ctx) => inferBroadcast(ctx, () => true, 'bool') });
const Less = defineOp({ type: 'Less', infer: (ctx) => inferBroadcast(ctx, isNumeric, 'bool') });
const LessOrEqual = defineOp({ type: 'LessOrEqual', infer: (ctx) => inferBroadcast(ctx, isNumeric, 'bool') });
const Greater = defineOp({ type: 'Greater', infer: (ctx) => inferBroadcast(ctx, isNumeric, 'bool') });
const GreaterOrEqual = defineOp({
  type: 'GreaterOrEqual',
  infer: (ctx) => inferBroadcast(ctx, isNumeric, 'bool'),
});
const And = defineOp({ type: 'And', infer: (ctx) => inferBroadcast(ctx, isBool) });
const Or = defineOp({ type: 'Or', infer: (ctx) => inferBroadcast(ctx, isBool) });
const Xor = defineOp({ type: 'Xor', infer: (ctx) => inferBroadcast(ctx, isBool) });
const Not = defineOp({
  type: 'Not',
  infer: (ctx) => {
    const x = ctx.input(0);
    if (x.dtype !== 'bool') ctx.fail('Not takes a bool tensor');
    return [{ dtype: 'bool', shape: x.shape }];
  },
});

export const equal = (a: Operand, b: Operand): Tensor => Equal.one(lift(a, b));
export const less = (a: Operand, b: Operand): Tensor => Less.one(lift(a, b));
export const lessOrEqual = (a: Operand, b: Operand): Tensor => LessOrEqual.one(lift(a, b));
export const greater = (a: Operand, b: Operand): Tensor => Greater.one(lift(a, b));
export const greaterOrEqual = (a: Operand, b: Operand): Tensor => GreaterOrEqual.one(lift(a, b));
export const and = (a: Tensor, b: Tensor): Tensor => And.one([a, b]);
export const or = (a: Tensor, b: Tensor): Tensor => Or.one([a, b]);
export const xor = (a: Tensor, b: Tensor): Tensor => Xor.one([a, b]);
export const not = (x: Tensor): Tensor => Not.one([x]);

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
