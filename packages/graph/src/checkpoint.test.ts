// Activation recomputation: gradients against float64 finite differences and against the same net without
// checkpoints, and the property it exists for: the backward pass reads no activation from inside a segment.
import { createRuntime, float32, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkGradients } from './check.js';
import { checkpoint } from './checkpoint.js';
import { Graph, GraphError, type Tensor } from './graph.js';
import { add, grad, matmul, mul, randomUniformLike, reduceSum, tanh } from './index.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

// A residual tanh block reading outer weights: x + tanh(x W1) W2.
const block = (x: Tensor, w1: Tensor, w2: Tensor) => add(x, matmul(tanh(matmul(x, w1)), w2));

function net(x: Tensor, w1: Tensor, w2: Tensor, w3: Tensor, recompute: boolean): Tensor {
  let h = x;
  for (const w of [w1, w3]) {
    const layer = (inputs: readonly Tensor[]) => [block(inputs[0], w, w2)];
    h = recompute ? checkpoint([h], layer)[0] : layer([h])[0];
  }
  return mul(h, h);
}

describe('checkpoint', () => {
  test('gradients match float64 finite differences', async () => {
    const result = await checkGradients(
      (x, w1, w2, w3) => net(x, w1, w2, w3, true),
      [
        [3, 4],
        [4, 5],
        [5, 4],
        [4, 5],
      ],
      {
        runtime,
      },
    );
    expect(result.checked).toBeGreaterThan(0);
    expect(result.maxRelError, JSON.stringify(result.worst)).toBeLessThan(1e-6);
  });

  test('gradients equal those of the same net without checkpoints, and nothing inside a segment is read back', async () => {
    const results = [];
    for (const recompute of [false, true]) {
      const g = new Graph('net');
      const [x, w1, w2, w3] = [
        g.input('x', 'float32', [3, 4]),
        g.input('w1', 'float32', [4, 5]),
        g.input('w2', 'float32', [5, 4]),
        g.input('w3', 'float32', [4, 5]),
      ];
      const before = g.nodes.length;
      const loss = reduceSum(net(x, w1, w2, w3, recompute));
      const forward = new Set(g.nodes.slice(before));
      const afterForward = g.nodes.length;
      const grads = grad(loss, [x, w1, w2, w3]);
      if (recompute) {
        // Activations made inside a segment (here: the tanh inputs and outputs) are never read by the backward.
        const inside = [...forward].filter((n) => n.op.name === 'Tanh' || n.op.name === 'MatMul');
        const read = new Set(g.nodes.slice(afterForward).flatMap((n) => n.reads));
        for (const n of inside) for (const o of n.outputs) expect(read.has(o), o.name).toBe(false);
      }
      g.output(loss, 'loss');
      grads.forEach((t, i) => {
        g.output(t, `g${i}`);
      });
      const session = await runtime.createSession(g.toBytes(), { name: 'checkpoint' });
      const value = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.sin(0.7 * i + k));
      results.push(
        await session.run({
          x: float32([3, 4], value(12, 1)),
          w1: float32([4, 5], value(20, 2)),
          w2: float32([5, 4], value(20, 3)),
          w3: float32([4, 5], value(20, 4)),
        }),
      );
      await session.release();
    }
    for (const name of ['loss', 'g0', 'g1', 'g2', 'g3'])
      expect([...results[1][name].data], name).toEqual([...results[0][name].data]);
  });

  test('refuses what it cannot recompute identically, and tensors that escape the segment', () => {
    const g = new Graph('bad');
    const x = g.input('x', 'float32', [2, 3]);
    expect(() => checkpoint([x], ([t]) => [add(t, randomUniformLike(t))])).toThrow(GraphError);
    let escaped: Tensor | undefined;
    const [y] = checkpoint([x], ([t]) => {
      escaped = tanh(t);
      return [mul(escaped, 2)];
    });
    expect(() => grad(reduceSum(add(y, escaped!)), [x])).toThrow(/used outside its segment/);
  });
});
