// Fused training: K optimizer steps (each averaging gradients over M micro-batches) in one ONNX Loop, so
// parameters and optimizer state stay on the device for the whole call (docs/DESIGN.md: put loops in the graph);
// K = 1 is the plain graph (no Loop: no carried copies). The trainer updates params and moments in place.
import { grad } from './autodiff.js';
import { Graph, GraphError, type Node, scope, type Tensor } from './graph.js';
import { add, cast, div } from './ops/arith.js';
import { gather } from './ops/indexing.js';
import { loop } from './ops/loop.js';
import { reduceMean } from './ops/reduce.js';
import { unsqueeze, zerosLike } from './ops/shape.js';
import { adamw, clipByGlobalNorm } from './optim.js';
import { type DType, isFloat, type Shape } from './types.js';

export interface ParamSpec {
  name: string;
  shape: readonly number[];
  /** Apply weight decay (default: matrices yes, vectors such as biases and norms no). */
  decay?: boolean;
}

export interface InputSpec {
  name: string;
  dtype: DType;
  /** Shape of one micro-batch (for batch inputs) or of the whole value (for shared inputs). */
  shape: Shape;
}

export interface OptimizerConfig {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip gradients to this global norm (default Infinity: no clipping; the factor, 1, is still applied). */
  maxGradNorm?: number;
}

export interface LossResult {
  /** Scalar loss of one micro-batch. */
  loss: Tensor;
  /** Scalar float metrics of one micro-batch, averaged like the loss. */
  metrics?: Record<string, Tensor>;
}

export interface TrainStepSpec {
  name?: string;
  /** dtype of parameters and optimizer state (default float32). */
  dtype?: 'float32' | 'float64';
  params: readonly ParamSpec[];
  /** Per-micro-batch inputs; fed stacked as [K, M, ...shape]. */
  batch: readonly InputSpec[];
  /** Inputs shared by every step of a call (frozen weights, coefficients); fed as is. */
  shared?: readonly InputSpec[];
  loss: (
    params: Map<string, Tensor>,
    batch: Record<string, Tensor>,
    shared: Record<string, Tensor>,
  ) => LossResult;
  optimizer?: OptimizerConfig;
  /** K: optimizer steps per session run (default 1). */
  steps?: number;
  /** M: micro-batches averaged per optimizer step (default 1). */
  accumulate?: number;
}

/** Input/output names of a train-step graph. */
export interface TrainStepNames {
  params: Record<string, string>;
  m: Record<string, string>;
  v: Record<string, string>;
  batch: Record<string, string>;
  shared: Record<string, string>;
  /** int64 scalar: optimizer steps completed before this call. */
  step: string;
  /** float32 [K]: learning rate of each step. */
  lr: string;
}

export interface TrainStep {
  spec: TrainStepSpec;
  steps: number;
  accumulate: number;
  dtype: 'float32' | 'float64';
  graph: Graph;
  bytes: Uint8Array;
  inputs: TrainStepNames;
  outputs: {
    params: Record<string, string>;
    m: Record<string, string>;
    v: Record<string, string>;
    /** float32 [K]: mean loss of each step. */
    loss: string;
    /** float32 [K]: global gradient norm of each step (before clipping). */
    gradNorm: string;
    /** float32 [K] each. */
    metrics: Record<string, string>;
  };
  /**
   * Inputs (params, m, v) whose output may be written into the input's own buffer: every node reading the input
   * is an ancestor of the one writing its output (checked on the built graph).
   */
  inPlace: ReadonlySet<string>;
}

const record = <T>(names: readonly string[], value: (name: string) => T): Record<string, T> =>
  Object.fromEntries(names.map((n) => [n, value(n)]));

const byName = <S extends { name: string }, T>(
  items: readonly S[],
  value: (item: S) => T,
): Record<string, T> => Object.fromEntries(items.map((item) => [item.name, value(item)]));

