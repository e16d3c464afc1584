// MatMul with NumPy semantics: batched, broadcasting batch dims, 1-D operands promoted and squeezed.
import { defineOp, type Tensor } from '../graph.js';
import { broadcastShapes, dimsCompatible } from '../shape.js';
import { formatShape, isFloat } from '../types.js';
import { unbroadcast } from './broadcast.js';
import { squeeze, transposeLast2, unsqueeze } from './shape.js';

const MatMul = defineOp({
  type: 'MatMul',
  infer: (ctx) => {
    const [a, b] = [ctx.input(0), ctx.input(1)];
    if (a.dtype !== b.dtype) ctx.fail(`dtypes differ: ${a.dtype} and ${b.dtype}`);
    if (!isFloat(a.dtype)) ctx.fail(`dtype ${a.dtype} is not supported`);
    if (a.rank === 0 || b.rank === 0) ctx.fail('operands must have rank >= 1');
    const as = a.rank === 1 ? [1, a.shape[0]] : a.shape;
    const bs = b.rank === 1 ? [b.shape[0], 1] : b.shape;
    const k1 = as[as.length - 1];
    const k2 = bs[bs.length - 2];
    if (!dimsCompatible(k1, k2))
      ctx.fail(`inner dimensions differ: ${formatShape(a.shape)} @ ${formatShape(b.shape)} (${k1} vs ${k2})`);
    const batch = broadcastShapes([as.slice(0, -2), bs.slice(0, -2)]);
    if (!batch)
      return ctx.fail(`batch dims of ${formatShape(a.shape)} and ${formatShape(b.shape)} do not broadcast`);
    const shape = [...batch];
    if (a.rank > 1) shape.push(as[as.length - 2]);
    if (b.rank > 1) shape.push(bs[bs.length - 1]);
    return [{ dtype: a.dtype, shape }];
  },
  // dA = dY @ B^T, dB = A^T @ dY, summed over broadcast batch dims (1-D operands as [1,k] / [k,1]).
  grad: (ctx) => {
    const [a, b] = ctx.inputs as Tensor[];
    let g = ctx.grads[0]!;
    const A = a.rank === 1 ? unsqueeze(a, [0]) : a;
    const B = b.rank === 1 ? unsqueeze(b, [1]) : b;
    if (a.rank === 1) g = unsqueeze(g, [Math.max(g.rank - 1, 0)]);
    if (b.rank === 1) g = unsqueeze(g, [g.rank]);
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (ctx.wants(0)) {
      da = unbroadcast(matmul(g, transposeLast2(B)), A);
      if (a.rank === 1) da = squeeze(da, [0]);
    }
    if (ctx.wants(1)) {
      db = unbroadcast(matmul(transposeLast2(A), g), B);
      if (b.rank === 1) db = squeeze(db, [1]);
    }
    return [da, db];
  },
});

/** Matrix product (NumPy matmul semantics). */
export const matmul = (a: Tensor, b: Tensor): Tensor => MatMul.one([a, b]);
