import { createRuntime, float32, int64, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Graph } from '../graph.js';
import * as G from '../index.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

const values = (data: ArrayLike<number | bigint>) => Array.from(data, Number);

async function run(g: Graph, feeds: Parameters<G.Trainer['run']>[0]) {
  const session = await runtime.createSession(g.toBytes());
  const out = await session.run(feeds);
  await session.release();
  return out;
}

test('carried values, scans and outer-scope reads', async () => {
  // acc_{k+1} = acc_k + k * x, with x read from the outer graph; scans stack every acc.
  const g = new Graph('loop');
  const x = g.input('x', 'float32', [2]);
  const acc0 = g.input('acc', 'float32', [2]);
  const { carried, scans } = G.loop({
    trips: 4,
    carried: [acc0],
    body: (k, [acc]) => {
      const next = G.add(acc, G.mul(x, G.cast(k, 'float32')));
      return { carried: [next], scans: [next] };
    },
  });
  expect(scans[0].shape).toEqual([4, 2]);
  g.output(carried[0], 'final');
  g.output(scans[0], 'history');
  const out = await run(g, { x: float32([2], [1, 10]), acc: float32([2], [0.5, 0]) });
  expect(values(out.final.data)).toEqual([6.5, 60]);
  expect(values(out.history.data)).toEqual([0.5, 0, 1.5, 10, 3.5, 30, 6.5, 60]);
});

test('a condition stops the loop; a carried KV-cache-like tensor grows by Concat', async () => {
  const g = new Graph('while');
  const v = g.input('v', 'float32', []);
  const cache0 = g.input('cache', 'float32', [1, 2]);
  const { carried } = G.loop({
    trips: 100,
    cond: G.less(v, 10),
    carried: [v, cache0],
    carriedShapes: [undefined, [null, 2]],
    body: (_, [value, cache]) => {
      const doubled = G.mul(value, 2);
      const row = G.expand(G.reshape(doubled, [1, 1]), [1, 2]);
      return { carried: [doubled, G.concat([cache, row], 0)], cond: G.less(doubled, 10) };
    },
  });
  g.output(carried[0], 'v_final');
  g.output(carried[1], 'cache_final');
  const out = await run(g, { v: float32([], [1.5]), cache: float32([1, 2], [0, 0]) });
  expect(out.v_final.data[0]).toBe(12);
  expect(out.cache_final.dims).toEqual([4, 2]);
  expect(values(out.cache_final.data)).toEqual([0, 0, 3, 3, 6, 6, 12, 12]);
});

test('nested loops read tensors two graphs up; random samples differ per iteration', async () => {
  const g = new Graph('nested');
  const base = g.input('base', 'float32', [3]);
  const { scans } = G.loop({
    graph: g,
    trips: 2,
    carried: [],
    body: (i) => {
      const inner = G.loop({
        trips: 3,
        carried: [G.cast(i, 'float32')],
        body: (_, [s]) => ({ carried: [G.add(s, G.reduceSum(base))] }),
      });
      const noise = G.randomUniformLike(base, { seed: 42 });
      return { carried: [], scans: [inner.carried[0], noise] };
    },
  });
  g.output(scans[0], 'sums');
  g.output(scans[1], 'noise');
  const out = await run(g, { base: float32([3], [1, 2, 3]) });
  expect(values(out.sums.data)).toEqual([18, 19]);
  const noise = values(out.noise.data);
  expect(noise.every((u) => u >= 0 && u < 1)).toBe(true);
  expect(noise.slice(0, 3)).not.toEqual(noise.slice(3));
});

test('sampling and index ops: argmax, topk, multinomial, nonZero, range, cumsum, constantOfShape', async () => {
  const g = new Graph('sampling');
  const logits = g.input('logits', 'float32', ['batch', 4]);
  const n = g.input('n', 'int64', []);
  g.output(G.argmax(logits, -1), 'argmax');
  const top = G.topk(logits, 2);
  g.output(top.values, 'top_values');
  g.output(top.indices, 'top_indices');
  g.output(G.multinomial(logits, 200, 7), 'samples');
  g.output(G.nonZero(G.greater(logits, 0)), 'positive');
  const r = G.range(0, n);
  g.output(G.cumsum(r, 0, { exclusive: true }), 'cumsum');
  g.output(G.constantOfShape(G.shapeOf(logits), 'float32', 2.5), 'filled');
  const out = await run(g, {
    logits: float32([2, 4], [0, 5, -1, 2, -9, -9, 9, -9]),
    n: int64([], [4]),
  });
  expect(values(out.argmax.data)).toEqual([1, 2]);
  expect(values(out.top_values.data)).toEqual([5, 2, 9, -9]);
  expect(values(out.top_indices.data).slice(0, 3)).toEqual([1, 3, 2]);
  const samples = values(out.samples.data);
  expect(out.samples.dims).toEqual([2, 200]);
  // Row 1 puts almost all mass on class 2; row 0 mostly on class 1.
  expect(samples.slice(200).filter((s) => s === 2).length).toBeGreaterThan(195);
  expect(samples.slice(0, 200).filter((s) => s === 1).length).toBeGreaterThan(150);
  expect(values(out.positive.data)).toEqual([0, 0, 1, 1, 3, 2]);
  expect(values(out.cumsum.data)).toEqual([0, 0, 1, 3]);
  expect(values(out.filled.data)).toEqual(Array(8).fill(2.5));
});
