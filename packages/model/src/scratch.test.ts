import { Graph, layerNorm, node, gelu } from '@rlhf/graph';
import { createRuntime, float64 } from '@rlhf/runtime';
import { it } from 'vitest';
it('ln precision', async () => {
  const rt = await createRuntime({ device: 'cpu' });
  const g = new Graph();
  const x = g.input('x', 'float64', [2, 8]);
  const s = g.input('s', 'float64', [8]);
  const b = g.input('b', 'float64', [8]);
  g.output(layerNorm(x, s, b, 1e-5), 'y1');
  g.output(node('LayerNormalization', [x, s, b], { axis: -1, epsilon: 1e-5, stash_type: 11 })[0], 'y2');
  g.output(gelu(x), 'g');
  const { tanh, mul, add } = await import('@rlhf/graph');
  g.output(mul(mul(x, 0.5), add(tanh(mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI))), 1)), 'g2');
  const sess = await rt.createSession(g.toBytes());
  const xs = Array.from({ length: 16 }, (_, i) => Math.sin(i * 1.7) * 3 + 0.1);
  const out = await sess.run({ x: float64([2, 8], xs), s: float64([8], new Array(8).fill(1)), b: float64([8], new Array(8).fill(0)) });
  for (let r = 0; r < 2; r++) {
    const row = xs.slice(r * 8, r * 8 + 8);
    const m = row.reduce((a, b) => a + b) / 8;
    const v = row.reduce((a, b) => a + (b - m) ** 2, 0) / 8;
    const ref = row.map((t) => (t - m) / Math.sqrt(v + 1e-5));
    console.log('y1', Math.max(...ref.map((t, i) => Math.abs(t - (out.y1.data as Float64Array)[r * 8 + i]))));
    try { console.log('y2', Math.max(...ref.map((t, i) => Math.abs(t - (out.y2.data as Float64Array)[r * 8 + i])))); } catch {}
  }
  const gref = xs.map((x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))));
  console.log('gelu2', Math.max(...gref.map((t, i) => Math.abs(t - (out.g2.data as Float64Array)[i]))));
  console.log('gelu', Math.max(...gref.map((t, i) => Math.abs(t - (out.g.data as Float64Array)[i]))));
  await rt.close();
});
