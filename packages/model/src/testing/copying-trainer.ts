// Reference: the trainer as it was before in-place updates (graph commit b1039be): a Loop even for K = 1,
// clipping only when asked, params and moments copied in on every run and new arrays out. Tests compare the
// in-place trainer (@rlhf/graph createTrainer) with it bit for bit.
import {
  add,
  cast,
  clipByGlobalNorm,
  div,
  Graph,
  GraphError,
  gather,
  globalNorm,
  grad,
  isFloat,
  loop,
  reduceMean,
  scope,
  type Tensor,
  type TrainStepSpec,
  adamw,
  zerosLike,
} from '@rlhf/graph';
import {
  type HostTensor,
  type Runtime,
  type Session,
  type SessionOptions,
  type Weights,
  weightFeeds,
  weightsOf,
} from '@rlhf/runtime';

/** Input/output names of a train-step graph. */
interface TrainStepNames {
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
}

const record = <T>(names: readonly string[], value: (name: string) => T): Record<string, T> =>
  Object.fromEntries(names.map((n) => [n, value(n)]));

const byName = <S extends { name: string }, T>(
  items: readonly S[],
  value: (item: S) => T,
): Record<string, T> => Object.fromEntries(items.map((item) => [item.name, value(item)]));

/**
 * Builds the training graph: inputs params + AdamW state + step + lr[K] + batches [K, M, ...]; one Loop of K
 * optimizer steps, each running forward + backward on M micro-batches (an inner Loop when M > 1), averaging
 * gradients, optionally clipping them, and applying AdamW; outputs the new params and state plus per-step
 * loss, grad norm and metrics.
 */
export function buildCopyingTrainStep(spec: TrainStepSpec): TrainStep {
  const K = spec.steps ?? 1;
  const M = spec.accumulate ?? 1;
  const dtype = spec.dtype ?? 'float32';
  if (!Number.isInteger(K) || K < 1 || !Number.isInteger(M) || M < 1)
    throw new GraphError(
      `buildCopyingTrainStep: steps (${K}) and accumulate (${M}) must be positive integers`,
    );
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

  const outer = loop({
    name: 'steps',
    trips: K,
    carried: [...params, ...ms, ...vs],
    body: (k, carried) => {
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
      let gradNorm: Tensor;
      if (cfg.maxGradNorm !== undefined) {
        const clipped = clipByGlobalNorm(grads, cfg.maxGradNorm);
        grads = clipped.grads;
        gradNorm = clipped.norm;
      } else gradNorm = globalNorm(grads);
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
    },
  });

  const outputs: TrainStep['outputs'] = {
    params: record(paramNames, (p) => `${p}.next`),
    m: record(paramNames, (p) => `${names.m[p]}.next`),
    v: record(paramNames, (p) => `${names.v[p]}.next`),
    loss: 'loss',
    gradNorm: 'grad_norm',
    metrics: record(metricNames, (m) => `metric.${m}`),
  };
  paramNames.forEach((p, i) => {
    g.output(outer.carried[i], outputs.params[p]);
    g.output(outer.carried[n + i], outputs.m[p]);
    g.output(outer.carried[2 * n + i], outputs.v[p]);
  });
  g.output(outer.scans[0], outputs.loss);
  g.output(outer.scans[1], outputs.gradNorm);
  metricNames.forEach((m, i) => {
    g.output(outer.scans[2 + i], outputs.metrics[m]);
  });
  return { spec, steps: K, accumulate: M, dtype, graph: g, bytes: g.toBytes(), inputs: names, outputs };
}

/** Parameters and AdamW moments by parameter name (shapes from the train step's ParamSpecs). */
interface TrainerState {
  params: Weights;
  m: Weights;
  v: Weights;
  /** Optimizer steps completed. */
  step: number;
}

interface StepReport {
  /** Mean loss of each of the K steps. */
  loss: number[];
  gradNorm: number[];
  metrics: Record<string, number[]>;
}

