// Every differentiable op against central finite differences in float64 (max relative error 1e-6).
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkGradients, type GradCheckInput } from '../check.js';
import type { Tensor } from '../graph.js';
import * as G from '../index.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

type Input = readonly number[] | GradCheckInput;
const positive = (shape: number[]): GradCheckInput => ({ shape, low: 0.5, high: 2 });
const ints = (shape: number[], data: number[]): GradCheckInput => ({ shape, dtype: 'int64', data });

async function expectGradients(build: (...xs: Tensor[]) => Tensor | Tensor[], inputs: Input[]) {
  const result = await checkGradients(build, inputs, { runtime });
  expect(result.checked).toBeGreaterThan(0);
  expect(result.maxRelError, JSON.stringify(result.worst)).toBeLessThan(1e-6);
}

describe('elementwise binary ops with broadcasting', () => {
  test('add', () => expectGradients(G.add, [[2, 3], [3]]));
  test('add with a number', () => expectGradients((x) => G.add(x, 2), [[4]]));
  test('sub', () =>
    expectGradients(G.sub, [
      [2, 1, 3],
      [4, 1],
    ]));
  test('mul', () =>
    expectGradients(G.mul, [
      [3, 1],
      [1, 4],
    ]));
  test('div', () => expectGradients(G.div, [[2, 3], positive([2, 1])]));
  test('div of a number', () => expectGradients((x) => G.div(1, x), [positive([5])]));
  test('pow', () => expectGradients(G.pow, [positive([2, 3]), [3]]));
  test('pow by a constant', () => expectGradients((x) => G.pow(x, 3), [[6]]));
  test('max', () =>
    expectGradients(G.max, [
      [2, 3],
      [2, 3],
    ]));
  test('min', () => expectGradients(G.min, [[2, 3], [3]]));
  test('symbolic dims', () =>
    expectGradients(G.mul, [
      { shape: [2, 3], declared: ['b', 't'] },
      { shape: [2, 1], declared: ['b', 1] },
    ]));
  test('unknown dims (broadcast axes found at run time)', () =>
    expectGradients(G.add, [
      { shape: [2, 3], declared: [null, null] },
      { shape: [2, 1], declared: [null, null] },
    ]));
});

describe('elementwise unary ops', () => {
  test('neg', () => expectGradients(G.neg, [[5]]));
  test('abs', () => expectGradients(G.abs, [[2, 4]]));
  test('sqrt', () => expectGradients(G.sqrt, [positive([5])]));
  test('exp', () => expectGradients(G.exp, [[5]]));
  test('log', () => expectGradients(G.log, [positive([5])]));
  test('tanh', () => expectGradients(G.tanh, [[2, 3]]));
  test('sigmoid', () => expectGradients(G.sigmoid, [[2, 3]]));
  test('relu', () => expectGradients(G.relu, [[3, 4]]));
  test('reciprocal', () => expectGradients(G.reciprocal, [positive([4])]));
  test('softplus', () => expectGradients(G.softplus, [{ shape: [6], low: -4, high: 4 }]));
  test('logSigmoid', () => expectGradients(G.logSigmoid, [{ shape: [6], low: -4, high: 4 }]));
  // x = 0 is where a DPO loss starts (policy = reference); ±700 would overflow e^x in float64.
  test('softplus and logSigmoid at 0 and far out', async () => {
    const data = [0, 1e-3, -30, 700, -700];
    await expectGradients(G.softplus, [{ shape: [5], data }]);
    await expectGradients(G.logSigmoid, [{ shape: [5], data }]);
  });
  test('sin and cos', () => expectGradients((x) => G.mul(G.sin(x), G.cos(x)), [[6]]));
  test('gelu (tanh)', () => expectGradients(G.gelu, [{ shape: [2, 5], low: -3, high: 3 }]));
  test('identity', () => expectGradients(G.identity, [[3]]));
  test('clip', () => expectGradients((x) => G.clip(x, -0.5, 0.5), [[3, 4]]));
  test('clip with tensor bounds', () => expectGradients((x, lo) => G.clip(x, lo, null), [[3, 4], []]));
  test('where', () =>
    expectGradients(
      (c, a, b) => G.where(G.cast(c, 'bool'), a, b),
      [{ shape: [2, 3], dtype: 'int64', data: [1, 0, 0, 1, 1, 0], wrt: false }, [2, 3], [3]],
    ));
});