/**
 * Builds the training graph: inputs params + AdamW state + step + lr[K] + batches [K, M, ...]; K optimizer steps
 * (a Loop when K > 1), each running forward + backward on M micro-batches (an inner Loop when M > 1), averaging
 * gradients, clipping them (always: every update then depends on the global norm, so on every gradient, so on
 * every other reader of the params, which makes writing the update into the params' buffers safe), and applying
 * AdamW; outputs the new params and state plus per-step loss, grad norm and metrics.
 */
export function buildTrainStep(spec: TrainStepSpec): TrainStep {
  const K = spec.steps ?? 1;
  const M = spec.accumulate ?? 1;
  const dtype = spec.dtype ?? 'float32';
  if (!Number.isInteger(K) || K < 1 || !Number.isInteger(M) || M < 1)
    throw new GraphError(`buildTrainStep: steps (${K}) and accumulate (${M}) must be positive integers`);
  const paramNames = spec.params.map((p) => p.name);
  const sharedSpecs = spec.shared ?? [];
  const names: TrainStepNames = {
    params: record(paramNames, (n) => n),
    m: record(paramNames, (n) => `adam.m.${n}`),
    v: record(paramNames, (n) => `adam.v.${n}`),
    batch: byName(spec.batch, (b) => b.name),
    shared: byName(sharedSpecs, (s) => s.name),
    step: 'step',
    lr: 'lr',
  };
  const g = new Graph(spec.name ?? 'train_step');
  const params = spec.params.map((p) => g.input(names.params[p.name], dtype, p.shape));
  const ms = spec.params.map((p) => g.input(names.m[p.name], dtype, p.shape));
  const vs = spec.params.map((p) => g.input(names.v[p.name], dtype, p.shape));
  const step = g.input(names.step, 'int64', []);
  const lrs = g.input(names.lr, 'float32', [K]);
  const batches = byName(spec.batch, (b) => g.input(names.batch[b.name], b.dtype, [K, M, ...b.shape]));
  const shared = byName(sharedSpecs, (s) => g.input(names.shared[s.name], s.dtype, s.shape));
  const n = params.length;
  let metricNames: string[] = [];

  // Forward + backward of one micro-batch: loss, metrics, gradients.
  const microStep = (ps: Tensor[], micro: Record<string, Tensor>) => {
    const result = scope('forward', () =>
      spec.loss(new Map(paramNames.map((name, i) => [name, ps[i]])), micro, shared),
    );
    const { loss } = result;
    const metrics = result.metrics ?? {};
    if (loss.rank !== 0 || !isFloat(loss.dtype))
      throw new GraphError(`train step: loss must be a float scalar, got ${loss}`);
    for (const [name, t] of Object.entries(metrics))
      if (t.rank !== 0 || !isFloat(t.dtype))
        throw new GraphError(`train step: metric '${name}' must be a float scalar`);
    metricNames = Object.keys(metrics);
    const grads = grad(loss, ps);
    return {
      loss: cast(loss, 'float32'),
      metrics: metricNames.map((k) => cast(metrics[k], 'float32')),
      grads,
    };
  };

  const body = (k: Tensor, carried: Tensor[]) => {
    const ps = carried.slice(0, n);
    const stepBatch = record(Object.keys(batches), (b) => gather(batches[b], k, 0));
    const micro = (j: Tensor) => record(Object.keys(stepBatch), (b) => gather(stepBatch[b], j, 0));
    let lossMean: Tensor;
    let metricMeans: Tensor[];
    let grads: Tensor[];
    if (M === 1) {
      const r = microStep(ps, micro(g.constant(0, 'int64')));
      [lossMean, metricMeans, grads] = [r.loss, r.metrics, r.grads];
    } else {
      // Gradients are summed in carried accumulators; losses and metrics come out as [M] scans.
      const inner = loop({
        name: 'microbatches',
        trips: M,
        carried: ps.map((p) => zerosLike(p)),
        body: (j, acc) => {
          const r = microStep(ps, micro(j));
          return { carried: r.grads.map((gr, i) => add(acc[i], gr)), scans: [r.loss, ...r.metrics] };
        },
      });
      grads = inner.carried.map((sum) => div(sum, M));
      [lossMean, ...metricMeans] = inner.scans.map((s) => reduceMean(s));
    }
    const cfg = spec.optimizer ?? {};
    // Without clipping the factor is min(Infinity / norm, 1) = 1: the same numbers, and the dependency stays.
    const clipped = clipByGlobalNorm(grads, cfg.maxGradNorm ?? Number.POSITIVE_INFINITY);
    grads = clipped.grads;
    const gradNorm = clipped.norm;
    const updated = scope('adamw', () =>
      adamw(
        ps,
        grads,
        { m: carried.slice(n, 2 * n), v: carried.slice(2 * n) },
        {
          lr: gather(lrs, k, 0),
          step: add(step, add(k, 1)),
          beta1: cfg.beta1,
          beta2: cfg.beta2,
          eps: cfg.eps,
          weightDecay: cfg.weightDecay,
          decay: spec.params.map((p) => p.decay ?? p.shape.length >= 2),
        },
      ),
    );
    return {
      carried: [...updated.params, ...updated.m, ...updated.v],
      scans: [lossMean, cast(gradNorm, 'float32'), ...metricMeans],
    };
  };
  const state = [...params, ...ms, ...vs];
  const outer =
    K === 1
      ? (() => {
          const step1 = body(g.constant(0, 'int64'), state);
          return { carried: step1.carried, scans: step1.scans.map((t) => unsqueeze(t, [0])) };
        })()
      : loop({ name: 'steps', trips: K, carried: state, body });

  const outputs: TrainStep['outputs'] = {
    params: record(paramNames, (p) => `${p}.next`),
    m: record(paramNames, (p) => `${names.m[p]}.next`),
    v: record(paramNames, (p) => `${names.v[p]}.next`),
    loss: 'loss',
    gradNorm: 'grad_norm',
    metrics: record(metricNames, (m) => `metric.${m}`),
  };
  const written: [Tensor, Tensor][] = []; // state input -> the output holding its next value
  paramNames.forEach((p, i) => {
    written.push([params[i], g.output(outer.carried[i], outputs.params[p])]);
    written.push([ms[i], g.output(outer.carried[n + i], outputs.m[p])]);
    written.push([vs[i], g.output(outer.carried[2 * n + i], outputs.v[p])]);
  });
  g.output(outer.scans[0], outputs.loss);
  g.output(outer.scans[1], outputs.gradNorm);
  metricNames.forEach((m, i) => {
    g.output(outer.scans[2 + i], outputs.metrics[m]);
  });
  return {
    spec,
    steps: K,
    accumulate: M,
    dtype,
    graph: g,
    bytes: g.toBytes(),
    inputs: names,
    outputs,
    inPlace: writableInPlace(g, written),
  };
}

/** Names of the inputs whose every live reader is an ancestor of (or is) the node writing the paired output. */
function writableInPlace(g: Graph, pairs: readonly (readonly [Tensor, Tensor])[]): Set<string> {
  const ancestors = (from: readonly Tensor[]): Set<Node> => {
    const seen = new Set<Node>();
    const stack = from.map((t) => t.producer).filter((p): p is Node => p !== null);
    for (let node = stack.pop(); node; node = stack.pop()) {
      if (seen.has(node)) continue;
      seen.add(node);
      for (const t of node.reads) if (t.producer && t.graph === g) stack.push(t.producer);
    }
    return seen;
  };
  const live = ancestors(g.outputs);
  const safe = new Set<string>();
  for (const [input, output] of pairs) {
    const before = ancestors([output]);
    const readers = [...live].filter((node) => node.reads.includes(input));
    if (output.producer && readers.every((node) => before.has(node))) safe.add(input.name);
  }
  return safe;
}
