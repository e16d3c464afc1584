import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTrainStep, createTrainer, matmul, reduceMean, sub, type Tensor, mul } from '@rlhf/graph';
import { createRuntime, float32, type Runtime, type Weights } from '@rlhf/runtime';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createBudgetedTrainer, StepInterrupted } from './budget.js';
import { directoryCheckpointStore } from './checkpoints.js';
import { runStage } from './driver.js';
import { PAUSE, StageAbortedError } from './hooks.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

// Least squares y ≈ x·w on 4 rows of 3 features: a real train step whose K fused steps are easy to compare.
const K = 12;
const build = (steps: number) =>
  buildTrainStep({
    name: 'lsq',
    params: [{ name: 'w', shape: [3, 1] }],
    batch: [
      { name: 'x', dtype: 'float32', shape: [4, 3] },
      { name: 'y', dtype: 'float32', shape: [4, 1] },
    ],
    loss: (p: Map<string, Tensor>, b: Record<string, Tensor>) => {
      const r = sub(matmul(b.x, p.get('w')!), b.y);
      return { loss: reduceMean(mul(r, r)), metrics: {} };
    },
    optimizer: {},
    steps,
  });
const init = (): { params: Weights } => ({ params: new Map([['w', Float32Array.of(0.5, -0.2, 0.1)]]) });
// A different batch at every step (x of step k scaled by 1 + k/10).
const batch = {
  x: float32(
    [K, 1, 4, 3],
    Array.from({ length: K }, (_, k) =>
      [1, 2, 0, 0, 1, 3, 2, 1, 1, 1, 0, 2].map((v) => v * (1 + k / 10)),
    ).flat(),
  ),
  y: float32([K, 1, 4, 1], Array.from({ length: K }, () => [1, -1, 2, 0.5]).flat()),
};
const lrs = Array.from({ length: K }, (_, k) => 0.01 * (k + 1));

const maxDiff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));

test('calls sized to the budget give the fused run’s weights, moments and losses', async () => {
  const fused = await createTrainer(runtime, build(K), init());
  const reference = await fused.run(batch, lrs);
  // A budget no call can meet: every call is one step. A huge one: one step to measure, then the other 11.
  for (const budgetSeconds of [1e-9, 1e9]) {
    const logs: string[] = [];
    const budgeted = await createBudgetedTrainer(runtime, init(), {
      steps: K,
      build,
      budgetSeconds,
      log: (m) => logs.push(m),
    });
    const report = await budgeted.run(batch, lrs);
    expect(budgeted.state.step).toBe(K);
    expect(maxDiff(budgeted.state.params.get('w')!, fused.state.params.get('w')!)).toBeLessThan(1e-6);
    expect(maxDiff(budgeted.state.m.get('w')!, fused.state.m.get('w')!)).toBeLessThan(1e-6);
    expect(maxDiff(budgeted.state.v.get('w')!, fused.state.v.get('w')!)).toBeLessThan(1e-9);
    expect(report.loss).toHaveLength(K);
    report.loss.forEach((l, k) => {
      expect(l).toBeCloseTo(reference.loss[k], 5);
    });
    expect(logs.join('\n')).toMatch(budgetSeconds < 1 ? /^$/ : /1 steps took .* 12 per call from now on/);
    await budgeted.release();
  }
  await fused.release();
});

test('an aborted signal stops the update between calls (not clean: the weights have moved)', async () => {
  const controller = new AbortController();
  const budgeted = await createBudgetedTrainer(runtime, init(), {
    steps: K,
    build,
    budgetSeconds: 1e-9,
    signal: controller.signal,
  });
  controller.abort('cancel');
  const error = await budgeted.run(batch, lrs).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(StepInterrupted);
  expect((error as StepInterrupted).clean).toBe(false);
  expect(budgeted.state.step).toBe(1); // the first call ran; none after the abort
  await budgeted.release();
});

test('the driver turns StepInterrupted into StageAbortedError; a clean pause checkpoints the step’s start', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'budget-'));
  try {
    const run = (clean: boolean) => {
      const controller = new AbortController();
      const checkpoints = directoryCheckpointStore(join(dir, String(clean)));
      let weights = 0;
      return runStage({
        stage: 'demo',
        totalSteps: 10,
        checkpointEvery: 100,
        hooks: { signal: controller.signal, checkpoints },
        start: async () => ({
          async step(step) {
            if (step === 3) {
              controller.abort(PAUSE);
              if (!clean) weights += 0.5; // half an iteration applied
              throw new StepInterrupted(PAUSE, clean);
            }
            weights += 1;
            return { steps: 1, metrics: [{ weights }] };
          },
          weights: () => new Map([['w', [weights]]]),
          checkpoint: async () => ({ files: {}, state: { weights } }),
          finish: async () => weights,
          release: async () => {},
        }),
      }).catch(async (e: unknown) => ({ error: e, latest: await checkpoints.latest() }));
    };
    const clean = (await run(true)) as { error: StageAbortedError; latest: { step: number } | null };
    expect(clean.error).toBeInstanceOf(StageAbortedError);
    expect(clean.error.step).toBe(3);
    expect(clean.error.checkpointed).toBe(true);
    expect(clean.latest?.step).toBe(3);
    // Mid-update: no checkpoint of half an iteration; the stage resumes from an earlier one (here none).
    const dirty = (await run(false)) as { error: StageAbortedError; latest: { step: number } | null };
    expect(dirty.error).toBeInstanceOf(StageAbortedError);
    expect(dirty.error.checkpointed).toBe(false);
    expect(dirty.latest).toBeNull();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
