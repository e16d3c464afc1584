import { createRuntime, float32, float64, int64, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { grad } from './autodiff.js';
import { Graph } from './graph.js';
import { lrSchedule, rng } from './host.js';
import { add, mul, reduceSum, sub } from './index.js';
import { adamw, clipByGlobalNorm } from './optim.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

// Plain-TypeScript AdamW (PyTorch semantics) for one parameter vector.
function adamwReference(
  p: number[],
  g: number[],
  m: number[],
  v: number[],
  t: number,
  o: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number },
) {
  return p.map((pi, i) => {
    const decayed = pi * (1 - o.lr * o.weightDecay);
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
    const mHat = m[i] / (1 - o.beta1 ** t);
    const vHat = v[i] / (1 - o.beta2 ** t);
    return decayed - (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
  });
}

test('AdamW matches a plain TypeScript reference over several steps (decay masked per parameter)', async () => {
  // Loss sum((w * x - y)^2) + sum((b - 1)^2): w decays, b does not.
  const o = { lr: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };
  const g = new Graph('adamw');
  const [x, y] = [g.input('x', 'float64', [4]), g.input('y', 'float64', [4])];
  const w = g.input('w', 'float64', [4]);
  const b = g.input('b', 'float64', [2]);
  const state = ['mw', 'mb', 'vw', 'vb'].map((n, i) => g.input(n, 'float64', [i % 2 ? 2 : 4]));
  const step = g.input('step', 'int64', []);
  const lr = g.input('lr', 'float64', []);
  const r = sub(mul(w, x), y);
  const sq = sub(b, 1);
  const loss = add(reduceSum(mul(r, r)), reduceSum(mul(sq, sq)));
  const [gw, gb] = grad(loss, [w, b]);
  const next = adamw(
    [w, b],
    [gw, gb],
    { m: [state[0], state[1]], v: [state[2], state[3]] },
    { ...o, lr, step, decay: [true, false] },
  );
  next.params.forEach((t, i) => {
    g.output(t, `p${i}`);
  });
  [...next.m, ...next.v].forEach((t, i) => {
    g.output(t, `s${i}`);
  });
  const session = await runtime.createSession(g.toBytes());

  const random = rng(3);
  const xs = Array.from({ length: 4 }, () => random() * 2 - 1);
  const ys = Array.from({ length: 4 }, () => random() * 2 - 1);
  let pw = Array.from({ length: 4 }, () => random());
  let pb = [0.3, -0.2];
  const ref = { mw: [0, 0, 0, 0], vw: [0, 0, 0, 0], mb: [0, 0], vb: [0, 0] };
  let feedsState = [
    [0, 0, 0, 0],
    [0, 0],
    [0, 0, 0, 0],
    [0, 0],
  ];
  let graphW = pw;
  let graphB = pb;
  for (let t = 1; t <= 5; t++) {
    const out = await session.run({
      x: float64([4], xs),
      y: float64([4], ys),
      w: float64([4], graphW),
      b: float64([2], graphB),
      mw: float64([4], feedsState[0]),
      mb: float64([2], feedsState[1]),
      vw: float64([4], feedsState[2]),
      vb: float64([2], feedsState[3]),
      step: { type: 'int64', dims: [], data: BigInt64Array.of(BigInt(t)) },
      lr: float64([], [o.lr]),
    });
    graphW = Array.from(out.p0.data as Float64Array);
    graphB = Array.from(out.p1.data as Float64Array);
    feedsState = [0, 1, 2, 3].map((i) => Array.from(out[`s${i}`].data as Float64Array));
    const gW = pw.map((wi, i) => 2 * (wi * xs[i] - ys[i]) * xs[i]);
    const gB = pb.map((bi) => 2 * (bi - 1));
    pw = adamwReference(pw, gW, ref.mw, ref.vw, t, o);
    pb = adamwReference(pb, gB, ref.mb, ref.vb, t, { ...o, weightDecay: 0 });
  }
  graphW.forEach((v, i) => {
    expect(v).toBeCloseTo(pw[i], 12);
  });
  graphB.forEach((v, i) => {
    expect(v).toBeCloseTo(pb[i], 12);
  });
  expect(graphB[0]).not.toBeCloseTo(0.3, 3); // parameters moved
  await session.release();
});

test('float32 AdamW: bias corrections in float64 (first step = lr·g/(|g|+ε) to float32 precision)', async () => {
  // In float32, 1 − 0.999 is 1.3e-5 off: v̂ then is too, and the first update 6.4e-6 too small.
  const g = new Graph('adamw_f32');
  const [p, grads, m, v] = ['p', 'g', 'm', 'v'].map((n) => g.input(n, 'float32', [2]));
  const next = adamw(
    [p],
    [grads],
    { m: [m], v: [v] },
    { lr: 1, step: g.input('step', 'int64', []), weightDecay: 0 },
  );
  g.output(next.params[0], 'next');
  const session = await runtime.createSession(g.toBytes());
  const zeros = float32([2], [0, 0]);
  const out = await session.run({
    p: zeros,
    g: float32([2], [1, -3]),
    m: zeros,
    v: zeros,
    step: int64([], [1]),
  });
  const moved = Array.from(out.next.data as Float32Array);
  expect(Math.abs(moved[0] + 1 / (1 + 1e-8))).toBeLessThan(2e-7);
  expect(Math.abs(moved[1] - 3 / (3 + 1e-8))).toBeLessThan(2e-7);
  await session.release();
});

test('clipByGlobalNorm scales gradients to the max norm and reports the norm before clipping', async () => {
  const g = new Graph('clip');
  const a = g.input('a', 'float64', [2]);
  const b = g.input('b', 'float64', [1]);
  const clipped = clipByGlobalNorm([a, b], 1);
  g.output(clipped.grads[0], 'ca');
  g.output(clipped.grads[1], 'cb');
  g.output(clipped.norm, 'norm');
  const session = await runtime.createSession(g.toBytes());
  const big = await session.run({ a: float64([2], [3, 4]), b: float64([1], [12]) });
  expect(big.norm.data[0]).toBeCloseTo(13, 12);
  const ca = big.ca.data as Float64Array;
  expect(ca[0]).toBeCloseTo(3 / (13 + 1e-6), 14);
  expect(ca[1]).toBeCloseTo(4 / (13 + 1e-6), 14);
  expect(big.cb.data[0]).toBeCloseTo(12 / (13 + 1e-6), 14);
  const small = await session.run({ a: float64([2], [0.3, 0.4]), b: float64([1], [0]) });
  expect(Array.from(small.ca.data as Float64Array)).toEqual([0.3, 0.4]);
  await session.release();
});

test('lrSchedule: warmup then cosine / linear decay to minLr; constant', () => {
  const cosine = lrSchedule({ kind: 'cosine', lr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1 });
  expect(cosine(0)).toBeCloseTo(0.1);
  expect(cosine(9)).toBeCloseTo(1);
  expect(cosine(10)).toBeCloseTo(1);
  expect(cosine(60)).toBeCloseTo(0.55);
  expect(cosine(110)).toBeCloseTo(0.1);
  expect(cosine(500)).toBeCloseTo(0.1);
  const linear = lrSchedule({ kind: 'linear', lr: 2, totalSteps: 100 });
  expect(linear(0)).toBe(2);
  expect(linear(50)).toBeCloseTo(1);
  expect(linear(100)).toBe(0);
  expect(lrSchedule({ kind: 'constant', lr: 3e-4 })(1234)).toBe(3e-4);
});
