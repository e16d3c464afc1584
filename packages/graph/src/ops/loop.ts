// ONNX Loop: a body subgraph run up to `trips` times, carrying values and stacking per-iteration scans.
// The body may read any tensor of the enclosing graphs (outer scope). Loops have no gradient.
import { defineOp, Graph, GraphError, inGraph, type Tensor, targetGraph } from '../graph.js';
import { dimsCompatible } from '../shape.js';
import { type Dim, formatShape, type Shape } from '../types.js';

const Loop = defineOp({
  type: 'Loop',
  attrs: { body: 'graph' },
  infer: (ctx) => {
    const body = ctx.graph('body');
    const [trips, cond] = ctx.inputs;
    if (trips && (trips.dtype !== 'int64' || trips.rank !== 0))
      ctx.fail('trip count must be an int64 scalar');
    if (cond && (cond.dtype !== 'bool' || cond.rank !== 0)) ctx.fail('condition must be a bool scalar');
    const carried = ctx.inputs.length - 2;
    const tripDim: Dim = cond ? null : (trips?.value?.[0] ?? null);
    return body.outputs
      .slice(1)
      .map((out, i) =>
        i < carried
          ? { dtype: body.inputs[i + 2].dtype, shape: body.inputs[i + 2].shape }
          : { dtype: out.dtype, shape: [tripDim, ...out.shape] },
      );
  },
});

export interface LoopBodyResult {
  /** New values of the carried tensors, in order. */
  carried: readonly Tensor[];
  /** Per-iteration values stacked into outputs with a leading [trips] dim. */
  scans?: readonly Tensor[];
  /** Whether to continue (default: always, up to `trips`). */
  cond?: Tensor;
}

export interface LoopOptions {
  /** Maximum number of iterations (int64 scalar or number). */
  trips?: number | Tensor;
  /** Initial condition (bool scalar); the loop stops when the body returns false. */
  cond?: Tensor;
  /** Initial values of the loop-carried tensors. */
  carried: readonly Tensor[];
  /** Body-side shapes of carried tensors that change between iterations (e.g. a growing KV cache). */
  carriedShapes?: readonly (Shape | undefined)[];
  /** The graph to add the Loop to when no tensor argument says (only a numeric trip count, nothing carried). */
  graph?: Graph;
  /** Names the body graph and scopes its values. */
  name?: string;
  /** Builds one iteration from the iteration number (int64 scalar), the carried values and the condition. */
  body: (iter: Tensor, carried: Tensor[], cond: Tensor) => LoopBodyResult;
}

export interface LoopResult {
  /** Final values of the carried tensors. */
  carried: Tensor[];
  /** Scan outputs, [trips, ...per-iteration shape]. */
  scans: Tensor[];
}

/** Builds an ONNX Loop: everything created inside `body` goes into the body subgraph. */
export function loop(opts: LoopOptions): LoopResult {
  const { carried } = opts;
  const like = [opts.trips, opts.cond, ...carried].find((t): t is Tensor => typeof t === 'object');
  const parent =
    like || !opts.graph ? targetGraph('Loop', [...(like ? [like] : []), ...carried]) : opts.graph;
  const trips =
    opts.trips === undefined
      ? null
      : typeof opts.trips === 'number'
        ? parent.root.constant(opts.trips, 'int64')
        : opts.trips;
  if (!trips && !opts.cond) throw new GraphError('Loop: give a trip count or a condition');
  const name = opts.name ?? `Loop_${parent.nextId()}`;
  const body = new Graph(name, parent);
  const iter = body.input(body.root.uniqueName(`${name}/iter`), 'int64', []);
  const condIn = body.input(body.root.uniqueName(`${name}/cond`), 'bool', []);
  const carriedIn = carried.map((t, i) =>
    body.input(body.root.uniqueName(`${name}/carried${i}`), t.dtype, opts.carriedShapes?.[i] ?? t.shape),
  );
  const result = inGraph(body, () => opts.body(iter, carriedIn, condIn));
  if (result.carried.length !== carried.length)
    throw new GraphError(
      `Loop '${name}': body returned ${result.carried.length} carried values, expected ${carried.length}`,
    );
  result.carried.forEach((t, i) => {
    const declared = carriedIn[i];
    const fits = t.rank === declared.rank && t.shape.every((d, j) => dimsCompatible(d, declared.shape[j]));
    if (t.dtype !== declared.dtype || !fits)
      throw new GraphError(
        `Loop '${name}': carried value ${i} enters as ${declared.dtype}${formatShape(declared.shape)} but leaves ` +
          `as ${t.dtype}${formatShape(t.shape)} (declare changing shapes with carriedShapes)`,
      );
  });
  if (result.cond && (result.cond.dtype !== 'bool' || result.cond.rank !== 0))
    throw new GraphError(`Loop '${name}': cond must be a bool scalar`);
  inGraph(body, () => {
    body.output(result.cond ?? condIn);
    for (const t of [...result.carried, ...(result.scans ?? [])]) body.output(t);
  });
  body.sealed = true;
  const outs = Loop.apply([trips, opts.cond ?? null, ...carried], { body });
  return { carried: outs.slice(0, carried.length), scans: outs.slice(carried.length) };
}
