// Indexing: Gather GatherElements GatherND ScatterND ScatterElements CumSum TopK ArgMax ArgMin, and Slice.
// Imports shape.ts, broadcast.ts and arith.ts (see util.ts for the order of the op modules); NonZero is in
// logic.ts.
import { defineOp, type OpContext, Tensor } from '../graph.js';
import { dimsCompatible } from '../shape.js';
import type { Dim } from '../types.js';
import { cast } from './arith.js';
import { expand } from './broadcast.js';
import {
  constantOfShape,
  int64s,
  knownDim,
  range,
  reshape,
  shapeOf,
  staticOrDynamicShape,
  transpose,
  unsqueeze,
  zerosLike,
} from './shape.js';

function indicesOf(ctx: OpContext, i: number): Tensor {
  const t = ctx.input(i);
  if (t.dtype !== 'int64' && t.dtype !== 'int32') ctx.fail(`indices must be int64 or int32, not ${t.dtype}`);
  return t;
}

const Gather = defineOp({
  type: 'Gather',
  attrs: { axis: 'int' },
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    const idx = indicesOf(ctx, 1);
    const axis = ctx.axis(ctx.int('axis', 0), x.rank);
    const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
    let value: Dim[] | undefined;
    if (x.rank === 1 && x.value && idx.rank <= 1 && idx.value?.every((i) => typeof i === 'number')) {
      const n = x.value.length;
      value = (idx.value as number[]).map((i) => x.value![i < 0 ? i + n : i]);
    }
    return [{ dtype: x.dtype, shape, value }];
  },
  // Backward of a gather is a scatter-add of the gradient rows into zeros (ScatterND, reduction add);
  // the gathered axis is moved to the front first, since ScatterND indexes leading dims.
  grad: (ctx) => {
    const [x, idx] = ctx.inputs as Tensor[];
    const axis = ctx.axis(ctx.int('axis', 0), x.rank);
    const q = idx.rank;
    const dy = ctx.grads[0]!;
    const rest = [...x.shape.keys()].filter((i) => i !== axis);
    const frontX = [axis, ...rest];
    const frontDy = [
      ...Array.from({ length: q }, (_, i) => axis + i),
      ...Array.from({ length: axis }, (_, i) => i),
      ...Array.from({ length: x.rank - axis - 1 }, (_, i) => axis + q + i),
    ];
    const zeros = constantZeros(x, frontX);
    const updates = axis === 0 ? dy : transpose(dy, frontDy);
    const dxFront = scatterND(zeros, unsqueeze(cast(idx, 'int64'), [q]), updates, 'add');
    return [
      axis === 0
        ? dxFront
        : transpose(
            dxFront,
            frontX.map((_, i) => frontX.indexOf(i)),
          ),
      null,
    ];
  },
});

/** Zeros shaped like x with its axes in the given order. */
function constantZeros(x: Tensor, order: readonly number[]): Tensor {
  return constantOfShape(
    int64s(
      order.map((a) => knownDim(x, a)),
      x,
    ),
    x.dtype,
    0,
  );
}

/** x[indices] along an axis (ONNX Gather): embeddings, picking rows. */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  return Gather.one([x, indices], { axis });
}

const GatherElements = defineOp({
  type: 'GatherElements',
  attrs: { axis: 'int' },
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    const idx = indicesOf(ctx, 1);
    const axis = ctx.axis(ctx.int('axis', 0), x.rank);
    if (idx.rank !== x.rank) ctx.fail('indices must have the rank of the data');
    idx.shape.forEach((d, i) => {
      if (i !== axis && typeof d === 'number' && typeof x.shape[i] === 'number' && d > (x.shape[i] as number))
        ctx.fail(`indices dim ${i} (${d}) exceeds data dim (${x.shape[i]})`);
    });
    return [{ dtype: x.dtype, shape: idx.shape }];
  },
  grad: (ctx) => {
    const [x, idx] = ctx.inputs as Tensor[];
    return [scatterElements(zerosLike(x), idx, ctx.grads[0]!, ctx.int('axis', 0), 'add'), null];
  },
});

