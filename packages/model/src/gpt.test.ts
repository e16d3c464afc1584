import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkGradients,
  gatherElements,
  Graph,
  logSoftmax,
  neg,
  reduceMean,
  type Tensor,
  unsqueeze,
} from '@rlhf/graph';
import { createRuntime, type HostTensor, int64, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GptConfig, paramShapes, presetConfig } from './config.js';
import { type HostParams, leftPad, type ModelDtype, paramFeeds } from './feeds.js';
import { gptForward, gptParamInputs } from './gpt.js';
import { loadHfGpt2 } from './hf.js';
import { referenceGptForward } from './testing/reference-gpt.js';
import { sharpParams } from './testing/sharp-params.js';
import { hfGpt2ConfigJson, hfGpt2Tensors, writeHfGpt2Dir } from './testing/tiny-hf.js';
import { maxAbsDiff } from './testing/graph-run.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

/** Runs gptForward on a [B, T] batch (optionally masked) and returns logits and values. */
async function forward(
  config: GptConfig,
  params: HostParams,
  ids: HostTensor,
  dtype: ModelDtype,
  mask?: HostTensor,
): Promise<{ logits: Float64Array; values?: Float64Array }> {
  const g = new Graph('forward');
  const p = gptParamInputs(g, config, dtype);
  const idsIn = g.input('ids', 'int64', ['batch', 'seq']);
  const maskIn = mask ? g.input('mask', 'int64', ['batch', 'seq']) : undefined;
  const out = gptForward(p, config, idsIn, { attentionMask: maskIn });
  g.output(out.logits, 'logits');
  if (out.values) g.output(out.values, 'values');
  const session = await runtime.createSession(g.toBytes());
  const feeds = { ...paramFeeds(config, params, dtype), ids, ...(mask ? { mask } : {}) };
  const result = await session.run(feeds);
  await session.release();
  return {
    logits: Float64Array.from(result.logits.data as Float32Array),
    values: result.values && Float64Array.from(result.values.data as Float32Array),
  };
}

const tinyConfigs: [string, GptConfig][] = [
  ['1 layer, 1 head', { vocabSize: 13, maxPositions: 12, nEmbd: 8, nLayer: 1, nHead: 1, layerNormEps: 1e-5 }],
  [
    '2 layers, 2 heads, scalar head',
    { vocabSize: 17, maxPositions: 12, nEmbd: 8, nLayer: 2, nHead: 2, layerNormEps: 1e-5, scalarHead: true },
  ],
  [
    '3 layers, 4 heads',
    { vocabSize: 11, maxPositions: 16, nEmbd: 16, nLayer: 3, nHead: 4, layerNormEps: 1e-5 },
  ],
];

