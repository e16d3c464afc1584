import { describe, expect, it } from 'vitest';
import { type GptConfig, initParams, paramShapes, presetConfig } from '../config.js';
import { geluTanh, referenceGptForward } from './reference-gpt.js';

/** Params for `config`, all zero except LayerNorm weights (1) and the given tensors. */
function handParams(config: GptConfig, set: Record<string, number[]>): Map<string, Float32Array> {
  const params = new Map<string, Float32Array>();
  for (const { name, shape } of paramShapes(config)) {
    const size = shape.reduce((n, d) => n * d, 1);
    const data = set[name] ? Float32Array.from(set[name]) : new Float32Array(size);
    if (data.length !== size) throw new Error(`${name}: ${data.length} values for shape [${shape}]`);
    if (!set[name] && /ln_(1|2|f)\.weight$/.test(name)) data.fill(1);
    params.set(name, data);
  }
  return params;
}

/** The normalised first coordinate of a 2-vector [a, b]: LayerNorm gives [t, -t] with t = ((a-b)/2) / sqrt(((a-b)/2)² + eps). */
function ln2(a: number, b: number, eps: number): number {
  const half = (a - b) / 2;
  return half / Math.sqrt(half * half + eps);
}

// V = 3 tokens, d = 2; eps = 1 keeps magnitudes visible through LayerNorm.
const hand: GptConfig = { vocabSize: 3, maxPositions: 2, nEmbd: 2, nLayer: 0, nHead: 1, layerNormEps: 1 };
const wte = [1, 0, 0, 1, 1, 1]; // rows [1,0], [0,1], [1,1]

