// Operands and shape-rule helpers, shared by the op modules. No op is defined or built here, so
// every module under ops/ may import this one. The op modules form a DAG, lowest first:
//   util -> logic, shape -> broadcast -> arith -> indexing -> reduce -> matmul, nn
// (an op's gradient rule may build ops of its own module or of a lower one, never of a higher one).
import { GraphError, type OpContext, type OutputInfo, Tensor } from '../graph.js';
import { broadcastShapes } from '../shape.js';
import { type DType, type Dim, formatShape } from '../types.js';

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

/** The elements of a 1-D int64 shape input: known values, or unknowns of its known length. */
export function shapeSpec(ctx: OpContext, i: number): readonly Dim[] {
  const t = ctx.input(i);
  if (t.dtype !== 'int64' || t.rank !== 1) ctx.fail(`input ${i} must be a 1-D int64 shape, got ${t}`);
  if (t.value) return t.value;
  const n = t.shape[0];
  if (typeof n !== 'number') ctx.fail(`shape input ${i} must have a known length`);
  return Array<Dim>(n).fill(null);
}

/** Shape rule of broadcasting binary ops: same dtype, NumPy broadcast. */
export function inferBroadcast(
  ctx: OpContext,
  accepts: (dtype: DType) => boolean,
  outDtype?: DType,
  fold?: (a: number, b: number) => number,
): OutputInfo[] {
  const a = ctx.input(0);
  const b = ctx.input(1);
  if (a.dtype !== b.dtype) ctx.fail(`dtypes differ: ${a.dtype} and ${b.dtype}`);
  if (!accepts(a.dtype)) ctx.fail(`dtype ${a.dtype} is not supported`);
  const shape = broadcastShapes([a.shape, b.shape]);
  if (!shape) return ctx.fail(`shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} do not broadcast`);
  return [{ dtype: outDtype ?? a.dtype, shape, value: fold && foldValues(a.value, b.value, fold) }];
}

// Integer arithmetic on known shape values (e.g. seqLen * 2), so shapes stay known at build time.
function foldValues(
  a: readonly Dim[] | undefined,
  b: readonly Dim[] | undefined,
  fold: (a: number, b: number) => number,
) {
  if (!a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return undefined;
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length === 1 ? 0 : i];
    const y = b[b.length === 1 ? 0 : i];
    if (typeof x === 'number' && typeof y === 'number') out.push(fold(x, y));
    else if (fold(2, 1) === 2 && y === 1)
      out.push(x); // x*1, x/1
    else if (fold(2, 0) === 2 && y === 0)
      out.push(x); // x+0, x-0
    else return undefined;
  }
  return out;
}