/** out[i][j] = x[i][indices[i][j]] along an axis (ONNX GatherElements): picks target log-probs. */
export function gatherElements(x: Tensor, indices: Tensor, axis: number): Tensor {
  return GatherElements.one([x, indices], { axis });
}

const GatherND = defineOp({
  type: 'GatherND',
  attrs: { batch_dims: 'int' },
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    const idx = indicesOf(ctx, 1);
    if (ctx.int('batch_dims', 0) !== 0) ctx.fail('only batch_dims = 0 is supported');
    const k = idx.shape[idx.rank - 1];
    if (typeof k !== 'number' || k > x.rank)
      return ctx.fail('the last indices dim must be known and <= data rank');
    return [{ dtype: x.dtype, shape: [...idx.shape.slice(0, -1), ...x.shape.slice(k)] }];
  },
  grad: (ctx) => {
    const [x, idx] = ctx.inputs as Tensor[];
    return [scatterND(zerosLike(x), idx, ctx.grads[0]!, 'add'), null];
  },
});

/** Gathers slices of x addressed by the last axis of indices (ONNX GatherND). */
export function gatherND(x: Tensor, indices: Tensor): Tensor {
  return GatherND.one([x, indices]);
}

type Reduction = 'none' | 'add' | 'mul' | 'max' | 'min';

const ScatterND = defineOp({
  type: 'ScatterND',
  attrs: { reduction: 'string' },
  nonDiff: [1],
  infer: (ctx) => {
    const [data, idx, updates] = [ctx.input(0), indicesOf(ctx, 1), ctx.input(2)];
    if (idx.dtype !== 'int64') ctx.fail('indices must be int64');
    if (updates.dtype !== data.dtype)
      ctx.fail(`updates dtype ${updates.dtype} differs from data ${data.dtype}`);
    const k = idx.shape[idx.rank - 1];
    if (typeof k === 'number') {
      const want = [...idx.shape.slice(0, -1), ...data.shape.slice(k)];
      if (want.length !== updates.rank || want.some((d, i) => !dimsCompatible(d, updates.shape[i])))
        ctx.fail(`updates must have shape [${want}]`);
    }
    return [{ dtype: data.dtype, shape: data.shape }];
  },
  grad: (ctx) => {
    const [, idx, updates] = ctx.inputs as Tensor[];
    const dy = ctx.grads[0]!;
    const reduction = ctx.str('reduction', 'none');
    if (reduction !== 'none' && reduction !== 'add') ctx.fail(`no gradient for reduction '${reduction}'`);
    return [
      reduction === 'add' ? dy : scatterND(dy, idx, zerosLike(updates)),
      null,
      ctx.wants(2) ? gatherND(dy, idx) : null,
    ];
  },
});

/** data with updates written (or added, reduction 'add') at indices (ONNX ScatterND). */
export function scatterND(
  data: Tensor,
  indices: Tensor,
  updates: Tensor,
  reduction: Reduction = 'none',
): Tensor {
  return ScatterND.one([data, indices, updates], { reduction });
}

const ScatterElements = defineOp({
  type: 'ScatterElements',
  attrs: { axis: 'int', reduction: 'string' },
  nonDiff: [1],
  infer: (ctx) => {
    const [data, idx, updates] = [ctx.input(0), indicesOf(ctx, 1), ctx.input(2)];
    ctx.axis(ctx.int('axis', 0), data.rank);
    if (updates.dtype !== data.dtype)
      ctx.fail(`updates dtype ${updates.dtype} differs from data ${data.dtype}`);
    if (idx.rank !== data.rank || updates.rank !== data.rank)
      ctx.fail('data, indices and updates need one rank');
    if (idx.shape.some((d, i) => !dimsCompatible(d, updates.shape[i])))
      ctx.fail('indices and updates must have the same shape');
    return [{ dtype: data.dtype, shape: data.shape }];
  },
  grad: (ctx) => {
    const [, idx, updates] = ctx.inputs as Tensor[];
    const dy = ctx.grads[0]!;
    const axis = ctx.int('axis', 0);
    const reduction = ctx.str('reduction', 'none');
    if (reduction !== 'none' && reduction !== 'add') ctx.fail(`no gradient for reduction '${reduction}'`);
    return [
      reduction === 'add' ? dy : scatterElements(dy, idx, zerosLike(updates), axis),
      null,
      ctx.wants(2) ? gatherElements(dy, idx, axis) : null,
    ];
  },
});

