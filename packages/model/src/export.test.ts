// The exported models run in a plain onnxruntime-node session (not our runtime), as a user would run them.
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { GptConfig } from './config.js';
import { exportPolicyOnnx, exportRewardOnnx } from './export.js';
import { referenceGptForward } from './testing/reference-gpt.js';
import { sharpParams } from './testing/sharp-params.js';
import { maxAbsDiff } from './testing/graph-run.js';

const config: GptConfig = {
  vocabSize: 21,
  maxPositions: 16,
  nEmbd: 12,
  nLayer: 2,
  nHead: 3,
  layerNormEps: 1e-5,
};
const params = sharpParams(config, 12, 3);
const headDim = config.nEmbd / config.nHead;

const ids = (rows: number[][]) =>
  new ort.Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [rows.length, rows[0].length]);

describe('exportPolicyOnnx', () => {
  it('runs in plain onnxruntime-node: prefill with an empty cache, then decode steps with present -> past', async () => {
    const session = await ort.InferenceSession.create(exportPolicyOnnx(config, params));
    expect(session.inputNames).toEqual([
      'input_ids',
      'attention_mask',
      ...[0, 1].flatMap((i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]),
    ]);
    expect(session.outputNames).toEqual([
      'logits',
      ...[0, 1].flatMap((i) => [`present.${i}.key`, `present.${i}.value`]),
    ]);
    const V = config.vocabSize;
    const sequences = [
      [4, 8, 15, 16, 3, 9],
      [7, 1, 2, 11, 20, 5], // its first two tokens are left padding in the prompt
    ];
    const P = 4;
    const real = (b: number, upTo: number) =>
      b === 1 ? sequences[1].slice(2, upTo) : sequences[b].slice(0, upTo);
    const prompt = sequences.map((s) => s.slice(0, P));
    const empty = new ort.Tensor('float32', new Float32Array(0), [2, config.nHead, 0, headDim]);
    let feeds: Record<string, ort.Tensor> = {
      input_ids: ids(prompt),
      attention_mask: ids([
        [1, 1, 1, 1],
        [0, 0, 1, 1],
      ]),
    };
    for (let i = 0; i < config.nLayer; i++) {
      feeds[`past_key_values.${i}.key`] = empty;
      feeds[`past_key_values.${i}.value`] = empty;
    }
    let out = await session.run(feeds);
    for (let b = 0; b < 2; b++) {
      const ref = referenceGptForward(config, params, real(b, P));
      const logits = (out.logits.data as Float32Array).subarray(b * P * V, (b + 1) * P * V);
      expect(maxAbsDiff(logits.subarray((P - ref.logits.length / V) * V), ref.logits)).toBeLessThanOrEqual(
        1e-4,
      );
    }
    // Two decode steps, one token each, feeding the cache back.
    for (let t = P; t < 6; t++) {
      const mask = [new Array(t + 1).fill(1), [0, 0, ...new Array(t - 1).fill(1)]];
      const next: Record<string, ort.Tensor> = {
        input_ids: ids(sequences.map((s) => [s[t]])),
        attention_mask: ids(mask),
      };
      for (let i = 0; i < config.nLayer; i++) {
        next[`past_key_values.${i}.key`] = out[`present.${i}.key`];
        next[`past_key_values.${i}.value`] = out[`present.${i}.value`];
      }
      feeds = next;
      out = await session.run(feeds);
      expect(out['present.1.value'].dims).toEqual([2, config.nHead, t + 1, headDim]);
      for (let b = 0; b < 2; b++) {
        const ref = referenceGptForward(config, params, real(b, t + 1));
        const last = ref.logits.subarray(ref.logits.length - V);
        expect(
          maxAbsDiff((out.logits.data as Float32Array).subarray(b * V, (b + 1) * V), last),
        ).toBeLessThanOrEqual(1e-4);
      }
    }
    await session.release();
  });
});

describe('exportRewardOnnx', () => {
  it('scores each sequence at its last real token, in plain onnxruntime-node', async () => {
    const rm: GptConfig = { ...config, scalarHead: true };
    const rmParams = sharpParams(rm, 13, 3);
    const session = await ort.InferenceSession.create(exportRewardOnnx(rm, rmParams));
    const rows = [
      [3, 1, 4, 1, 5],
      [0, 0, 9, 2, 6], // left padding
      [5, 3, 5, 0, 0], // right padding
    ];
    const masks = [
      [1, 1, 1, 1, 1],
      [0, 0, 1, 1, 1],
      [1, 1, 1, 0, 0],
    ];
    const out = await session.run({ input_ids: ids(rows), attention_mask: ids(masks) });
    const scores = out.scores.data as Float32Array;
    expect(out.scores.dims).toEqual([3]);
    expect(out.values.dims).toEqual([3, 5]);
    const realTokens = rows.map((r, b) => r.filter((_, j) => masks[b][j] === 1));
    for (const [b, tokens] of realTokens.entries()) {
      const ref = referenceGptForward(rm, rmParams, tokens);
      expect(Math.abs(scores[b] - ref.values![tokens.length - 1])).toBeLessThanOrEqual(1e-4);
    }
    await session.release();
    expect(() => exportRewardOnnx(config, params)).toThrow(/no scalar head/);
  });
});
