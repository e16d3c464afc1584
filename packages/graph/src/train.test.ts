import { createRuntime, float32, type HostTensor, type Runtime, type Weights } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Tensor } from './graph.js';
import { lrSchedule, lrsFor, rng } from './host.js';
import { add, cast, equal, greater, logSigmoid, matmul, mul, neg, reduceMean, sub, tanh } from './index.js';
import { buildTrainStep, type TrainStepSpec } from './train.js';
import { createTrainer } from './trainer.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

const HIDDEN = 8;
const mlpParams = [
  { name: 'w1', shape: [2, HIDDEN] },
  { name: 'b1', shape: [HIDDEN] },
  { name: 'w2', shape: [HIDDEN, 1] },
  { name: 'b2', shape: [1] },
];

// A 2-layer tanh MLP classifier with a logistic loss: -mean(y log s(z) + (1 - y) log s(-z)).
function mlpLoss(p: Map<string, Tensor>, batch: Record<string, Tensor>) {
  const h = tanh(add(matmul(batch.x, p.get('w1')!), p.get('b1')!));
  const z = add(matmul(h, p.get('w2')!), p.get('b2')!);
  const y = batch.y;
  const loss = neg(reduceMean(add(mul(y, logSigmoid(z)), mul(sub(1, y), logSigmoid(neg(z))))));
  const accuracy = reduceMean(cast(equal(cast(greater(z, 0), 'float32'), y), 'float32'));
  return { loss, metrics: { accuracy } };
}

function mlpSpec(overrides: Partial<TrainStepSpec>, rows = 4): TrainStepSpec {
  return {
    name: 'mlp',
    params: mlpParams,
    batch: [
      { name: 'x', dtype: 'float32', shape: [rows, 2] },
      { name: 'y', dtype: 'float32', shape: [rows, 1] },
    ],
    loss: mlpLoss,
    optimizer: { weightDecay: 0.01 },
    ...overrides,
  };
}

function initParams(seed: number): Weights {
  const random = rng(seed);
  return new Map(
    mlpParams.map((p) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      return [p.name, Float32Array.from({ length: n }, () => (random() * 2 - 1) * 0.8)];
    }),
  );
}

/** The same [rows] samples repeated into [K, M, rows, ...] stacks. */
function stack(K: number, M: number, rows: number[][], width: number): HostTensor {
  const flat = rows.flat();
  return float32([K, M, rows.length, width], Array.from({ length: K * M }, () => flat).flat());
}

const XOR_X = [
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
];
const XOR_Y = [[0], [1], [1], [0]];

test('a small MLP learns XOR to 100% accuracy with in-graph training steps', async () => {
  const K = 50;
  const step = buildTrainStep(mlpSpec({ steps: K }));
  const trainer = await createTrainer(runtime, step, { params: initParams(7) });
  const schedule = lrSchedule({ kind: 'cosine', lr: 0.05, warmupSteps: 10, totalSteps: 600 });
  const batch = { x: stack(K, 1, XOR_X, 2), y: stack(K, 1, XOR_Y, 1) };
  let report = await trainer.run(batch, lrsFor(schedule, 0, K));
  const firstLoss = report.loss[0];
  for (let call = 1; call < 12; call++) report = await trainer.run(batch, lrsFor(schedule, call * K, K));
  expect(trainer.state.step).toBe(12 * K);
  expect(report.loss).toHaveLength(K);
  expect(report.loss[K - 1]).toBeLessThan(firstLoss / 10);
  expect(report.metrics.accuracy[K - 1]).toBe(1);
  expect(report.gradNorm.every((n) => Number.isFinite(n) && n >= 0)).toBe(true);
  await trainer.release();
});