/** data with updates written (or added) at indices along an axis (ONNX ScatterElements). */
export function scatterElements(
  data: Tensor,
  indices: Tensor,
  updates: Tensor,
  axis: number,
  reduction: Reduction = 'none',
): Tensor {
  return ScatterElements.one([data, indices, updates], { axis, reduction });
}

const CumSum = defineOp({
  type: 'CumSum',
  attrs: { exclusive: 'int', reverse: 'int' },
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    ctx.axis(ctx.ints64(1, 'axis')[0], x.rank);
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  // The adjoint of a running sum is the running sum in the other direction.
  grad: (ctx) => [
    CumSum.one([ctx.grads[0]!, ctx.inputs[1]], {
      exclusive: ctx.int('exclusive', 0),
      reverse: 1 - ctx.int('reverse', 0),
    }),
    null,
  ],
});

/** Running sum along an axis (exclusive: shifted by one; reverse: from the end). */
export function cumsum(
  x: Tensor,
  axis: number,
  opts: { exclusive?: boolean; reverse?: boolean } = {},
): Tensor {
  return CumSum.one([x, x.graph.root.constant(axis, 'int64')], {
    exclusive: opts.exclusive ? 1 : 0,
    reverse: opts.reverse ? 1 : 0,
  });
}

const TopK = defineOp({
  type: 'TopK',
  attrs: { axis: 'int', largest: 'int', sorted: 'int' },
  nonDiff: [1],
  infer: (ctx) => {
    const x = ctx.input(0);
    const axis = ctx.axis(ctx.int('axis', -1), x.rank);
    const k = ctx.input(1).value?.[0] ?? null;
    if (typeof k === 'number' && typeof x.shape[axis] === 'number' && k > (x.shape[axis] as number))
      ctx.fail(`k = ${k} exceeds dim ${x.shape[axis]}`);
    const shape = x.shape.map((d, i) => (i === axis ? k : d));
    return [
      { dtype: x.dtype, shape },
      { dtype: 'int64', shape },
    ];
  },
  // Values flow back to where they came from; the indices output has no gradient.
  grad: (ctx) => {
    const x = ctx.input(0);
    const dv = ctx.grads[0];
    const axis = ctx.int('axis', -1);
    return [dv ? scatterElements(zerosLike(x), ctx.outputs[1], dv, axis, 'add') : null, null];
  },
});

/** The k largest (or smallest) values along an axis and their indices. */
export function topk(
  x: Tensor,
  k: number | Tensor,
  axis = -1,
  largest = true,
): { values: Tensor; indices: Tensor } {
  const kT = typeof k === 'number' ? x.graph.root.constant([k], 'int64') : k;
  const [values, indices] = TopK.apply([x, kT], { axis, largest: largest ? 1 : 0, sorted: 1 });
  return { values, indices };
}

function inferArg(ctx: OpContext) {
  const x = ctx.input(0);
  const axis = ctx.axis(ctx.int('axis', 0), x.rank);
  const keep = ctx.int('keepdims', 1);
  const shape = keep ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
  return [{ dtype: 'int64' as const, shape }];
}

const ArgMax = defineOp({
  type: 'ArgMax',
  attrs: { axis: 'int', keepdims: 'int', select_last_index: 'int' },
  infer: inferArg,
});
const ArgMin = defineOp({
  type: 'ArgMin',
  attrs: { axis: 'int', keepdims: 'int', select_last_index: 'int' },
  infer: inferArg,
});

/** Index of the maximum along an axis (int64, no gradient). */
export function argmax(x: Tensor, axis = -1, keepdims = false): Tensor {
  return ArgMax.one([x], { axis, keepdims: keepdims ? 1 : 0 });
}

/** Index of the minimum along an axis (int64, no gradient). */
export function argmin(x: Tensor, axis = -1, keepdims = false): Tensor {
  return ArgMin.one([x], { axis, keepdims: keepdims ? 1 : 0 });
}

