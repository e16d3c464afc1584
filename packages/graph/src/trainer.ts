// The host side of a train step: params and AdamW moments lent to the ORT thread on each run and updated in
// their own buffers (docs/DESIGN.md, "Compute: buffer facts"), so a step holds one copy of the state, not three.
import {
  type HostTensor,
  type KeptFeeds,
  type Runtime,
  type Session,
  type SessionOptions,
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

// The trainer holding each array (its copies and what its runs hand back). restore() takes over the arrays of a
// live trainer without a copy (a stage's trainers of different fused lengths passing the state on); any other
// array (the caller's weights, a released trainer's final model) is copied first, never detached or changed.
const holders = new WeakMap<Float32Array, object>();
const live = new WeakSet<object>();
type Taking = 'copy' | 'adopt' | 'restore';
const hold = (self: object, weights: Weights, taking: Taking = 'adopt'): Weights => {
  const taken = new Map<string, Float32Array>();
  for (const [name, data] of weights) {
    const holder = holders.get(data);
    const keep =
      taking === 'adopt' || (taking === 'restore' && holder && live.has(holder) && data.length > 0);
    taken.set(name, keep ? data : data.slice());
    holders.set(taken.get(name) as Float32Array, self);
  }
  return taken;
};

/**
 * Host side of a float32 train step: holds parameters and AdamW state and lends them to the session on each
 * call, which writes the new values into the same buffers where the graph allows it (TrainStep.inPlace; the
 * other outputs come back as new arrays). Missing moments start at zero. The state passed to init is copied
 * (unless `adopt`); restore() takes over a live trainer's arrays and copies any other.
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
  /** Overrides of the train session's options (defaults below). */
  sessionOptions: SessionOptions = {},
): Promise<Trainer> {
  const { inputs, outputs, steps: K, dtype } = trainStep;
  const specs = trainStep.spec.params;
  if (dtype !== 'float32') throw new Error(`createTrainer: float32 train steps only, got ${dtype}`);
  const zeros = (): Weights => new Map(specs.map((p) => [p.name, new Float32Array(size(p.shape))]));
  const self = {};
  live.add(self);
  const checked = (
    next: TrainerState,
    taking: Taking,
    fresh: { m?: boolean; v?: boolean } = {},
  ): TrainerState => {
    for (const weights of [next.params, next.m, next.v]) weightFeeds(specs, weights); // every name and size
    return {
      params: hold(self, next.params, taking),
      m: hold(self, next.m, fresh.m ? 'adopt' : taking), // fresh zeros are not copied again
      v: hold(self, next.v, fresh.v ? 'adopt' : taking),
      step: next.step,
    };
  };
  let state = checked(
    { params: init.params, m: init.m ?? zeros(), v: init.v ?? zeros(), step: init.step ?? 0 },
    init.adopt ? 'adopt' : 'copy',
    { m: !init.m, v: !init.v },
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
  // No CPU arena nor memory pattern: freed gradients and activations go back to the system instead of staying
  // reserved for the next run (gpt2-shape 4 layers, peak RSS 3,170 -> 1,866 MiB; BENCHMARKS.md).
  const session: Session = await runtime.createSession(trainStep.bytes, {
    name: trainStep.graph.name,
    enableCpuMemArena: false,
    enableMemPattern: false,
    ...sessionOptions,
  });
  const keptShared = keptSharedFeeds(runtime);
  return {
    get state() {
      return state;
    },
    restore(next) {
      state = checked(next, 'restore');
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
      const sharedFeeds: Record<string, HostTensor> = {};
      for (const [name, input] of Object.entries(inputs.shared)) {
        if (!shared[name]) throw new Error(`trainer: missing shared input '${name}'`);
        sharedFeeds[input] = shared[name];
      }
      const kept = await keptShared.with(sharedFeeds);
      const [params, m, v] = [state.params, state.m, state.v].map((weights, i) => {
        const lent = weightFeeds(specs, weights); // the state's own arrays, not copies
        for (const p of specs) feeds[groups[i][0][p.name]] = lent[p.name];
        return lent;
      });
      // What came back to the lent feeds: the old values (a failed run) or the new (an in-place output).
      const back = (lent: Record<string, HostTensor>) =>
        hold(self, new Map(specs.map((p) => [p.name, lent[p.name].data as Float32Array])));
      let out: Record<string, HostTensor>;
      try {
        out = await session.run(feeds, undefined, { move, into, kept });
      } catch (error) {
        state = { params: back(params), m: back(m), v: back(v), step: state.step };
        throw error;
      }
      state = {
        params: hold(self, weightsOf(out, outputs.params)),
        m: hold(self, weightsOf(out, outputs.m)),
        v: hold(self, weightsOf(out, outputs.v)),
        step: state.step + K,
      };
      const list = (name: string) => Array.from(out[name].data as Float32Array);
      return {
        loss: list(outputs.loss),
        gradNorm: list(outputs.gradNorm),
        metrics: Object.fromEntries(Object.keys(outputs.metrics).map((k) => [k, list(outputs.metrics[k])])),
      };
    },
    async release() {
      live.delete(self); // its arrays are the caller's now: the next trainer copies them
      await keptShared.release();
      return session.release();
    },
  };
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Shared inputs (a LoRA or prompt-tuning stage's frozen base) kept in the ORT thread while runs pass the same
 * arrays: a step then sends only its batch and the trained tensors; new arrays are kept anew (values are not
 * watched: write new arrays, not into passed ones).
 */
function keptSharedFeeds(runtime: Runtime) {
  let current: { arrays: HostTensor['data'][]; kept: KeptFeeds } | undefined;
  return {
    async with(feeds: Record<string, HostTensor>): Promise<KeptFeeds[]> {
      const arrays = Object.values(feeds).map((t) => t.data);
      if (arrays.length === 0) return [];
      const same =
        current &&
        current.arrays.length === arrays.length &&
        arrays.every((a, i) => a === current!.arrays[i]);
      if (!same) {
        await current?.kept.release();
        current = undefined;
        current = { arrays, kept: await runtime.keep(feeds) };
      }
      return [current!.kept];
    },
    async release() {
      await current?.kept.release().catch(() => undefined); // nothing to free once the runtime is closed
      current = undefined;
    },
  };
}
