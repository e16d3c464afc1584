// Fused update calls sized to a time budget, for stages whose one iteration is many optimizer steps (GRPO, PPO,
// RAFT): the iteration's K steps run as calls of c steps (c measured so a call takes about the budget), and the
// stage's abort signal is checked between calls, so a cancel or a pause reaches it within about one budget.
import { CALL_BUDGET_SECONDS } from '@rlhf/contracts';
import { createTrainer, type StepReport, type Trainer, type TrainerState, type TrainStep } from '@rlhf/graph';
import { trainerCache } from './trainer-cache.js';
import type { HostTensor, Runtime, Weights } from '@rlhf/runtime';

/**
 * A stage body saw its abort signal in the middle of a step. `clean`: nothing of the step has changed the
 * stage's state yet (a checkpoint now is the one of the step's start). The driver turns it into StageAbortedError.
 */
export class StepInterrupted extends Error {
  override name = 'StepInterrupted';
  constructor(
    readonly reason: unknown,
    readonly clean: boolean,
  ) {
    super(`step interrupted (${String(reason)})`);
  }
}

/** Throws StepInterrupted when `signal` is aborted (checked between a step's phases and calls). */
export function throwIfInterrupted(signal: AbortSignal | undefined, clean: boolean): void {
  if (signal?.aborted) throw new StepInterrupted(signal.reason, clean);
}

export interface BudgetedTrainerOptions {
  /** Optimizer steps of one run() (e.g. epochs × minibatches). */
  steps: number;
  /** The train step fused over `steps` steps: the same graph for every length. */
  build(steps: number): TrainStep;
  signal?: AbortSignal;
  /** Default @rlhf/contracts CALL_BUDGET_SECONDS. */
  budgetSeconds?: number;
  log?(message: string): void;
}

/**
 * A Trainer over `steps` optimizer steps per run() whose session calls are sized to the budget: the first call
 * is one step (its time sets the call length), later calls take as many steps as fit in the budget (a power of
 * two, re-measured after each call). Between calls the signal is checked (StepInterrupted, not clean). At most two sessions are kept.
 */
export async function createBudgetedTrainer(
  runtime: Runtime,
  init: { params: Weights; m?: Weights; v?: Weights; step?: number },
  options: BudgetedTrainerOptions,
): Promise<Trainer> {
  const K = options.steps;
  const budget = options.budgetSeconds ?? CALL_BUDGET_SECONDS;
  // The first call is one step: its time sets the length of the next ones.
  let callSteps = 1;
  const trainers = trainerCache((k, from) => createTrainer(runtime, options.build(k), from));
  let state: TrainerState = (await trainers.start(callSteps, init)).state;
  const trainerFor = (k: number) => trainers.get(k, state);

  return {
    get state() {
      return state;
    },
    restore(next) {
      state = next;
    },
    async run(batch, lrs, shared) {
      const lr = typeof lrs === 'number' ? new Array<number>(K).fill(lrs) : Array.from(lrs);
      const report: StepReport = { loss: [], gradNorm: [], metrics: {} };
      for (let done = 0; done < K; ) {
        if (done > 0) throwIfInterrupted(options.signal, false);
        const k = Math.min(callSteps, K - done);
        const active = await trainerFor(k);
        const started = performance.now();
        const out = await active.run(sliceSteps(batch, done, k), lr.slice(done, done + k), shared);
        const seconds = (performance.now() - started) / 1000;
        state = active.state;
        append(report.loss, out.loss);
        append(report.gradNorm, out.gradNorm);
        for (const [name, values] of Object.entries(out.metrics)) {
          report.metrics[name] = report.metrics[name] ?? [];
          append(report.metrics[name], values);
        }
        done += k;
        // Steps that fit in the budget at this call's pace, as a power of two (few distinct sessions), at most K.
        const fit = Math.max(1, Math.floor((k * budget) / Math.max(seconds, 1e-6)));
        const next = Math.min(K, 2 ** Math.floor(Math.log2(fit)));
        if (next !== callSteps)
          options.log?.(`${k} steps took ${seconds.toFixed(2)} s; ${next} per call from now on`);
        callSteps = next;
      }
      return report;
    },
    release: () => trainers.release(),
  };
}

/** Steps [from, from + k) of a batch whose inputs are stacked [K, ...] by step. */
function sliceSteps(batch: Record<string, HostTensor>, from: number, k: number): Record<string, HostTensor> {
  return Object.fromEntries(
    Object.entries(batch).map(([name, tensor]) => {
      const [K, ...rest] = tensor.dims;
      const per = tensor.data.length / K;
      const data = tensor.data.slice(from * per, (from + k) * per) as typeof tensor.data;
      return [name, { ...tensor, dims: [k, ...rest], data } as HostTensor];
    }),
  );
}

// A loop, not push(...from): a long update's series would overflow the call stack as arguments.
function append(to: number[], from: readonly number[]): void {
  for (const x of from) to.push(x);
}