interface Trainer {
  /** Current parameters and optimizer state (host copies; save them to checkpoint). */
  readonly state: TrainerState;
  /** Runs K optimizer steps. batch: [K, M, ...] per batch input; lrs: K learning rates (or one for all). */
  run(
    batch: Record<string, HostTensor>,
    lrs: number | ArrayLike<number>,
    shared?: Record<string, HostTensor>,
  ): Promise<StepReport>;
  /** Goes on from this state (e.g. another trainer's, of a different fused length K). */
  restore(next: TrainerState): void;
  release(): Promise<void>;
}

/**
 * Host side of a float32 train step: holds parameters and AdamW state and feeds them through the session on each
 * call (train graphs take params + state in and return the updated ones). Missing moments start at zero.
 */
export async function createCopyingTrainer(
  runtime: Runtime,
  trainStep: TrainStep,
  init: { params: Weights; m?: Weights; v?: Weights; step?: number },
  sessionOptions: SessionOptions = {}, // for bench/train-memory.ts (the old trainer used the runtime's)
): Promise<Trainer> {
  const { inputs, outputs, steps: K, dtype } = trainStep;
  const specs = trainStep.spec.params;
  if (dtype !== 'float32') throw new Error(`createTrainer: float32 train steps only, got ${dtype}`);
  const zeros = (): Weights => new Map(specs.map((p) => [p.name, new Float32Array(size(p.shape))]));
  weightFeeds(specs, init.params); // checks every name and size
  let state: TrainerState = {
    params: new Map(init.params),
    m: init.m ?? zeros(),
    v: init.v ?? zeros(),
    step: init.step ?? 0,
  };
  weightFeeds(specs, state.m);
  weightFeeds(specs, state.v);
  const feedNames = (names: Record<string, string>) => (weights: Weights) =>
    Object.fromEntries(specs.map((p) => [names[p.name], weightFeeds([p], weights)[p.name]]));
  const [paramFeeds, mFeeds, vFeeds] = [inputs.params, inputs.m, inputs.v].map(feedNames);
  const session: Session = await runtime.createSession(trainStep.bytes, {
    name: trainStep.graph.name,
    ...sessionOptions,
  });
  return {
    get state() {
      return state;
    },
    restore(next) {
      state = next;
    },
    async run(batch, lrs, shared = {}) {
      const lr = typeof lrs === 'number' ? new Array(K).fill(lrs) : Array.from(lrs);
      if (lr.length !== K) throw new Error(`trainer: ${lr.length} learning rates for ${K} steps`);
      const feeds: Record<string, HostTensor> = {
        [inputs.step]: { type: 'int64', dims: [], data: BigInt64Array.of(BigInt(state.step)) },
        [inputs.lr]: { type: 'float32', dims: [K], data: Float32Array.from(lr) },
        ...paramFeeds(state.params),
        ...mFeeds(state.m),
        ...vFeeds(state.v),
      };
      for (const [name, input] of Object.entries(inputs.batch)) {
        if (!batch[name]) throw new Error(`trainer: missing batch input '${name}'`);
        feeds[input] = batch[name];
      }
      for (const [name, input] of Object.entries(inputs.shared)) {
        if (!shared[name]) throw new Error(`trainer: missing shared input '${name}'`);
        feeds[input] = shared[name];
      }
      const out = await session.run(feeds);
      state = {
        params: weightsOf(out, outputs.params),
        m: weightsOf(out, outputs.m),
        v: weightsOf(out, outputs.v),
        step: state.step + K,
      };
      const list = (name: string) => Array.from(out[name].data as Float32Array);
      return {
        loss: list(outputs.loss),
        gradNorm: list(outputs.gradNorm),
        metrics: record(Object.keys(outputs.metrics), (m) => list(outputs.metrics[m])),
      };
    },
    release: () => session.release(),
  };
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
