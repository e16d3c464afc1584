import { describe, expect, it } from 'vitest';
import {
  countParams,
  GptConfigError,
  initParams,
  paramShapes,
  presetConfig,
  presets,
  validateConfig,
} from './config.js';

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

function meanStd(data: Float32Array): { mean: number; std: number } {
  let mean = 0;
  for (const v of data) mean += v;
  mean /= data.length;
  let variance = 0;
  for (const v of data) variance += (v - mean) ** 2;
  return { mean, std: Math.sqrt(variance / data.length) };
}

describe('config', () => {
  it('presets are valid and gpt2 has the published 124,439,808 parameters', () => {
    for (const name of Object.keys(presets) as (keyof typeof presets)[]) validateConfig(presetConfig(name));
    expect(countParams(presetConfig('gpt2'))).toBe(124_439_808); // HF GPT2Model parameter count
    const small = countParams(presetConfig('small'));
    expect(small).toBeGreaterThan(9e6);
    expect(small).toBeLessThan(12e6);
  });

  it('counts tiny parameters from the formula V·d + P·d + L·(12d² + 13d) + 2d', () => {
    const c = presetConfig('tiny');
    const d = c.nEmbd;
    const expected = c.vocabSize * d + c.maxPositions * d + c.nLayer * (12 * d * d + 13 * d) + 2 * d;
    expect(countParams(c)).toBe(expected);
    expect(countParams({ ...c, scalarHead: true })).toBe(expected + d + 1);
  });

  it('overrides presets and rejects bad configs with the field named', () => {
    expect(presetConfig('tiny', { nLayer: 3 }).nLayer).toBe(3);
    expect(() => presetConfig('tiny', { nHead: 3 })).toThrow(/nEmbd \(64\) must be divisible by nHead \(3\)/);
    expect(() => presetConfig('tiny', { vocabSize: 0 })).toThrow(GptConfigError);
    expect(() => presetConfig('tiny', { nEmbd: 1.5 })).toThrow(/nEmbd must be a positive integer/);
    expect(() => presetConfig('tiny', { nLayer: -1 })).toThrow(/nLayer/);
    expect(() => presetConfig('tiny', { layerNormEps: 0 })).toThrow(/layerNormEps/);
    expect(() => presetConfig('nope' as 'tiny')).toThrow(/unknown preset "nope"/);
    expect(presetConfig('tiny', { nLayer: 0 }).nLayer).toBe(0);
  });

  it('names parameters in HF GPT-2 order with Conv1D [in, out] shapes', () => {
    const shapes = paramShapes({ ...presetConfig('tiny', { nLayer: 1 }), scalarHead: true });
    expect(shapes).toEqual([
      { name: 'wte.weight', shape: [259, 64] },
      { name: 'wpe.weight', shape: [64, 64] },
      { name: 'h.0.ln_1.weight', shape: [64] },
      { name: 'h.0.ln_1.bias', shape: [64] },
      { name: 'h.0.attn.c_attn.weight', shape: [64, 192] },
      { name: 'h.0.attn.c_attn.bias', shape: [192] },
      { name: 'h.0.attn.c_proj.weight', shape: [64, 64] },
      { name: 'h.0.attn.c_proj.bias', shape: [64] },
      { name: 'h.0.ln_2.weight', shape: [64] },
      { name: 'h.0.ln_2.bias', shape: [64] },
      { name: 'h.0.mlp.c_fc.weight', shape: [64, 256] },
      { name: 'h.0.mlp.c_fc.bias', shape: [256] },
      { name: 'h.0.mlp.c_proj.weight', shape: [256, 64] },
      { name: 'h.0.mlp.c_proj.bias', shape: [64] },
      { name: 'ln_f.weight', shape: [64] },
      { name: 'ln_f.bias', shape: [64] },
      { name: 'score.weight', shape: [64, 1] },
      { name: 'score.bias', shape: [1] },
    ]);
  });
});

describe('initParams', () => {
  const config = presetConfig('small', { nLayer: 2 });

  it('is deterministic per seed and differs between seeds', () => {
    const a = initParams(presetConfig('tiny'), 7);
    const b = initParams(presetConfig('tiny'), 7);
    const c = initParams(presetConfig('tiny'), 8);
    for (const [name, data] of a) expect(sameBytes(b.get(name)!, data), name).toBe(true);
    expect(sameBytes(c.get('wte.weight')!, a.get('wte.weight')!)).toBe(false);
  });

  it('follows GPT-2 init: N(0, 0.02), residual projections scaled by 1/sqrt(2L), LN 1/0, biases 0', () => {
    const params = initParams(config, 1);
    for (const { name, shape } of paramShapes(config)) {
      expect(params.get(name)!.length).toBe(shape.reduce((n, d) => n * d, 1));
    }
    const wte = meanStd(params.get('wte.weight')!);
    expect(Math.abs(wte.mean)).toBeLessThan(1e-3);
    expect(wte.std).toBeCloseTo(0.02, 3);
    const proj = meanStd(params.get('h.1.mlp.c_proj.weight')!);
    expect(proj.std).toBeCloseTo(0.02 / Math.sqrt(4), 3);
    expect(meanStd(params.get('h.0.attn.c_attn.weight')!).std).toBeCloseTo(0.02, 3);
    expect(params.get('h.0.ln_1.weight')!.every((v) => v === 1)).toBe(true);
    expect(params.get('ln_f.weight')!.every((v) => v === 1)).toBe(true);
    expect(params.get('ln_f.bias')!.every((v) => v === 0)).toBe(true);
    expect(params.get('h.0.mlp.c_fc.bias')!.every((v) => v === 0)).toBe(true);
  });

  it('adding a scalar head leaves the trunk unchanged', () => {
    const tiny = presetConfig('tiny');
    const plain = initParams(tiny, 3);
    const withHead = initParams({ ...tiny, scalarHead: true }, 3);
    for (const [name, data] of plain) expect(sameBytes(withHead.get(name)!, data), name).toBe(true);
    expect(meanStd(withHead.get('score.weight')!).std).toBeGreaterThan(0);
    expect(withHead.get('score.bias')).toEqual(new Float32Array(1));
  });
});