describe('nn ops', () => {
  test('softmax', () => expectGradients((x) => G.softmax(x, -1), [[3, 4]]));
  test('softmax on axis 0', () => expectGradients((x) => G.softmax(x, 0), [[3, 4]]));
  test('logSoftmax', () => expectGradients((x) => G.logSoftmax(x, -1), [[3, 4]]));
  test('layerNorm', () => expectGradients((x, s, b) => G.layerNorm(x, s, b), [[2, 3, 4], [4], [4]]));
  test('layerNorm without bias over two axes', () =>
    expectGradients(
      (x, s) => G.layerNorm(x, s, null, 1e-5, 1),
      [
        [2, 3, 4],
        [3, 4],
      ],
    ));
});

describe('reductions', () => {
  test('reduceSum over an axis', () => expectGradients((x) => G.reduceSum(x, 1), [[2, 3, 4]]));
  test('reduceSum keepdims, two axes', () =>
    expectGradients((x) => G.reduceSum(x, [0, 2], true), [[2, 3, 4]]));
  test('reduceSum over all axes', () => expectGradients((x) => G.reduceSum(x), [[2, 3]]));
  test('reduceMean', () => expectGradients((x) => G.reduceMean(x, -1), [[2, 3, 4]]));
  test('reduceMean with symbolic dims', () =>
    expectGradients((x) => G.reduceMean(x, [0, 1], true), [{ shape: [2, 3, 4], declared: ['b', 't', 4] }]));
  test('reduceMax', () => expectGradients((x) => G.reduceMax(x, 1), [[3, 4]]));
  test('reduceMin keepdims', () => expectGradients((x) => G.reduceMin(x, 0, true), [[3, 4]]));
});

describe('matmul', () => {
  test('2-D', () =>
    expectGradients(G.matmul, [
      [2, 3],
      [3, 4],
    ]));
  test('batched', () =>
    expectGradients(G.matmul, [
      [2, 3, 4],
      [2, 4, 5],
    ]));
  test('broadcast batch dims', () =>
    expectGradients(G.matmul, [
      [2, 1, 3, 4],
      [5, 4, 2],
    ]));
  test('batched by a matrix', () =>
    expectGradients(G.matmul, [
      [2, 3, 4],
      [4, 5],
    ]));
  test('vector by matrix', () => expectGradients(G.matmul, [[4], [4, 5]]));
  test('matrix by vector', () => expectGradients(G.matmul, [[2, 3, 4], [4]]));
  test('vector by vector', () => expectGradients(G.matmul, [[4], [4]]));
  test('symbolic batch', () =>
    expectGradients(G.matmul, [{ shape: [2, 3, 4], declared: ['b', 't', 4] }, [4, 5]]));
});

