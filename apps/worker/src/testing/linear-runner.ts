// A small real stage for the worker's tests, written against the same contract as the real trainers (a body on
// @rlhf/stage-kit's runStage with the worker's hooks): linear regression y = x·w + b trained with AdamW by
// @rlhf/graph's fused train step, with real checkpoints and resume. The batch of step s depends only on
// (seed, s), so a resumed run follows the uninterrupted one exactly.
import type { StageJobData } from '@rlhf/contracts';
import {
  add,
  buildTrainStep,
  createTrainer,
  matmul,
  mul,
  reduceMean,
  rng,
  sub,
  type Tensor,
  type TrainerState,
} from '@rlhf/graph';
import { readSafetensors, type SafeTensor, writeSafetensors } from '@rlhf/model';
import { float32, type HostTensor, type Weights } from '@rlhf/runtime';
import { optimizerFiles, optimizerFromFiles, type ResumePoint, runStage } from '@rlhf/stage-kit';
import type { StageContext, StageRunner, StageRunners } from '../context.js';

const FEATURES = 4;
const ROWS = 16;
/** The weights the runner should learn. */
export const TRUE_W = [1, -2, 3, 0.5];
export const TRUE_B = 0.25;
const PARAMS = [
  { name: 'w', shape: [FEATURES, 1] },
  { name: 'b', shape: [1] },
];

export interface LinearRunnerOptions {
  /** Pause after each fused call (abortable), so tests can act while a stage runs. */
  delayMs?: number;
}

/** How a job's config drives the runner: steps, fused steps per call, checkpoint interval, lr, seed. */
export function linearSettings(job: StageJobData) {
  if (job.kind === 'eval') throw new Error('the linear runner trains; an eval stage has nothing to train');
  const iterative = job.kind === 'ppo' || job.kind === 'raft' || job.kind === 'grpo';
  const total = iterative ? job.config.iterations : (job.config.maxSteps ?? 60);
  const perCall = iterative ? 1 : job.config.stepsPerCall;
  return {
    total,
    perCall: total % perCall === 0 ? perCall : 1,
    checkpointEvery: job.config.checkpointEvery,
    lr: job.config.lr,
    seed: job.config.seed,
  };
}

export function linearRunner(options: LinearRunnerOptions = {}): StageRunner {
  return async (job, ctx) => {
    const s = linearSettings(job);
    const trainStep = buildTrainStep({
      name: 'linear_regression',
      params: PARAMS,
      batch: [
        { name: 'x', dtype: 'float32', shape: [ROWS, FEATURES] },
        { name: 'y', dtype: 'float32', shape: [ROWS, 1] },
      ],
      // Mean squared error.
      loss: (p: Map<string, Tensor>, b: Record<string, Tensor>) => {
        const err = sub(add(matmul(b.x, p.get('w')!), p.get('b')!), b.y);
        return { loss: reduceMean(mul(err, err)) };
      },
      steps: s.perCall,
    });
    // The same stage driver as the real trainers: resume, checkpoints, abort, NaN guard, reporting.
    const run = await runStage({
      stage: job.kind,
      totalSteps: s.total,
      checkpointEvery: s.checkpointEvery,
      hooks: ctx.hooks,
      async start(resume) {
        const trainer = await createTrainer(
          ctx.runtime,
          trainStep,
          await initialState(job, ctx, s.seed, resume),
        );
        return {
          async step(first) {
            const report = await trainer.run(batchFor(s.seed, first, s.perCall), s.lr);
            if (options.delayMs && ctx.hooks.signal) await sleep(options.delayMs, ctx.hooks.signal);
            // Reported once per call: the last step's loss.
            return {
              steps: s.perCall,
              metrics: [{ 'train/loss': report.loss[s.perCall - 1], 'train/lr': s.lr }],
            };
          },
          weights: () => trainer.state.params,
          checkpoint: async () => ({
            files: {
              'model.safetensors': toSafetensors(trainer.state.params),
              ...optimizerFiles(trainer.state),
            },
            state: { dataPosition: trainer.state.step },
          }),
          finish: async () => trainer.state.params,
          release: () => trainer.release(),
        };
      },
    });
    const modelKey = await ctx.saveFinal({ 'model.safetensors': toSafetensors(run.result) });
    return { stageId: job.stageId, kind: job.kind, modelKey, step: run.step };
  };
}

// Resume from this stage's checkpoint, else start from the previous stage's model, else from seeded noise.
async function initialState(
  job: StageJobData,
  ctx: StageContext,
  seed: number,
  resume: ResumePoint | null,
): Promise<Partial<TrainerState> & { params: Weights }> {
  if (resume) {
    const params = fromSafetensors(resume.files['model.safetensors']);
    return { params, ...optimizerFromFiles(resume.files), step: resume.step };
  }
  if (job.inputs.policy) {
    return { params: fromSafetensors(await ctx.artifacts.get(`${job.inputs.policy}/model.safetensors`)) };
  }
  const random = rng(seed);
  return {
    params: new Map(
      PARAMS.map(({ name, shape }) => [
        name,
        Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() - 0.5),
      ]),
    ),
  };
}

/** Batches of steps [start, start + count): x seeded by (seed, step), y = x·TRUE_W + TRUE_B; [K, 1, ROWS, ·]. */
export function batchFor(seed: number, start: number, count: number): Record<string, HostTensor> {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let step = start; step < start + count; step++) {
    const random = rng(seed * 100_003 + step);
    for (let row = 0; row < ROWS; row++) {
      const x = TRUE_W.map(() => random() * 2 - 1);
      xs.push(...x);
      ys.push(x.reduce((sum, xi, i) => sum + xi * TRUE_W[i], TRUE_B));
    }
  }
  return { x: float32([count, 1, ROWS, FEATURES], xs), y: float32([count, 1, ROWS, 1], ys) };
}

export function toSafetensors(weights: Weights): Uint8Array {
  const shapes = new Map(PARAMS.map((p) => [p.name, p.shape]));
  const map = new Map<string, SafeTensor>();
  for (const [name, data] of weights)
    map.set(name, { dtype: 'F32', shape: shapes.get(name) ?? [data.length], data });
  return writeSafetensors(map);
}

export function fromSafetensors(bytes: Uint8Array): Weights {
  const out: Weights = new Map();
  for (const [name, t] of readSafetensors(bytes).tensors) {
    if (t.dtype !== 'F32') throw new Error(`tensor ${name}: expected F32, got ${t.dtype}`);
    out.set(name, Float32Array.from(t.data as Float32Array));
  }
  return out;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** For `main.ts --runners`: every stage kind trains the linear model; LINEAR_RUNNER_DELAY_MS slows it down. */
export const runners: StageRunners = (() => {
  const runner = linearRunner({ delayMs: Number(process.env.LINEAR_RUNNER_DELAY_MS ?? 0) });
  return { sft: runner, reward_model: runner, ppo: runner };
})();
