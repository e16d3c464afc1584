// The options for when memory is the limit change how a step is computed, not what it computes: recomputed
// layers give the same weights as kept activations, and equal micro-batches (examples of one length, every
// token in the loss) average to the full batch's gradient.
import type { SftConfigInput, SftRow } from '@rlhf/contracts';
import { initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime, type Weights } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { trainSft } from './index.js';

const tiny = presetConfig('tiny');
let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

// 32 rows of one token length: the same number of loss tokens in every micro-batch.
const rows: SftRow[] = Array.from({ length: 32 }, (_, i) => ({
  prompt: String.fromCharCode(97 + (i % 26)).repeat(3),
  response: String((i * 7919) % 1_000_000).padStart(6, '0'),
}));
const base: SftConfigInput = {
  maxSteps: 4,
  batchSize: 8,
  lr: 3e-3,
  stepsPerCall: 2,
  validationFraction: 0,
  completionOnlyLoss: false,
  evalEvery: 100,
};

async function weightsAfter(overrides: SftConfigInput): Promise<Weights> {
  const result = await trainSft({
    config: { ...base, ...overrides },
    model: { config: tiny, params: initParams(tiny, 0) },
    rows,
    runtime,
  });
  const effective = result.hyperparameters.effective as { microBatchSize: number };
  expect(effective.microBatchSize).toBe(8 / (overrides.gradientAccumulation ?? 1));
  return result.model.params;
}

function maxDifference(a: Weights, b: Weights): { diff: number; moved: number } {
  let diff = 0;
  let moved = 0;
  const start = initParams(tiny, 0);
  for (const [name, values] of a) {
    const other = b.get(name)!;
    for (let i = 0; i < values.length; i++) {
      diff = Math.max(diff, Math.abs(values[i] - other[i]));
      moved = Math.max(moved, Math.abs(values[i] - start.get(name)![i]));
    }
  }
  return { diff, moved };
}

describe('SFT memory options', () => {
  test('recompute: the same weights as kept activations', async () => {
    const kept = await weightsAfter({});
    const { diff, moved } = maxDifference(await weightsAfter({ recompute: true }), kept);
    expect(moved).toBeGreaterThan(1e-3);
    expect(diff).toBeLessThanOrEqual(1e-6);
  }, 120_000);

  test('gradientAccumulation 4: the same weights as one batch of 8 (micro-batches of 2)', async () => {
    const whole = await weightsAfter({});
    const { diff, moved } = maxDifference(await weightsAfter({ gradientAccumulation: 4 }), whole);
    expect(moved).toBeGreaterThan(1e-3);
    expect(diff).toBeLessThanOrEqual(1e-5);
  }, 120_000);
});
