// The full gradient of a 2-layer GPT-shaped attention network passes the finite-difference check
// (embeddings via Gather, LayerNorm, causal softmax attention with Trilu/Where, GELU MLP, tied LM head,
// masked cross-entropy; see testing/tiny-gpt.ts).
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { checkGradients, type GradCheckInput } from './check.js';
import { cast } from './index.js';
import { type TinyGptConfig, tinyGptLoss, tinyGptParams } from './testing.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

test('2-layer GPT-shaped network: every parameter gradient matches finite differences', async () => {
  const config: TinyGptConfig = { vocab: 7, width: 8, heads: 2, layers: 2, context: 5 };
  const shapes = tinyGptParams(config);
  const names = Object.keys(shapes);
  const [B, T] = [2, 5];
  const ints = (data: number[]): GradCheckInput => ({
    shape: [B, T],
    declared: ['batch', 'seq'],
    dtype: 'int64',
    data,
  });
  // LayerNorm scales around 1, everything else around 0.
  const params: GradCheckInput[] = names.map((name) =>
    /ln.*\.w$/.test(name)
      ? { shape: shapes[name], low: 0.5, high: 1.5 }
      : { shape: shapes[name], low: -0.5, high: 0.5 },
  );
  const result = await checkGradients(
    (tokens, targets, mask, ...ps) =>
      tinyGptLoss(
        config,
        Object.fromEntries(names.map((n, i) => [n, ps[i]])),
        tokens,
        targets,
        cast(mask, 'float64'),
      ),
    [
      ints([3, 1, 4, 1, 5, 2, 6, 5, 3, 5]),
      ints([1, 4, 1, 5, 0, 6, 5, 3, 5, 0]),
      ints([1, 1, 1, 1, 0, 1, 1, 1, 1, 0]),
      ...params,
    ],
    { runtime },
  );
  const total = Object.values(shapes).reduce((s, d) => s + d.reduce((a, b) => a * b, 1), 0);
  expect(result.checked).toBe(total);
  expect(result.maxRelError, JSON.stringify(result.worst)).toBeLessThan(1e-6);
});
