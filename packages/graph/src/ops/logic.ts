// Comparisons, boolean logic and NonZero. None has a gradient: a loss that depends on parameters through
// them fails at build time (use where(), relu() or stopGradient() to say what you mean). Where, which has
// one, is in arith.ts. Imports only util.ts (see there for the order of the op modules).
import { defineOp, type Tensor } from '../graph.js';
import { isNumeric } from '../types.js';
import { inferBroadcast, lift, type Operand } from './util.js';

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

const NonZero = defineOp({
  type: 'NonZero',
  infer: (ctx) => [{ dtype: 'int64', shape: [ctx.input(0).rank, null] }],
});

/** Indices of the non-zero elements, shape [rank, count]. */
export const nonZero = (x: Tensor): Tensor => NonZero.one([x]);