/** Output length of Slice on one axis (ONNX clamping rules), or null. */
function sliceLength(dim: Dim, start: number, end: number, step: number): Dim {
  if (typeof dim !== 'number') return start === 0 && step === 1 && end >= INT32_MAX ? dim : null;
  const [s, e] = sliceBounds(dim, start, end, step);
  return Math.max(0, Math.ceil((e - s) / step));
}

// Ends at or past this are treated as "to the end" for symbolic dims.
const INT32_MAX = 2 ** 31 - 1;

function sliceBounds(dim: number, start: number, end: number, step: number): [number, number] {
  const norm = (v: number) => (v < 0 ? v + dim : v);
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  return step > 0
    ? [clamp(norm(start), 0, dim), clamp(norm(end), 0, dim)]
    : [clamp(norm(start), 0, dim - 1), clamp(norm(end), -1, dim - 1)];
}

const Slice = defineOp({
  type: 'Slice',
  nonDiff: [1, 2, 3, 4],
  infer: (ctx) => {
    const x = ctx.input(0);
    const known = (i: number) => {
      const t = ctx.inputs[i];
      return t?.value?.every((d) => typeof d === 'number') ? (t.value as number[]) : undefined;
    };
    const starts = known(1);
    const ends = known(2);
    const axes = ctx.inputs[3] ? known(3) : starts?.map((_, i) => i);
    const steps = ctx.inputs[4] ? known(4) : starts?.map(() => 1);
    if (!starts || !ends || !axes || !steps) return [{ dtype: x.dtype, shape: x.shape.map(() => null) }];
    if ([ends, axes, steps].some((v) => v.length !== starts.length))
      ctx.fail('starts, ends, axes and steps must have the same length');
    const out = [...x.shape];
    axes.forEach((a, i) => {
      if (steps[i] === 0) ctx.fail('step 0');
      const axis = ctx.axis(a, x.rank);
      out[axis] = sliceLength(x.shape[axis], starts[i], ends[i], steps[i]);
    });
    let value: Dim[] | undefined;
    if (x.rank === 1 && x.value && steps[0] === 1) {
      const [s, e] = sliceBounds(x.value.length, starts[0], ends[0], 1);
      value = x.value.slice(s, e);
    }
    return [{ dtype: x.dtype, shape: out, value }];
  },
  // Scatters the gradient back into zeros, one sliced axis at a time: the positions an axis selected are
  // Slice(Range(0, dim)) with the same parameters, so negative starts, clamping and steps all agree.
  grad: (ctx) => {
    const [x, starts, ends, axesT, stepsT] = ctx.inputs;
    const n = starts!.shape[0];
    if (typeof n !== 'number') ctx.fail('gradient needs a known number of sliced axes');
    const axes = axesT ? ctx.ints64(3, 'axes for the gradient') : [...Array(n).keys()];
    let g = ctx.grads[0]!;
    axes.forEach((a, i) => {
      const axis = ctx.axis(a, x!.rank);
      const pick = (t: Tensor) => slice(t, [i], [i + 1]);
      const full = knownDim(x!, axis);
      const positions = Slice.one([
        range(x!.graph.root.constant(0, 'int64'), full, 1),
        pick(starts!),
        pick(ends!),
        null,
        stepsT ? pick(stepsT) : null,
      ]);
      const target = [...g.shape.keys()].map((j) => (j === axis ? knownDim(x!, j) : knownDim(g, j)));
      const along = Array<number>(g.rank).fill(1);
      along[axis] = -1;
      const index = expand(reshape(positions, along), shapeOf(g));
      g = scatterElements(constantOfShape(int64s(target, x!), g.dtype, 0), index, g, axis);
    });
    return [reshape(g, staticOrDynamicShape(x!)), null, null, null, null];
  },
});

/** x[starts:ends:steps] on the given axes (ONNX Slice; negative indices count from the end). */
export function slice(
  x: Tensor,
  starts: readonly number[] | Tensor,
  ends: readonly number[] | Tensor,
  axes?: readonly number[],
  steps?: readonly number[],
): Tensor {
  const c = (v: readonly number[] | Tensor) => (v instanceof Tensor ? v : x.graph.root.constant(v, 'int64'));
  return Slice.one([x, c(starts), c(ends), axes ? c(axes) : null, steps ? c(steps) : null]);
}
