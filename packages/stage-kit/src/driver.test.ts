import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { type CheckpointStore, directoryCheckpointStore } from './checkpoints.js';
import { runStage, type StageBody } from './driver.js';
import { trainerJsonFromFiles } from './files.js';
import { NonFiniteError, NonFiniteValue, SHUTDOWN, StageAbortedError, type StageHooks } from './hooks.js';

// A body with no model: its state is one number that each step adds `delta` to, so every number the driver
// reports, saves and resumes from can be checked by hand.
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stage-driver-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

interface Options {
  totalSteps?: number;
  /** Steps per call of the body. */
  perCall?: number;
  /** Metric sets a call reports (1: only its last step's). */
  reported?: 'each' | 'last';
  hooks?: StageHooks;
  stage?: string;
  /** Step whose value comes out NaN. */
  nanAt?: number;
  /** Step at which the body throws NonFiniteValue. */
  badValueAt?: number;
}

function counter(options: Options = {}) {
  const calls = { released: 0, started: [] as (number | null)[] };
  const perCall = options.perCall ?? 2;
  const run = runStage({
    stage: options.stage ?? 'counter',
    totalSteps: options.totalSteps ?? 7,
    checkpointEvery: 3,
    hooks: options.hooks,
    async start(resume) {
      calls.started.push(resume?.step ?? null);
      let value = resume ? Number(resume.state.value) : 0;
      const body: StageBody<number> = {
        initialMetrics: async () => ({ value }),
        async step(first) {
          const steps = Math.min(perCall, (options.totalSteps ?? 7) - first);
          const metrics = Array.from({ length: steps }, (_, i) => {
            value += 1;
            if (options.badValueAt === first + i + 1)
              throw new NonFiniteValue('inner', first + i + 1, Infinity);
            return { value: options.nanAt === first + i + 1 ? Number.NaN : value };
          });
          return {
            steps,
            metrics: options.reported === 'last' ? metrics.slice(-1) : metrics,
            samples: [{ prompt: 'p', response: String(value), score: value, kl: 0, eos: true }],
          };
        },
        weights: () => new Map([['value', [value]]]),
        checkpoint: async () => ({
          files: { 'value.txt': new TextEncoder().encode(String(value)) },
          state: { value },
        }),
        finish: async () => value,
        release: async () => {
          calls.released += 1;
        },
      };
      return body;
    },
  });
  return { run, calls };
}

function recorder(extra: Partial<StageHooks> = {}) {
  const metrics: [number, number][] = [];
  const samples: number[] = [];
  const progress: number[] = [];
  const checkpoints = directoryCheckpointStore(dir, { keep: 5 });
  const saved: number[] = [];
  const recordingStore: CheckpointStore = {
    async save(step, files) {
      saved.push(step);
      await checkpoints.save(step, files);
    },
    latest: () => checkpoints.latest(),
  };
  const hooks: StageHooks = {
    checkpoints: recordingStore,
    onMetrics: (step, values) => {
      metrics.push([step, values.value]);
    },
    onSamples: (step) => {
      samples.push(step);
    },
    onProgress: (step) => progress.push(step),
    ...extra,
  };
  return { hooks, metrics, samples, progress, saved, checkpoints };
}

describe('runStage', () => {
  test('runs to the end: metrics per step (step 0 first), samples and progress per call, checkpoints on schedule', async () => {
    const r = recorder();
    const { run, calls } = counter({ hooks: r.hooks });
    expect(await run).toEqual({ result: 7, step: 7, resumedFrom: null });
    expect(r.metrics).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((s) => [s, s]));
    expect(r.progress).toEqual([2, 4, 6, 7]);
    expect(r.samples).toEqual([2, 4, 6, 7]);
    // Crossing a multiple of 3 (steps 4 and 6) and the last step.
    expect(r.saved).toEqual([4, 6, 7]);
    const latest = await r.checkpoints.latest();
    expect(trainerJsonFromFiles(latest!.files)).toEqual({
      stage: 'counter',
      step: 7,
      totalSteps: 7,
      value: 7,
    });
    expect(calls.released).toBe(1);
  });

  test('a body may report only the last step of each call', async () => {
    const r = recorder();
    await counter({ hooks: r.hooks, reported: 'last', perCall: 3 }).run;
    expect(r.metrics).toEqual([
      [0, 0],
      [3, 3],
      [6, 6],
      [7, 7],
    ]);
  });

  test('resumes from the latest checkpoint with its state, and skips the step-0 metrics', async () => {
    const first = recorder();
    await counter({ hooks: first.hooks, totalSteps: 4 }).run;
    const r = recorder();
    const { run, calls } = counter({ hooks: r.hooks, totalSteps: 7 });
    expect(await run).toEqual({ result: 7, step: 7, resumedFrom: 4 });
    expect(calls.started).toEqual([4]);
    expect(r.metrics[0]).toEqual([5, 5]);
  });

  test("refuses another stage's checkpoint", async () => {
    const r = recorder();
    await counter({ hooks: r.hooks, totalSteps: 2 }).run;
    await expect(counter({ hooks: r.hooks, stage: 'other' }).run).rejects.toThrow(
      "checkpoint at step 2 belongs to stage 'counter', not 'other'",
    );
  });

  test('shutdown checkpoints the current step and says so; a cancel saves nothing', async () => {
    const controller = new AbortController();
    const r = recorder({
      onMetrics: (step) => {
        if (step === 2) controller.abort(SHUTDOWN);
      },
    });
    r.hooks.signal = controller.signal;
    const { run, calls } = counter({ hooks: r.hooks });
    const error = await run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageAbortedError);
    expect(error).toMatchObject({ step: 2, checkpointed: true, reason: SHUTDOWN });
    expect(r.saved).toEqual([2]);
    expect(calls.released).toBe(1);

    const cancel = new AbortController();
    const c = recorder({
      onMetrics: (step) => {
        if (step === 4) cancel.abort('user');
      },
    });
    c.hooks.signal = cancel.signal;
    await rm(dir, { recursive: true, force: true });
    const cancelled = await counter({ hooks: c.hooks }).run.catch((e: unknown) => e);
    expect(cancelled).toMatchObject({ step: 4, checkpointed: false, reason: 'user' });
    expect(c.saved).toEqual([4]); // the scheduled checkpoint at step 4 (crossed 3); none for the cancel
  });

  test('a NaN metric stops with NonFiniteError naming metric, step and the last good checkpoint', async () => {
    const r = recorder();
    const error = await counter({ hooks: r.hooks, nanAt: 6 }).run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteError);
    expect(error).toMatchObject({ metric: 'value', step: 6, lastCheckpointStep: 4 });
    expect(r.saved).toEqual([4]);
  });

  test("a body's NonFiniteValue becomes a NonFiniteError with the last good checkpoint", async () => {
    const r = recorder();
    const { run, calls } = counter({ hooks: r.hooks, badValueAt: 5 });
    const error = await run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteError);
    expect(error).toMatchObject({ metric: 'inner', step: 5, value: Infinity, lastCheckpointStep: 4 });
    expect((error as Error).message).toContain('The last good checkpoint is step 4');
    expect(calls.released).toBe(1);
  });
});
