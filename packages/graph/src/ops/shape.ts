// Shape ops: Shape Reshape Transpose Unsqueeze Squeeze Concat Split ConstantOfShape Range Trilu, and
// zerosLike. Their gradient rules use only ops of this module, so of the op modules it imports only util.ts
// (Expand is in broadcast.ts and Slice in indexing.ts: their gradients need ReduceSum and ScatterElements).
import { type ConstTensor, defineOp, GraphError, type OpContext, Tensor } from '../graph.js';
import { dimsCompatible, quotientDim } from '../shape.js';
import { toTypedArray } from '@rlhf/onnx';
import { type DType, type Dim, formatShape, isNumeric, sizeOf } from '../types.js';
import { shapeSpec } from './util.js';

/** An int64 1-D tensor from numbers (a constant) or from pieces (scalars and 1-D tensors, concatenated). */
export function int64s(values: readonly (number | Tensor)[], like: Tensor): Tensor {
  if (values.every((v) => typeof v === 'number'))
    return like.graph.root.constant(values as number[], 'int64');
  const pieces = values.map((v) =>
    typeof v === 'number' ? like.graph.root.constant([v], 'int64') : v.rank === 0 ? unsqueeze(v, [0]) : v,
  );
  return concat(pieces, 0);
}

const Shape = defineOp({
  type: 'Shape',
  attrs: { start: 'int', end: 'int' },
  nonDiff: [0],
  infer: (ctx) => {
    const x = ctx.input(0);
    const clampAxis = (a: number) => Math.min(Math.max(a < 0 ? a + x.rank : a, 0), x.rank);
    const dims = x.shape.slice(clampAxis(ctx.int('start', 0)), clampAxis(ctx.int('end', x.rank)));
    return [{ dtype: 'int64', shape: [dims.length], value: dims }];
  },
});

/** The shape of x as a 1-D int64 tensor (dims start..end). */
export function shapeOf(x: Tensor, start?: number, end?: number): Tensor {
  return Shape.one([x], { start, end });
}

/** The size of an axis as a number when known at build time, else as an int64 scalar computed at run time. */
export function knownDim(x: Tensor, axis: number): number | Tensor {
  const d = x.shape[axis < 0 ? axis + x.rank : axis];
  return typeof d === 'number' ? d : dimOf(x, axis);
}

/** The size of one axis of x as an int64 scalar. */
export function dimOf(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.rank : axis;
  return squeeze(shapeOf(x, a, a + 1), [0]);
}

const Reshape = defineOp({
  type: 'Reshape',
  attrs: { allowzero: 'int' },
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    const spec = shapeSpec(ctx, 1);
    if (spec.filter((d) => d === -1).length > 1) ctx.fail('at most one -1 is allowed');
    const out: Dim[] = spec.map((d, i) => {
      if (d === 0) {
        if (i >= x.rank) ctx.fail(`0 at position ${i} copies a dim the input does not have`);
        return x.shape[i];
      }
      if (typeof d === 'number' && d < -1) ctx.fail(`invalid target dim ${d}`);
      return d;
    });
    const free = out.indexOf(-1);
    if (free >= 0) {
      const q = quotientDim(
        x.shape,
        out.filter((_, i) => i !== free),
      );
      if (typeof q === 'number' && !Number.isInteger(q))
        ctx.fail(`cannot reshape ${formatShape(x.shape)} to ${formatShape(spec)}`);
      out[free] = q;
    }
    const from = sizeOf(x.shape);
    const to = sizeOf(out);
    if (from !== null && to !== null && from !== to)
      ctx.fail(`cannot reshape ${formatShape(x.shape)} (${from} elements) to ${formatShape(spec)}`);
    return [{ dtype: x.dtype, shape: out, value: out.length <= 1 ? x.value : undefined }];
  },
  grad: ({ inputs: [x], grads: [dy] }) => [reshape(dy!, staticOrDynamicShape(x!)), null],
});

/**
 * Reshape (ONNX semantics: 0 copies the input dim, -1 is inferred). The target is a list of numbers and
 * int64 tensors (scalars or 1-D pieces), or one 1-D int64 tensor.
 */
export function reshape(x: Tensor, shape: Tensor | readonly (number | Tensor)[]): Tensor {
  return Reshape.one([x, shape instanceof Tensor ? shape : int64s(shape, x)]);
}

const Transpose = defineOp({
  type: 'Transpose',
  attrs: { perm: 'ints' },
  infer: (ctx) => {
    const x = ctx.input(0);
    const perm = ctx.ints('perm', [...x.shape.keys()].reverse());
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== x.rank || sorted.some((p, i) => p !== i))
      ctx.fail(`perm [${perm}] is not a permutation of ${x.rank} axes`);
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }];
  },
  grad: (ctx) => {
    const perm = ctx.ints('perm', [...ctx.input(0).shape.keys()].reverse());
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [transpose(ctx.grads[0]!, inverse)];
  },
});

