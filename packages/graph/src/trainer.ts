// The host side of a train step: params and AdamW moments lent to the ORT thread on each run and updated in
// their own buffers (docs/DESIGN.md, "Compute: buffer facts"), so a step holds one copy of the state, not three.
import {
  type HostTensor,
  type Runtime,
  type Session,
  type Weights,
  weightFeeds,
  weightsOf,
} from '@rlhf/runtime';
import type { TrainStep } from './train.js';

/** Parameters and AdamW moments by parameter name (shapes from the train step's ParamSpecs). */
export interface TrainerState {
  params: Weights;
  m: Weights;
  v: Weights;
  /** Optimizer steps completed. */
  step: number;
}

export interface StepReport {
  /** Mean loss of each of the K steps. */
  loss: number[];
  gradNorm: number[];
  metrics: Record<string, number[]>;
}

export interface Trainer {
  /**
   * Current parameters and optimizer state, the trainer's own arrays: read or save them between runs; a run
   * lends them to the ORT thread (detached meanwhile) and replaces them with new arrays over the same buffers.
   */
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

// Arrays a trainer owns (its copies and the arrays its runs hand back): another trainer may take them over
// without a copy; any other array is copied first, so the caller's own weights are never detached or changed.
const owned = new WeakSet<Float32Array>();
const adopt = (weights: Weights): Weights => {
  for (const data of weights.values()) owned.add(data);
  return weights;
};
const own = (weights: Weights, copy = true): Weights =>
  adopt(
    new Map(
      [...weights].map(([name, data]) => [
        name,
        !copy || (owned.has(data) && data.length > 0) ? data : data.slice(),
      ]),
    ),
  );

/**
 * Host side of a float32 train step: holds parameters and AdamW state and lends them to the session on each
 * call, which writes the new values into the same buffers where the graph allows it (TrainStep.inPlace; the
 * other outputs come back as new arrays). Missing moments start at zero; the state passed in is copied unless a
 * trainer owns it.
 */
export async function createTrainer(
  runtime: Runtime,
  trainStep: TrainStep,
  init: {
    params: Weights;
    m?: Weights;
    v?: Weights;
    step?: number;
    /** The trainer takes these arrays as its own, not copied (a big model's only copy): runs detach them. */
    adopt?: boolean;
  },
): Promise<Trainer> {
  const { inputs, outputs, steps: K, dtype } = trainStep;
  const specs = trainStep.spec.params;
  if (dtype !== 'float32') throw new Error(`createTrainer: float32 train steps only, got ${dtype}`);
  const zeros = (): Weights => new Map(specs.map((p) => [p.name, new Float32Array(size(p.shape))]));
  const checked = (next: TrainerState, copy = true): TrainerState => {
    for (const weights of [next.params, next.m, next.v]) weightFeeds(specs, weights); // every name and size
    return { params: own(next.params, copy), m: own(next.m, copy), v: own(next.v, copy), step: next.step };
  };
  let state = checked(
    {
      params: init.params,
      m: init.m ?? zeros(),
      v: init.v ?? zeros(),
      step: init.step ?? 0,
    },
    !init.adopt,
  );
  const groups = [
    [inputs.params, outputs.params],
    [inputs.m, outputs.m],
    [inputs.v, outputs.v],
  ] as const;
  const move = groups.flatMap(([names]) => specs.map((p) => names[p.name]));
  const into: Record<string, string> = {};
  for (const [inNames, outNames] of groups)
    for (const p of specs)
      if (trainStep.inPlace.has(inNames[p.name])) into[outNames[p.name]] = inNames[p.name];
  const session: Session = await runtime.createSession(trainStep.bytes, { name: trainStep.graph.name });
  return {
    get state() {
      return state;
    },
    restore(next) {
      state = checked(next);
    },
    async run(batch, lrs, shared = {}) {
      const lr = typeof lrs === 'number' ? new Array(K).fill(lrs) : Array.from(lrs);
      if (lr.length !== K) throw new Error(`trainer: ${lr.length} learning rates for ${K} steps`);
      const feeds: Record<string, HostTensor> = {
        [inputs.step]: { type: 'int64', dims: [], data: BigInt64Array.of(BigInt(state.step)) },
        [inputs.lr]: { type: 'float32', dims: [K], data: Float32Array.from(lr) },
      };
      for (const [name, input] of Object.entries(inputs.batch)) {
        if (!batch[name]) throw new Error(`trainer: missing batch input '${name}'`);
        feeds[input] = batch[name];
      }
      for (const [name, input] of Object.entries(inputs.shared)) {
        if (!shared[name]) throw new Error(`trainer: missing shared input '${name}'`);
        feeds[input] = shared[name];
      }
      const [params, m, v] = [state.params, state.m, state.v].map((weights, i) => {
        const lent = weightFeeds(specs, weights); // the state's own arrays, not copies
        for (const p of specs) feeds[groups[i][0][p.name]] = lent[p.name];
        return lent;
      });
      // What came back to the lent feeds: the old values (a failed run) or the new (an in-place output).
      const back = (lent: Record<string, HostTensor>) =>
        adopt(new Map(specs.map((p) => [p.name, lent[p.name].data as Float32Array])));
      let out: Record<string, HostTensor>;
      try {
        out = await session.run(feeds, undefined, { move, into });
      } catch (error) {
        state = { params: back(params), m: back(m), v: back(v), step: state.step };
        throw error;
      }
      state = {
        params: adopt(weightsOf(out, outputs.params)),
        m: adopt(weightsOf(out, outputs.m)),
        v: adopt(weightsOf(out, outputs.v)),
        step: state.step + K,
      };
      const list = (name: string) => Array.from(out[name].data as Float32Array);
      return {
        loss: list(outputs.loss),
        gradNorm: list(outputs.gradNorm),
        metrics: Object.fromEntries(Object.keys(outputs.metrics).map((k) => [k, list(outputs.metrics[k])])),
      };
    },
    release: () => session.release(),
  };
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