describe('referenceGptForward', () => {
  it('nLayer 0: logits = LN_f(wte[x] + wpe[p]) @ wteᵀ, computed by hand', () => {
    const params = handParams(hand, {
      'wte.weight': wte,
      'wpe.weight': [0, 0, 0.5, -0.5],
      'ln_f.weight': [2, 1],
      'ln_f.bias': [0, 0.5],
    });
    const { logits, values, attention } = referenceGptForward(hand, params, [0, 1]);
    // Position 0: e = [1, 0] -> LN [s, -s] -> h = [2s, 0.5 - s]. Position 1: e = [0.5, 0.5] -> LN [0, 0] -> h = [0, 0.5].
    const s = ln2(1, 0, 1);
    const expected = [2 * s, 0.5 - s, 2 * s + 0.5 - s, 0, 0.5, 0.5];
    expect(Array.from(logits)).toEqual(expected.map((v) => expect.closeTo(v, 12)));
    expect(values).toBeNull();
    expect(attention).toEqual([]);
  });

  it('one block with identity value/projection and a constant MLP, computed by hand (and the scalar head)', () => {
    const config: GptConfig = { ...hand, nLayer: 1, scalarHead: true };
    const identityV = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]; // c_attn [2, 6]: q = k = 0, v = x
    const params = handParams(config, {
      'wte.weight': wte,
      'h.0.attn.c_attn.weight': identityV,
      'h.0.attn.c_proj.weight': [1, 0, 0, 1],
      'h.0.mlp.c_fc.bias': [1, 0, 0, 0, 0, 0, 0, 0],
      'h.0.mlp.c_proj.weight': [1, 0, ...new Array(14).fill(0)], // MLP output = [gelu(1), 0]
      'score.weight': [1, 2],
      'score.bias': [0.5],
    });
    const { logits, values, attention } = referenceGptForward(config, params, [0, 1]);
    const g = 0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (1 + 0.044715))); // GELU_tanh(1)
    const s = ln2(1, 0, 1);
    // q = k = 0: uniform causal attention. v0 = LN([1,0]) = [s,-s], v1 = LN([0,1]) = [-s,s].
    // x0 = [1,0] + v0 + [g,0];  x1 = [0,1] + (v0+v1)/2 + [g,0] = [g, 1].
    const t0 = ln2(1 + s + g, -s, 1);
    const t1 = ln2(g, 1, 1);
    expect(Array.from(logits)).toEqual([t0, -t0, 0, t1, -t1, 0].map((v) => expect.closeTo(v, 12)));
    expect(Array.from(values!)).toEqual([0.5 - t0, 0.5 - t1].map((v) => expect.closeTo(v, 12)));
    expect(Array.from(attention[0])).toEqual([1, 0, 0.5, 0.5]);
  });

  it('attention rows are causal softmax distributions', () => {
    const config = presetConfig('tiny', { vocabSize: 11, maxPositions: 8, nEmbd: 8, nHead: 2 });
    const params = initParams(config, 3);
    for (const p of params.values()) for (let i = 0; i < p.length; i++) p[i] *= 10; // sharpen attention
    const T = 6;
    const { attention } = referenceGptForward(config, params, [1, 4, 2, 9, 0, 3]);
    expect(attention).toHaveLength(2);
    for (const probs of attention) {
      for (let h = 0; h < 2; h++) {
        for (let i = 0; i < T; i++) {
          const row = Array.from(probs.subarray((h * T + i) * T, (h * T + i + 1) * T));
          expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
          expect(row.slice(i + 1).every((p) => p === 0)).toBe(true);
        }
      }
    }
    const notUniform = attention[0].some(
      (p, k) => p > 0 && Math.abs(p - 1 / ((Math.floor(k / T) % T) + 1)) > 1e-3,
    );
    expect(notUniform).toBe(true);
  });

  it('splits heads contiguously within q (HF layout): only head 0 attends non-uniformly when only its q columns are set', () => {
    const config = presetConfig('tiny', { vocabSize: 7, maxPositions: 8, nEmbd: 8, nHead: 2, nLayer: 1 });
    const T = 5;
    const d = 8;
    const uniformRow = (i: number, row: number[]) =>
      row.every((p, j) => (j <= i ? Math.abs(p - 1 / (i + 1)) < 1e-12 : p === 0));
    for (const head of [0, 1]) {
      const params = initParams(config, 4);
      const w = params.get('h.0.attn.c_attn.weight')!; // [d, 3d]: columns [q | k | v]
      for (let r = 0; r < d; r++) {
        for (let c = 0; c < d; c++)
          w[r * 3 * d + c] = c >= head * 4 && c < head * 4 + 4 ? w[r * 3 * d + c] * 200 : 0;
      }
      const { attention } = referenceGptForward(config, params, [1, 2, 3, 4, 5]);
      const uniform = [0, 1].map((h) =>
        Array.from({ length: T }, (_, i) =>
          uniformRow(i, Array.from(attention[0].subarray((h * T + i) * T, (h * T + i + 1) * T))),
        ).every(Boolean),
      );
      expect(uniform[head]).toBe(false);
      expect(uniform[1 - head]).toBe(true);
    }
  });

  it('is causal: changing a later token leaves earlier logits and values unchanged', () => {
    const config = {
      ...presetConfig('tiny', { vocabSize: 13, maxPositions: 8, nEmbd: 8, nHead: 2 }),
      scalarHead: true,
    };
    const params = initParams(config, 11);
    for (const p of params.values()) for (let i = 0; i < p.length; i++) p[i] *= 20;
    const a = referenceGptForward(config, params, [3, 1, 4, 1, 5]);
    const b = referenceGptForward(config, params, [3, 1, 4, 1, 9]);
    const V = 13;
    expect(a.logits.subarray(0, 4 * V)).toEqual(b.logits.subarray(0, 4 * V));
    expect(a.values!.subarray(0, 4)).toEqual(b.values!.subarray(0, 4));
    expect(a.logits.subarray(4 * V)).not.toEqual(b.logits.subarray(4 * V));
    const c = referenceGptForward(config, params, [3, 1, 7, 1, 5]);
    expect(c.logits.subarray(0, 2 * V)).toEqual(a.logits.subarray(0, 2 * V));
    expect(c.logits.subarray(3 * V, 4 * V)).not.toEqual(a.logits.subarray(3 * V, 4 * V));
  });

  it('GELU uses the tanh approximation', () => {
    expect(geluTanh(0)).toBe(0);
    expect(geluTanh(1)).toBeCloseTo(0.8411919906082768, 14);
    expect(geluTanh(-1)).toBeCloseTo(-0.15880800939172324, 14);
    expect(geluTanh(10)).toBeCloseTo(10, 12);
  });

  it('rejects bad inputs', () => {
    const config = presetConfig('tiny', { nLayer: 1 });
    const params = initParams(config, 1);
    expect(() => referenceGptForward(config, params, [])).toThrow(/sequence length 0/);
    expect(() => referenceGptForward(config, params, new Array(65).fill(0))).toThrow(/sequence length 65/);
    expect(() => referenceGptForward(config, params, [259])).toThrow(/token id 259/);
    const missing = new Map(params);
    missing.delete('h.0.ln_2.bias');
    expect(() => referenceGptForward(config, missing, [1])).toThrow(/h\.0\.ln_2\.bias/);
  });
});