describe('gptForward', () => {
  for (const [label, config] of tinyConfigs) {
    it(`matches the float64 reference forward (${label}) in float64 and float32`, async () => {
      const params = sharpParams(config, 3);
      const rows = [
        [1, 4, 2, 9, 0, 3, 7, 7, 2, 5],
        [10, 0, 5, 5, 1, 2, 3, 4, 8, 6],
      ];
      const T = rows[0].length;
      const V = config.vocabSize;
      const ids = int64([2, T], rows.flat());
      const f64 = await forward(config, params, ids, 'float64');
      const f32 = await forward(config, params, ids, 'float32');
      for (const [b, row] of rows.entries()) {
        const ref = referenceGptForward(config, params, row);
        const slice = (x: Float64Array, n: number) => x.subarray(b * T * n, (b + 1) * T * n);
        expect(maxAbsDiff(slice(f64.logits, V), ref.logits)).toBeLessThanOrEqual(1e-9);
        expect(maxAbsDiff(slice(f32.logits, V), ref.logits)).toBeLessThanOrEqual(1e-4);
        if (config.scalarHead) {
          expect(maxAbsDiff(slice(f64.values!, 1), ref.values!)).toBeLessThanOrEqual(1e-9);
          expect(maxAbsDiff(slice(f32.values!, 1), ref.values!)).toBeLessThanOrEqual(1e-4);
        } else {
          expect(f64.values).toBeUndefined();
        }
      }
    });
  }

  it('float64: the attention scale 1/sqrt(headDim) is not rounded to float32 (headDim 8; 1.2e-11 when it was)', async () => {
    const config: GptConfig = {
      vocabSize: 13,
      maxPositions: 12,
      nEmbd: 24,
      nLayer: 2,
      nHead: 3,
      layerNormEps: 1e-5,
    };
    const params = sharpParams(config, 5, 2);
    const row = [1, 4, 2, 9, 0, 3, 7, 7, 2, 5];
    const out = await forward(config, params, int64([1, row.length], row), 'float64');
    expect(maxAbsDiff(out.logits, referenceGptForward(config, params, row).logits)).toBeLessThanOrEqual(
      5e-12,
    );
  });

  it('left padding: real tokens get the logits of the unpadded sequence', async () => {
    const config = tinyConfigs[1][1];
    const params = sharpParams(config, 8);
    const V = config.vocabSize;
    const rows = [[3, 1, 4, 1, 5, 9, 2, 6], [5, 3, 5], [8], [2, 7, 1, 8, 2, 8]];
    const pad = 16;
    const { ids, mask } = leftPad(rows, pad);
    const width = ids.dims[1];
    for (const dtype of ['float64', 'float32'] as const) {
      const out = await forward(config, params, ids, dtype, mask);
      const tolerance = dtype === 'float64' ? 1e-9 : 1e-4;
      for (const [b, row] of rows.entries()) {
        const ref = referenceGptForward(config, params, row);
        const start = (b * width + width - row.length) * V;
        expect(
          maxAbsDiff(out.logits.subarray(start, start + row.length * V), ref.logits),
        ).toBeLessThanOrEqual(tolerance);
        expect(out.logits.every(Number.isFinite)).toBe(true); // padding positions stay finite
        const vStart = b * width + width - row.length;
        expect(
          maxAbsDiff(out.values!.subarray(vStart, vStart + row.length), ref.values!),
        ).toBeLessThanOrEqual(tolerance);
      }
    }
  });

  it('right padding after a left-padded prompt leaves the real tokens unchanged', async () => {
    const config = tinyConfigs[0][1];
    const params = sharpParams(config, 2);
    const V = config.vocabSize;
    // [pad pad p p r r pad pad]: the right pads must not change anything before them.
    const ids = int64([1, 8], [0, 0, 3, 4, 5, 6, 0, 0]);
    const mask = int64([1, 8], [0, 0, 1, 1, 1, 1, 0, 0]);
    const out = await forward(config, params, ids, 'float64', mask);
    const ref = referenceGptForward(config, params, [3, 4, 5, 6]);
    expect(maxAbsDiff(out.logits.subarray(2 * V, 6 * V), ref.logits)).toBeLessThanOrEqual(1e-9);
  });

  it('loads an HF GPT-2 directory and reproduces the reference logits', async () => {
    const config = presetConfig('tiny', { vocabSize: 261, maxPositions: 16, nEmbd: 16, nHead: 2 });
    const params = sharpParams(config, 21, 3);
    const dir = await mkdtemp(join(tmpdir(), 'gpt-hf-'));
    try {
      await writeHfGpt2Dir(dir, hfGpt2ConfigJson(config), hfGpt2Tensors(config, params));
      const loaded = await loadHfGpt2(dir);
      const tokens = loaded.tokenizer.encode('hello world');
      const out = await forward(loaded.config, loaded.params, int64([1, tokens.length], tokens), 'float32');
      const ref = referenceGptForward(config, params, tokens);
      expect(maxAbsDiff(out.logits, ref.logits)).toBeLessThanOrEqual(1e-4);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('passes a finite-difference gradient check of the cross-entropy loss (float64)', async () => {
    const config: GptConfig = {
      vocabSize: 7,
      maxPositions: 6,
      nEmbd: 4,
      nLayer: 2,
      nHead: 2,
      layerNormEps: 1e-5,
      scalarHead: true,
    };
    const shapes = paramShapes(config);
    const [B, T] = [2, 5];
    const ids = [1, 3, 0, 6, 2, 0, 0, 4, 5, 1];
    const mask = [1, 1, 1, 1, 1, 0, 0, 1, 1, 1]; // row 1 left-padded
    const targets = [3, 0, 6, 2, 5, 0, 4, 5, 1, 2];
    const result = await checkGradients(
      (idsIn, maskIn, targetsIn, ...weights) => {
        const params = new Map(shapes.map(({ name }, i) => [name, weights[i]] as [string, Tensor]));
        const { logits, values } = gptForward(params, config, idsIn, { attentionMask: maskIn });
        const picked = gatherElements(logSoftmax(logits), unsqueeze(targetsIn, [2]), 2);
        return [neg(reduceMean(picked)), values!];
      },
      [
        { shape: [B, T], dtype: 'int64', data: ids },
        { shape: [B, T], dtype: 'int64', data: mask },
        { shape: [B, T], dtype: 'int64', data: targets },
        ...shapes.map(({ shape }) => ({ shape, low: -0.8, high: 0.8 })),
      ],
      { runtime, maxElements: 12 },
    );
    expect(result.checked).toBeGreaterThan(200);
    expect(result.maxRelError).toBeLessThanOrEqual(1e-6);
  });
});