/** Permutes axes (default: reverses them). */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  return Transpose.one([x], { perm });
}

/** Swaps the last two axes (matrix transpose of a batch). */
export function transposeLast2(x: Tensor): Tensor {
  const perm = [...x.shape.keys()];
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}

const Unsqueeze = defineOp({
  type: 'Unsqueeze',
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    const rank = x.rank + ctx.ints64(1, 'axes').length;
    const axes = ctx.ints64(1, 'axes').map((a) => ctx.axis(a, rank));
    if (new Set(axes).size !== axes.length) ctx.fail(`repeated axes [${axes}]`);
    const rest = [...x.shape];
    const out = Array.from({ length: rank }, (_, i) => (axes.includes(i) ? 1 : rest.shift()!));
    return [{ dtype: x.dtype, shape: out, value: rank <= 1 ? x.value : undefined }];
  },
  grad: (ctx) => [squeeze(ctx.grads[0]!, ctx.ints64(1, 'axes')), null],
});

/** Inserts size-1 axes at the given positions (of the output). */
export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  return Unsqueeze.one([x, x.graph.root.constant(axes, 'int64')]);
}

const Squeeze = defineOp({
  type: 'Squeeze',
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    const axes = squeezeAxes(ctx);
    for (const a of axes)
      if (!dimsCompatible(x.shape[a], 1)) ctx.fail(`axis ${a} has size ${x.shape[a]}, not 1`);
    const out = x.shape.filter((_, i) => !axes.includes(i));
    return [{ dtype: x.dtype, shape: out, value: out.length <= 1 ? x.value : undefined }];
  },
  grad: (ctx) => [unsqueeze(ctx.grads[0]!, squeezeAxes(ctx)), null],
});

function squeezeAxes(ctx: OpContext): number[] {
  const x = ctx.input(0);
  if (!ctx.inputs[1]) {
    if (x.shape.some((d) => typeof d !== 'number')) ctx.fail('squeeze without axes needs known dims');
    return [...x.shape.keys()].filter((i) => x.shape[i] === 1);
  }
  return ctx.ints64(1, 'axes').map((a) => ctx.axis(a, x.rank));
}

/** Removes size-1 axes (the given ones, or all). */
export function squeeze(x: Tensor, axes?: readonly number[]): Tensor {
  return Squeeze.one([x, axes ? x.graph.root.constant(axes, 'int64') : null]);
}

const Concat = defineOp({
  type: 'Concat',
  attrs: { axis: 'int' },
  infer: (ctx) => {
    const xs = ctx.inputs.map((_, i) => ctx.input(i));
    if (xs.length === 0) ctx.fail('needs at least one input');
    const rank = xs[0].rank;
    const axis = ctx.axis(ctx.int('axis'), rank);
    const out = [...xs[0].shape];
    for (const x of xs) {
      if (x.dtype !== xs[0].dtype) ctx.fail(`dtypes differ: ${xs[0].dtype} and ${x.dtype}`);
      if (x.rank !== rank) ctx.fail(`ranks differ: ${rank} and ${x.rank}`);
      x.shape.forEach((d, i) => {
        if (i === axis) return;
        if (!dimsCompatible(out[i], d)) ctx.fail(`dim ${i} differs: ${out[i]} and ${d}`);
        if (typeof out[i] !== 'number' && d !== null) out[i] = d;
      });
    }
    const along = xs.map((x) => x.shape[axis]);
    out[axis] = along.every((d) => typeof d === 'number')
      ? (along as number[]).reduce((a, b) => a + b, 0)
      : along.filter((d) => d !== 0).length === 1
        ? along.find((d) => d !== 0)!
        : null;
    const value = rank === 1 && xs.every((x) => x.value) ? xs.flatMap((x) => x.value!) : undefined;
    return [{ dtype: xs[0].dtype, shape: out, value }];
  },
  grad: (ctx) => {
    const xs = ctx.inputs as Tensor[];
    const axis = ctx.axis(ctx.int('axis'), xs[0].rank);
    const sizes = xs.map((x) => knownDim(x, axis));
    return split(ctx.grads[0]!, sizes, axis);
  },
});

