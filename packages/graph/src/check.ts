// Gradient checking: analytic gradients from our autodiff vs central finite differences, in float64,
// on real ONNX Runtime sessions.
import type { HostTensor, Runtime } from '@rlhf/runtime';
import { toTypedArray } from '@rlhf/onnx';
import { grad } from './autodiff.js';
import { Graph, GraphError, type Tensor } from './graph.js';
import { add, cast, mul, sin } from './ops/arith.js';
import { reduceSum } from './ops/broadcast.js';
import { dimOf, range, reshape } from './ops/shape.js';
import { rng } from './host.js';
import { isFloat, type Shape } from './types.js';

export interface GradCheckInput {
  /** Concrete dims of the data. */
  shape: readonly number[];
  /** Dims declared in the graph (symbolic or null allowed); default `shape`. */
  declared?: Shape;
  /** Default float64. */
  dtype?: 'float64' | 'int64' | 'int32' | 'bool';
  /** Fixed values (indices, masks); default uniform in [low, high). */
  data?: ArrayLike<number>;
  low?: number;
  high?: number;
  /** Check the gradient w.r.t. this input (default: float inputs). */
  wrt?: boolean;
}

export interface GradCheckOptions {
  runtime: Runtime;
  /** Finite-difference step (default 1e-5). */
  eps?: number;
  /** Seed of the random inputs (default 1). */
  seed?: number;
  /** Check at most this many elements per input, spread evenly (default all). */
  maxElements?: number;
}

export interface GradCheckResult {
  /** max |analytic - numeric| / max(|analytic|, |numeric|, 1e-3) over the checked elements. */
  maxRelError: number;
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
  /** Elements compared. */
  checked: number;
}

/**
 * Builds `build(...inputs)` in float64, reduces its float outputs to a scalar with fixed pseudo-random weights
 * (so no error can cancel out), and compares the gradients our autodiff emits with central differences
 * (f(x + eps) - f(x - eps)) / 2 eps computed by re-running the session on perturbed inputs. Note: ORT's float64
 * Gelu kernel is accurate to ~5e-9 (not 1e-16), which bounds how well networks with GELU can agree.
 */
export async function checkGradients(
  build: (...inputs: Tensor[]) => Tensor | readonly Tensor[],
  inputs: readonly (readonly number[] | GradCheckInput)[],
  opts: GradCheckOptions,
): Promise<GradCheckResult> {
  const specs: GradCheckInput[] = inputs.map((s) => (isShapeList(s) ? { shape: s } : s));
  const g = new Graph('gradcheck');
  const xs = specs.map((s, i) => g.input(`x${i}`, s.dtype ?? 'float64', s.declared ?? s.shape));
  const built = build(...xs);
  const outs = (Array.isArray(built) ? built : [built]) as Tensor[];
  const floats = outs.filter((t) => isFloat(t.dtype));
  if (floats.length === 0) throw new GraphError('checkGradients: build returned no float output');
  const loss = floats.map((t, k) => weightedSum(t, k)).reduce((a, b) => add(a, b));
  const wrt = specs
    .map((s, i) => (s.wrt ?? (s.dtype ?? 'float64') === 'float64') && i)
    .filter((i) => i !== false);
  const grads = grad(
    loss,
    wrt.map((i) => xs[i]),
  );
  g.output(loss, 'loss');
  grads.forEach((t, j) => {
    g.output(t, `grad${j}`);
  });
  // Every intermediate value becomes an output too, so its run-time dims can be checked against inference.
  const audited = g.nodes.flatMap((n) => n.outputs).filter((t) => !g.outputs.includes(t));
  audited.forEach((t, i) => {
    g.output(t, `audit${i}`);
  });
  const session = await opts.runtime.createSession(g.toBytes(), { name: 'gradcheck' });
  try {
    const random = rng(opts.seed ?? 1);
    const feeds: Record<string, HostTensor> = {};
    specs.forEach((s, i) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const lo = s.low ?? -1;
      const hi = s.high ?? 1;
      const values = s.data ?? Array.from({ length: n }, () => lo + (hi - lo) * random());
      const type = s.dtype ?? 'float64';
      feeds[`x${i}`] = { type, dims: [...s.shape], data: toTypedArray(type, values) } as HostTensor;
    });
    const analytic = await session.run(feeds);
    checkInferredShapes([...xs, ...audited], (t) =>
      xs.includes(t) ? specs[xs.indexOf(t)].shape : analytic[t.name].dims,
    );
    const eps = opts.eps ?? 1e-5;
    const lossAt = async () => (await session.run(feeds, ['loss'])).loss.data[0] as number;
    let maxRelError = 0;
    let worst: GradCheckResult['worst'] = null;
    let checked = 0;
    let largest = 0;
    for (const [j, i] of wrt.entries()) {
      const x = feeds[`x${i}`].data as Float64Array;
      const a = analytic[`grad${j}`].data as Float64Array;
      const step = Math.max(1, Math.floor(x.length / (opts.maxElements ?? x.length)));
      for (let index = 0; index < x.length; index += step) {
        const saved = x[index];
        x[index] = saved + eps;
        const up = await lossAt();
        x[index] = saved - eps;
        const down = await lossAt();
        x[index] = saved;
        const numeric = (up - down) / (2 * eps);
        const err = Math.abs(a[index] - numeric) / Math.max(Math.abs(a[index]), Math.abs(numeric), 1e-3);
        const e = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err;
        if (worst === null || e > maxRelError) {
          maxRelError = e;
          worst = { input: i, index, analytic: a[index], numeric };
        }
        checked++;
        largest = Math.max(largest, Math.abs(a[index]));
      }
    }
    if (largest === 0)
      throw new Error('checkGradients: every gradient is zero, so the check would prove nothing');
    return { maxRelError, worst, checked };
  } finally {
    await session.release();
  }
}

/** Fails when a run-time shape contradicts the shape inferred at build time (sizes or symbol bindings). */
function checkInferredShapes(tensors: readonly Tensor[], dimsOf: (t: Tensor) => readonly number[]): void {
  const symbols = new Map<string, number>();
  for (const t of tensors) {
    const dims = dimsOf(t);
    const bad = () =>
      new GraphError(`shape inference: ${t} is [${dims}] at run time (${t.producer?.op.type})`);
    if (dims.length !== t.rank) throw bad();
    t.shape.forEach((d, i) => {
      if (typeof d === 'number' && d !== dims[i]) throw bad();
      if (typeof d === 'string') {
        if ((symbols.get(d) ?? dims[i]) !== dims[i]) throw bad();
        symbols.set(d, dims[i]);
      }
    });
  }
}

const isShapeList = (s: readonly number[] | GradCheckInput): s is readonly number[] => Array.isArray(s);

/** sum(t * w) with fixed weights w_i = sin(0.37 i^2 + 1.3 i + k + 1) over the flattened tensor. */
function weightedSum(t: Tensor, k: number): Tensor {
  const flat = reshape(t, [-1]);
  const i = cast(range(0, dimOf(flat, 0), 1), t.dtype);
  const w = sin(add(mul(mul(i, i), 0.37), add(mul(i, 1.3), k + 1)));
  return reduceSum(mul(flat, w));
}
