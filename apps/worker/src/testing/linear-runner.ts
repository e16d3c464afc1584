// A small real stage runner for the worker's tests (the real trainers live in packages/sft, reward-model, ppo):
// linear regression y = x·w + b trained with AdamW by @rlhf/graph's fused train step on @rlhf/runtime, with
// real checkpoints (weights + AdamW moments as safetensors, step in state.json) and real resume. The batch of
// step s depends only on (seed, s), so a resumed run follows the uninterrupted one exactly.
import type { StageJobData, StageJobResult } from '@rlhf/contracts';
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
} from '@rlhf/graph';
import { readSafetensors, type SafeTensor, writeSafetensors } from '@rlhf/model';
import {
  type StageContext,
  type StageRunner,
  type StageRunners,
  stopReason,
  throwIfStopped,
} from '@rlhf/queue';
import { float32, type HostTensor } from '@rlhf/runtime';

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
  const total = job.kind === 'ppo' ? job.config.iterations : (job.config.maxSteps ?? 60);
  const perCall = job.kind === 'ppo' ? 1 : job.config.stepsPerCall;
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
      loss: (p: Record<string, Tensor>, b: Record<string, Tensor>) => {
        const err = sub(add(matmul(b.x, p.w), p.b), b.y);
        return { loss: reduceMean(mul(err, err)) };
      },
      steps: s.perCall,
    });
    const trainer = await createTrainer(ctx.runtime, trainStep, await initialState(job, ctx, s.seed));
    const save = () => {
      const { params, m, v, step } = trainer.state;
      return ctx.saveCheckpoint(
        step,
        {
          'model.safetensors': toSafetensors(params),
          'optimizer.safetensors': toSafetensors({ ...prefixed('m.', m), ...prefixed('v.', v) }),
        },
        { step, dataPosition: step },
      );
    };
    try {
      while (trainer.state.step < s.total) {
        if (ctx.signal.aborted) {
          if (stopReason(ctx.signal) === 'shutdown') await save();
          throwIfStopped(ctx.signal);
        }
        const before = trainer.state.step;
        const report = await trainer.run(batchFor(s.seed, before, s.perCall), s.lr);
        const step = trainer.state.step;
        await ctx.report.metrics(step, {
          'train/loss': report.loss[report.loss.length - 1],
          'train/lr': s.lr,
        });
        await ctx.report.progress(step, s.total);
        if (Math.floor(step / s.checkpointEvery) > Math.floor(before / s.checkpointEvery)) await save();
        if (options.delayMs) await sleep(options.delayMs, ctx.signal);
      }
      const modelKey = await ctx.saveFinal({ 'model.safetensors': toSafetensors(trainer.state.params) });
      const result: StageJobResult = {
        stageId: job.stageId,
        kind: job.kind,
        modelKey,
        step: trainer.state.step,
      };
      return result;
    } finally {
      await trainer.release();
    }
  };
}

// Resume from this stage's checkpoint, else start from the previous stage's model, else from seeded noise.
async function initialState(job: StageJobData, ctx: StageContext, seed: number) {
  if (ctx.resume) {
    const params = fromSafetensors(await ctx.readCheckpointFile(ctx.resume, 'model.safetensors'));
    const optimizer = fromSafetensors(await ctx.readCheckpointFile(ctx.resume, 'optimizer.safetensors'));
    const pick = (p: string) =>
      Object.fromEntries(PARAMS.map(({ name }) => [name, optimizer[`${p}${name}`]]));
    return { params, m: pick('m.'), v: pick('v.'), step: ctx.resume.step };
  }
  if (job.inputs.policy) {
    return { params: fromSafetensors(await ctx.artifacts.get(`${job.inputs.policy}/model.safetensors`)) };
  }
  const random = rng(seed);
  return {
    params: Object.fromEntries(
      PARAMS.map(({ name, shape }) => [
        name,
        float32(
          shape,
          Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() - 0.5),
        ),
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

export function toSafetensors(tensors: Record<string, HostTensor>): Uint8Array {
  const map = new Map<string, SafeTensor>();
  for (const [name, t] of Object.entries(tensors)) {
    map.set(name, { dtype: 'F32', shape: [...t.dims], data: Float32Array.from(t.data as Float32Array) });
  }
  return writeSafetensors(map);
}

export function fromSafetensors(bytes: Uint8Array): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of readSafetensors(bytes).tensors) {
    if (t.dtype !== 'F32') throw new Error(`tensor ${name}: expected F32, got ${t.dtype}`);
    out[name] = float32(t.shape, t.data);
  }
  return out;
}

const prefixed = (p: string, tensors: Record<string, HostTensor>) =>
  Object.fromEntries(Object.entries(tensors).map(([name, t]) => [`${p}${name}`, t]));

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