/** Joins tensors along an axis. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  return Concat.one(xs, { axis });
}

const Split = defineOp({
  type: 'Split',
  attrs: { axis: 'int', num_outputs: 'int' },
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    const axis = ctx.axis(ctx.int('axis', 0), x.rank);
    const dim = x.shape[axis];
    let sizes: Dim[];
    if (ctx.inputs[1]) {
      sizes = [...shapeSpec(ctx, 1)];
      if (sizes.every((s) => typeof s === 'number') && typeof dim === 'number') {
        const total = (sizes as number[]).reduce((a, b) => a + b, 0);
        if (total !== dim) ctx.fail(`split sizes [${sizes}] do not add up to ${dim}`);
      }
    } else {
      const n = ctx.int('num_outputs');
      const chunk = typeof dim === 'number' ? Math.ceil(dim / n) : null;
      sizes = Array.from({ length: n }, (_, i) =>
        chunk === null || typeof dim !== 'number' ? null : Math.min(chunk, dim - i * chunk),
      );
    }
    return sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === axis ? s : d)) }));
  },
  grad: (ctx) => {
    const axis = ctx.int('axis', 0);
    const parts = ctx.outputs.map((y, i) => ctx.grads[i] ?? zerosLike(y));
    return [concat(parts, axis), null];
  },
});

/** Splits x along an axis into pieces of the given sizes (numbers or int64 scalars). */
export function split(x: Tensor, sizes: readonly (number | Tensor)[], axis: number): Tensor[] {
  return Split.apply([x, int64s(sizes, x)], { axis });
}

const ConstantOfShape = defineOp({
  type: 'ConstantOfShape',
  attrs: { value: 'tensor' },
  nonDiff: [0],
  infer: (ctx) => [{ dtype: ctx.tensorAttr('value')?.dtype ?? 'float32', shape: shapeSpec(ctx, 0) }],
});

/** A tensor of the given shape filled with `value`. */
export function constantOfShape(
  shape: Tensor | readonly (number | Tensor)[],
  dtype: DType,
  value: number,
): Tensor {
  const fill: ConstTensor = { dtype, dims: [1], data: toTypedArray(dtype, [value]) };
  if (shape instanceof Tensor) return ConstantOfShape.one([shape], { value: fill });
  const first = shape.find((d): d is Tensor => d instanceof Tensor);
  if (!first) throw new GraphError('constantOfShape: a shape of plain numbers needs Graph.constant');
  return ConstantOfShape.one([int64s(shape, first)], { value: fill });
}

/** Zeros with the dtype and (runtime) shape of `like`. */
export function zerosLike(like: Tensor): Tensor {
  return constantOfShape(staticOrDynamicShape(like), like.dtype, 0);
}

/** A constant shape when every dim is known, else the Shape of the tensor at run time. */
export function staticOrDynamicShape(t: Tensor): Tensor {
  return sizeOf(t.shape) !== null ? t.graph.root.constant(t.shape as number[], 'int64') : shapeOf(t);
}

const Range = defineOp({
  type: 'Range',
  nonDiff: [0, 1, 2],
  infer: (ctx) => {
    const [start, limit, delta] = [ctx.input(0), ctx.input(1), ctx.input(2)];
    for (const t of [start, limit, delta]) {
      if (t.rank !== 0) ctx.fail('start, limit and delta must be scalars');
      if (t.dtype !== start.dtype || !isNumeric(t.dtype))
        ctx.fail('start, limit and delta must share a numeric dtype');
    }
    const [s, l, d] = [start.value?.[0], limit.value?.[0], delta.value?.[0]];
    let n: Dim = null;
    if (typeof s === 'number' && typeof l === 'number' && typeof d === 'number')
      n = Math.max(0, Math.ceil((l - s) / d));
    else if (s === 0 && d === 1 && l !== undefined) n = l;
    const value =
      typeof n === 'number' && n <= 64 && typeof s === 'number' && typeof d === 'number'
        ? Array.from({ length: n }, (_, i) => s + i * d)
        : undefined;
    return [{ dtype: start.dtype, shape: [n], value }];
  },
});

/** [start, start + delta, ...) below limit; numbers take the dtype of the tensor argument (int64 default). */
export function range(start: number | Tensor, limit: number | Tensor, delta: number | Tensor = 1): Tensor {
  const like = [start, limit, delta].find((v): v is Tensor => v instanceof Tensor);
  if (!like) throw new GraphError('range: give at least one tensor argument (or use Graph.constant)');
  const c = (v: number | Tensor) => (v instanceof Tensor ? v : like.graph.root.constant(v, like.dtype));
  return Range.one([c(start), c(limit), c(delta)]);
}

const Trilu = defineOp({
  type: 'Trilu',
  attrs: { upper: 'int' },
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    if (x.rank < 2) ctx.fail('needs rank >= 2');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  grad: (ctx) => [Trilu.one([ctx.grads[0]!, ctx.inputs[1]], ctx.attrs), null],
});

/** Keeps the lower (or upper) triangle of the last two axes, shifted by diagonal k; zeros elsewhere. */
export function triangle(x: Tensor, upper: boolean, k = 0): Tensor {
  return Trilu.one([x, k === 0 ? null : x.graph.root.constant(k, 'int64')], { upper: upper ? 1 : 0 });
}