describe('shape ops', () => {
  test('reshape', () => expectGradients((x) => G.reshape(x, [3, -1]), [[2, 3, 2]]));
  test('reshape with 0', () =>
    expectGradients((x) => G.reshape(x, [0, -1]), [{ shape: [2, 3, 2], declared: ['b', 3, 2] }]));
  test('transpose', () => expectGradients((x) => G.transpose(x, [2, 0, 1]), [[2, 3, 4]]));
  test('unsqueeze and squeeze', () =>
    expectGradients((x) => G.squeeze(G.unsqueeze(x, [0, 2]), [0]), [[2, 3]]));
  test('concat', () =>
    expectGradients(
      (a, b) => G.concat([a, b, a], 1),
      [
        [2, 3],
        [2, 1],
      ],
    ));
  test('concat symbolic', () =>
    expectGradients((a, b) => G.concat([a, b], 1), [{ shape: [2, 3], declared: [2, 't'] }, [2, 2]]));
  test('slice', () => expectGradients((x) => G.slice(x, [1], [3], [1]), [[2, 4]]));
  test('slice with negative starts and steps', () =>
    expectGradients((x) => G.slice(x, [-1, 0], [-10, 4], [0, 1], [-2, 3]), [[5, 6]]));
  test('slice symbolic', () =>
    expectGradients((x) => G.slice(x, [0, 1], [1, 1000], [0, 1]), [{ shape: [3, 4], declared: ['b', 't'] }]));
  test('split', () => expectGradients((x) => G.split(x, [1, 3], 1), [[2, 4]]));
  test('split with an unused piece', () => expectGradients((x) => G.split(x, [2, 2], 0)[1], [[4, 2]]));
  test('expand', () => expectGradients((x) => G.expand(x, [2, 3, 4]), [[3, 1]]));
  test('triangle', () => expectGradients((x) => G.triangle(x, false), [[2, 3, 3]]));
  test('triangle upper with k', () => expectGradients((x) => G.triangle(x, true, 1), [[4, 4]]));
});

describe('indexing ops', () => {
  test('gather rows (embedding)', () =>
    expectGradients((w, i) => G.gather(w, i, 0), [[5, 3], ints([2, 3], [0, 4, 1, 1, 0, 2])]));
  test('gather on a middle axis', () =>
    expectGradients((w, i) => G.gather(w, i, 1), [[2, 4, 3], ints([2], [3, 3])]));
  test('gather a scalar index', () => expectGradients((w, i) => G.gather(w, i, 1), [[2, 4], ints([], [2])]));
  test('gatherElements', () =>
    expectGradients((x, i) => G.gatherElements(x, i, 1), [[2, 4], ints([2, 2], [0, 3, 1, 1])]));
  test('gatherND', () => expectGradients((x, i) => G.gatherND(x, i), [[3, 4], ints([2, 2], [0, 1, 2, 3])]));
  test('scatterND add', () =>
    expectGradients((d, i, u) => G.scatterND(d, i, u, 'add'), [[4, 2], ints([3, 1], [1, 1, 3]), [3, 2]]));
  test('scatterND overwrite', () =>
    expectGradients((d, i, u) => G.scatterND(d, i, u), [[4, 2], ints([2, 1], [0, 2]), [2, 2]]));
  test('scatterElements', () =>
    expectGradients((d, i, u) => G.scatterElements(d, i, u, 1), [[2, 3], ints([2, 1], [2, 0]), [2, 1]]));
  test('cumsum', () => expectGradients((x) => G.cumsum(x, 1), [[2, 4]]));
  test('cumsum exclusive reverse', () =>
    expectGradients((x) => G.cumsum(x, 0, { exclusive: true, reverse: true }), [[4, 2]]));
  test('topk values', () => expectGradients((x) => G.topk(x, 2, -1).values, [[3, 5]]));
});

test('cast passes the gradient back in the input dtype', async () => {
  // d/dx sum(cast(x, float64) * w) = cast(w, float32): checked exactly (float32 data cannot be differenced).
  const { Graph, grad } = G;
  const g = new Graph('cast');
  const x = g.input('x', 'float32', [3]);
  const w = g.input('w', 'float64', [3]);
  const [dx] = grad(G.reduceSum(G.mul(G.cast(x, 'float64'), w)), [x]);
  expect(dx.dtype).toBe('float32');
  g.output(dx, 'dx');
  const session = await runtime.createSession(g.toBytes());
  const out = await session.run({
    x: { type: 'float32', dims: [3], data: Float32Array.of(1, 2, 3) },
    w: { type: 'float64', dims: [3], data: Float64Array.of(0.5, -2, 4) },
  });
  expect(Array.from(out.dx.data as Float32Array)).toEqual([0.5, -2, 4]);
  await session.release();
});
