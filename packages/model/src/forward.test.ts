import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GptConfig } from './config.js';
import { createForward } from './forward.js';
import { checkpointFromFiles } from './hf.js';
import { type SafeTensor, writeSafetensors } from './safetensors.js';
import { referenceGptForward } from './testing/reference-gpt.js';
import { referenceLlamaForward } from './testing/reference-llama.js';
import { logSoftmaxRow, sharpParams } from './testing/sharp-params.js';
import { type HfConfig, hfLlamaShapes, hfLlamaWeights, variants } from './testing/tiny-llama.js';
import { maxAbsDiff } from './testing/graph-run.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

// Rows of different lengths: the shorter is left-padded inside one batch, which must not change its outputs.
const ROWS = [
  [1, 5, 2, 7, 3, 9, 4, 8, 0, 6, 11],
  [6, 0, 11, 13, 12, 1, 1],
];

/** The float64 reference's next-token log-probs of a row, from its [T][V] logits. */
function referenceTokenLogprobs(logits: ArrayLike<number>[], row: readonly number[]): number[] {
  return row.slice(1).map((next, t) => logSoftmaxRow(logits[t])[next]);
}

describe('createForward: the public logits / log-prob API', () => {
  for (const [label, json] of variants) {
    it(`${label}: logits ≤ 1e-4 and next-token log-probs ≤ 1e-4 of the float64 reference, rows of mixed length`, async () => {
      const weights = hfLlamaWeights(json, 3);
      const { config, params } = checkpointFromFiles(hfFiles(json, weights), 'test');
      const forward = await createForward(runtime, config);
      const out = await forward.run(params, ROWS, 0);
      await forward.release();
      for (const [b, row] of ROWS.entries()) {
        const ref = referenceLlamaForward(json, weights, [row])[0];
        expect(maxAbsDiff(out[b].logits, flat(ref))).toBeLessThanOrEqual(1e-4);
        expect(maxAbsDiff(out[b].tokenLogprobs, referenceTokenLogprobs(ref, row))).toBeLessThanOrEqual(1e-4);
        expect(out[b].logprobs.length).toBe(row.length * config.vocabSize);
      }
    });
  }

  it('GPT-2 with a scalar head, in float64: logits, log-probs and values ≤ 1e-9 of the reference', async () => {
    const config: GptConfig = {
      vocabSize: 17,
      maxPositions: 16,
      nEmbd: 8,
      nLayer: 2,
      nHead: 2,
      layerNormEps: 1e-5,
      scalarHead: true,
    };
    const params = sharpParams(config, 5);
    const forward = await createForward(runtime, config, { dtype: 'float64' });
    const out = await forward.run(
      params,
      ROWS.map((row) => row.map((id) => id % 17)),
    );
    await forward.release();
    for (const [b, raw] of ROWS.entries()) {
      const row = raw.map((id) => id % 17);
      const ref = referenceGptForward(config, params, row);
      expect(maxAbsDiff(out[b].logits, ref.logits)).toBeLessThanOrEqual(1e-9);
      const rows = Array.from({ length: row.length }, (_, t) => ref.logits.subarray(t * 17, (t + 1) * 17));
      expect(maxAbsDiff(out[b].tokenLogprobs, referenceTokenLogprobs(rows, row))).toBeLessThanOrEqual(1e-9);
      expect(maxAbsDiff(out[b].values!, ref.values!)).toBeLessThanOrEqual(1e-9);
    }
  });

  it('refuses empty rows and ids outside the vocabulary, naming the id', async () => {
    const config: GptConfig = {
      vocabSize: 11,
      maxPositions: 8,
      nEmbd: 8,
      nLayer: 1,
      nHead: 1,
      layerNormEps: 1e-5,
    };
    const forward = await createForward(runtime, config);
    const params = sharpParams(config, 1);
    await expect(forward.run(params, [[]])).rejects.toThrow(/at least one token/);
    await expect(forward.run(params, [[1, 11]])).rejects.toThrow(/token id 11 is outside \[0, 11\)/);
    await forward.release();
  });
});

const flat = (rows: Float64Array[]) => Float64Array.from(rows.flatMap((r) => Array.from(r)));

/** config.json + model.safetensors (F32) bytes as HF save_pretrained writes them. */
function hfFiles(json: HfConfig, weights: Map<string, Float32Array>) {
  const shapes = new Map(hfLlamaShapes(json));
  const tensors = new Map<string, SafeTensor>();
  for (const [name, data] of weights) tensors.set(name, { dtype: 'F32', shape: shapes.get(name)!, data });
  return {
    'config.json': new TextEncoder().encode(JSON.stringify(json)),
    'model.safetensors': writeSafetensors(tensors, { format: 'pt' }),
  };
}
