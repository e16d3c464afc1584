// Helpers shared by op builders and gradient rules.
import { GraphError, Tensor } from '../graph.js';
import { sizeOf } from '../types.js';
import { equal } from './logic.js';
import { reduceSum } from './reduce.js';
import { constantOfShape, reshape, shapeOf, squeeze } from './shape.js';
import { nonZero } from './indexing.js';

/** A tensor or a plain number; numbers become constants with the dtype of the other operand. */
export type Operand = Tensor | number;

/** Turns number operands into scalar constants of the other operand's dtype (so models build in any float). */
export function lift(a: Operand, b: Operand): [Tensor, Tensor] {
  if (a instanceof Tensor) return [a, b instanceof Tensor ? b : scalarLike(b, a)];
  if (b instanceof Tensor) return [scalarLike(a, b), b];
  throw new GraphError(`an op needs at least one tensor operand (got the numbers ${a} and ${b})`);
}

/** A scalar constant with the dtype of `like`. */
export const scalarLike = (value: number, like: Tensor): Tensor =>
  like.graph.root.constant(value, like.dtype);

/** Zeros with the dtype and (runtime) shape of `like`. */
export function zerosLike(like: Tensor): Tensor {
  return constantOfShape(staticOrDynamicShape(like), like.dtype, 0);
}

/** A constant shape when every dim is known, else the Shape of the tensor at run time. */
export function staticOrDynamicShape(t: Tensor): Tensor {
  return sizeOf(t.shape) !== null ? t.graph.root.constant(t.shape as number[], 'int64') : shapeOf(t);
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