describe('fusion', () => {
  const maxRelDiff = (a: Weights, b: Weights) =>
    Math.max(
      ...[...a.keys()].flatMap((k) =>
        Array.from(a.get(k)!, (v, i) => {
          const w = b.get(k)![i];
          return Math.abs(v - w) / Math.max(Math.abs(v), Math.abs(w), 1e-12);
        }),
      ),
    );

  test('one Loop of K steps gives the parameters of K single-step runs', async () => {
    const K = 6;
    const random = rng(11);
    // Different data and learning rate at every step.
    const xs = Array.from({ length: K }, () => XOR_X.map((r) => r.map((v) => v + random() * 0.2)));
    const lrs = Array.from({ length: K }, (_, i) => 0.01 * (i + 1));
    const fused = await createTrainer(
      runtime,
      buildTrainStep(mlpSpec({ steps: K, optimizer: { maxGradNorm: 1 } })),
      {
        params: initParams(3),
      },
    );
    const single = await createTrainer(
      runtime,
      buildTrainStep(mlpSpec({ steps: 1, optimizer: { maxGradNorm: 1 } })),
      {
        params: initParams(3),
      },
    );
    const fusedReport = await fused.run(
      { x: float32([K, 1, 4, 2], xs.flat(2)), y: stack(K, 1, XOR_Y, 1) },
      lrs,
    );
    const losses: number[] = [];
    for (let k = 0; k < K; k++) {
      const r = await single.run({ x: float32([1, 1, 4, 2], xs[k].flat()), y: stack(1, 1, XOR_Y, 1) }, [
        lrs[k],
      ]);
      losses.push(r.loss[0]);
    }
    expect(single.state.step).toBe(K);
    expect(maxRelDiff(fused.state.params, single.state.params)).toBeLessThanOrEqual(1e-6);
    expect(maxRelDiff(fused.state.m, single.state.m)).toBeLessThanOrEqual(1e-6);
    expect(maxRelDiff(fused.state.v, single.state.v)).toBeLessThanOrEqual(1e-6);
    fusedReport.loss.forEach((l, k) => {
      expect(l).toBeCloseTo(losses[k], 6);
    });
    expect(maxRelDiff(fused.state.params, initParams(3))).toBeGreaterThan(1e-3);
    await fused.release();
    await single.release();
  });

  test('accumulating M micro-batches equals one step on their union', async () => {
    // Two micro-batches of 2 rows averaged == one batch of 4 rows (the loss is a mean over rows).
    const K = 3;
    const accumulated = await createTrainer(
      runtime,
      buildTrainStep(mlpSpec({ steps: K, accumulate: 2 }, 2)),
      {
        params: initParams(5),
      },
    );
    const whole = await createTrainer(runtime, buildTrainStep(mlpSpec({ steps: K }, 4)), {
      params: initParams(5),
    });
    const a = await accumulated.run(
      {
        x: float32([K, 2, 2, 2], Array(K).fill(XOR_X.flat()).flat()),
        y: float32([K, 2, 2, 1], Array(K).fill([0, 1, 1, 0]).flat()),
      },
      0.05,
    );
    const w = await whole.run({ x: stack(K, 1, XOR_X, 2), y: stack(K, 1, XOR_Y, 1) }, 0.05);
    a.loss.forEach((l, k) => {
      expect(l).toBeCloseTo(w.loss[k], 6);
    });
    a.metrics.accuracy.forEach((acc, k) => {
      expect(acc).toBeCloseTo(w.metrics.accuracy[k], 6);
    });
    expect(maxRelDiff(accumulated.state.params, whole.state.params)).toBeLessThanOrEqual(1e-5);
    await accumulated.release();
    await whole.release();
  });
});

test('shared inputs reach the loss; with zero gradients AdamW only decays matrices', async () => {
  const spec = mlpSpec({
    steps: 2,
    shared: [{ name: 'scale', dtype: 'float32', shape: [] }],
    loss: (p, b, shared) => ({ loss: mul(mlpLoss(p, b).loss, shared.scale) }),
    optimizer: { weightDecay: 0.5 },
  });
  const init = initParams(9);
  const trainer = await createTrainer(runtime, buildTrainStep(spec), { params: init });
  const lr = 0.1;
  const report = await trainer.run({ x: stack(2, 1, XOR_X, 2), y: stack(2, 1, XOR_Y, 1) }, lr, {
    scale: float32([], [0]),
  });
  expect(report.gradNorm).toEqual([0, 0]);
  const after = trainer.state.params;
  const w1 = after.get('w1')!;
  init.get('w1')!.forEach((v, i) => {
    expect(w1[i]).toBeCloseTo(v * (1 - lr * 0.5) ** 2, 6);
  });
  expect(Array.from(after.get('b1')!)).toEqual(Array.from(init.get('b1')!));
  await trainer.release();
});

test('shared inputs stay in the ORT thread while the same arrays are passed; new arrays are used at once', async () => {
  const spec = mlpSpec({
    shared: [{ name: 'scale', dtype: 'float32', shape: [] }],
    loss: (p, b, shared) => ({ loss: mul(mlpLoss(p, b).loss, shared.scale) }),
  });
  const batch = { x: stack(1, 1, XOR_X, 2), y: stack(1, 1, XOR_Y, 1) };
  const scaleOf = (s: number) => ({ scale: float32([], [s]) });
  // Reference: a fresh trainer per run, each sending its shared input anew.
  const fresh = async (state: { params: Weights; m?: Weights; v?: Weights; step?: number }, s: number) => {
    const t = await createTrainer(runtime, buildTrainStep(spec), state);
    const report = await t.run(batch, 0.05, scaleOf(s));
    const next = t.state;
    await t.release();
    return { report, next };
  };
  const trainer = await createTrainer(runtime, buildTrainStep(spec), { params: initParams(3) });
  const one = scaleOf(1);
  let expected = { params: initParams(3) } as { params: Weights; m?: Weights; v?: Weights; step?: number };
  for (const [shared, s] of [
    [one, 1],
    [one, 1],
    [scaleOf(3), 3],
    [one, 1],
  ] as const) {
    const report = await trainer.run(batch, 0.05, shared);
    const reference = await fresh(expected, s);
    expect(report).toEqual(reference.report);
    expect(trainer.state.params).toEqual(reference.next.params);
    expected = reference.next;
  }
  // The shared array itself is untouched (kept as a copy in the ORT thread).
  expect(Array.from(one.scale.data as Float32Array)).toEqual([1]);
  await trainer.release();
});
