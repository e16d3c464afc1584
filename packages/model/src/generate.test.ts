import { Graph, slice } from '@rlhf/graph';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GptConfig } from './config.js';
import { leftPad, paramFeeds } from './feeds.js';
import { createGenerator, type GenerateResult, type Generator } from './generate.js';
import { gptForward, gptParamInputs } from './gpt.js';
import { referenceGptForward } from './testing/reference-gpt.js';
import { logSoftmaxRow, sharpParams } from './testing/sharp-params.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

const config: GptConfig = {
  vocabSize: 23,
  maxPositions: 24,
  nEmbd: 16,
  nLayer: 2,
  nHead: 2,
  layerNormEps: 1e-5,
};
const params = sharpParams(config, 4, 3);
const PAD = 22;

/** Index of the largest value. */
const argmax = (xs: ArrayLike<number>) =>
  Array.from(xs).reduce((best, x, i, all) => (x > all[best] ? i : best), 0);

/** Last-position logits of the reference forward for a token sequence. */
function nextLogits(c: GptConfig, p: Map<string, Float32Array>, tokens: number[]): Float64Array {
  const { logits } = referenceGptForward(c, p, tokens);
  return logits.subarray((tokens.length - 1) * c.vocabSize);
}

describe('gptForward with a KV cache', () => {
  it('decoding in chunks with the cache gives the logits of one full forward', async () => {
    const g = new Graph('kv');
    const p = gptParamInputs(g, config, 'float32');
    const ids = g.input('ids', 'int64', ['batch', 'seq']);
    const mask = g.input('mask', 'int64', ['batch', 'seq']);
    const cols = (t: typeof ids, from: number, to: number) => slice(t, [from], [to], [1]);
    const full = gptForward(p, config, ids, { attentionMask: mask });
    const prefill = gptForward(p, config, cols(ids, 0, 5), { attentionMask: cols(mask, 0, 5) });
    const one = gptForward(p, config, cols(ids, 5, 6), {
      attentionMask: cols(mask, 0, 6),
      pastKv: prefill.presentKv,
    });
    const two = gptForward(p, config, cols(ids, 6, 8), { attentionMask: mask, pastKv: one.presentKv });
    g.output(full.logits, 'full');
    g.output(prefill.logits, 'prefill');
    g.output(one.logits, 'one');
    g.output(two.logits, 'two');
    g.output(two.presentKv[1].key, 'key');
    const session = await runtime.createSession(g.toBytes());
    // Row 1 is left-padded by 3.
    const batch = leftPad(
      [
        [1, 5, 2, 7, 3, 9, 4, 8],
        [6, 0, 11, 13, 12],
      ],
      PAD,
    );
    const out = await session.run({ ...paramFeeds(config, params), ids: batch.ids, mask: batch.mask });
    await session.release();
    const V = config.vocabSize;
    const fullRows = out.full.data as Float32Array;
    const chunks = [
      { t: out.prefill, from: 0, to: 5 },
      { t: out.one, from: 5, to: 6 },
      { t: out.two, from: 6, to: 8 },
    ];
    let maxDiff = 0;
    for (const { t, from, to } of chunks) {
      const width = to - from;
      const data = t.data as Float32Array;
      for (let b = 0; b < 2; b++) {
        for (let i = 0; i < width * V; i++) {
          const expected = fullRows[(b * 8 + from) * V + i];
          maxDiff = Math.max(maxDiff, Math.abs(data[b * width * V + i] - expected));
        }
      }
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    expect(out.key.dims).toEqual([2, 2, 8, 8]);
  });
});

describe('createGenerator', () => {
  let generator: Generator;
  beforeAll(async () => {
    generator = await createGenerator(runtime, config);
  });
  afterAll(() => generator.release());

  const prompts = [[1, 5, 2, 7], [6], [3, 3, 9]];

  for (const dtype of ['float32', 'float64'] as const) {
    it(`greedy decoding (${dtype}) equals step-by-step argmax of the reference forward`, async () => {
      const gen = dtype === 'float32' ? generator : await createGenerator(runtime, config, { dtype });
      const N = 10;
      const out = await gen.generate({
        params,
        prompts,
        maxNewTokens: N,
        temperature: 0,
        eosId: -1,
        padId: PAD,
      });
      if (gen !== generator) await gen.release();
      const tolerance = dtype === 'float64' ? 1e-9 : 1e-4;
      for (const [b, prompt] of prompts.entries()) {
        const seq = [...prompt];
        for (let i = 0; i < N; i++) {
          const logits = nextLogits(config, params, seq);
          const token = argmax(logits);
          expect(out.tokens[b][i]).toBe(token);
          expect(Math.abs(out.logprobs[b][i] - logSoftmaxRow(logits)[token])).toBeLessThanOrEqual(tolerance);
          seq.push(token);
        }
      }
      expect(out.mask).toEqual(prompts.map(() => new Array(N).fill(1)));
      expect(out.finished).toEqual([false, false, false]);
    });
  }

  it('a fixed seed reproduces the samples; other seeds give other samples', async () => {
    const request = { params, prompts, maxNewTokens: 12, temperature: 1.5, eosId: -1, padId: PAD };
    const a = await generator.generate({ ...request, seed: 7 });
    const b = await generator.generate({ ...request, seed: 7 });
    const c = await generator.generate({ ...request, seed: 8 });
    expect(b).toEqual(a);
    expect(c.tokens).not.toEqual(a.tokens);
    // Sampled log-probs are those of the temperature-scaled policy.
    for (const [row, prompt] of prompts.entries()) {
      const seq = [...prompt];
      for (let i = 0; i < 12; i++) {
        const token = a.tokens[row][i];
        const expected = logSoftmaxRow(nextLogits(config, params, seq), 1.5)[token];
        expect(Math.abs(a.logprobs[row][i] - expected)).toBeLessThanOrEqual(1e-4);
        seq.push(token);
      }
    }
  });

  it('stops each row at its own EOS: mask 1 through EOS, then pad tokens, mask 0, log-prob 0', async () => {
    const rows = Array.from({ length: 48 }, (_, i) => [i % 20, (3 * i) % 17]);
    const eosId = 4;
    const out = await generator.generate({
      params,
      prompts: rows,
      maxNewTokens: 12,
      temperature: 3, // flat enough that EOS comes at many different steps
      seed: 11,
      eosId,
      padId: PAD,
    });
    const stops = new Set<number>();
    for (const [b, tokens] of out.tokens.entries()) {
      const eos = tokens.indexOf(eosId);
      const end = eos === -1 ? tokens.length : eos + 1;
      expect(out.finished[b]).toBe(eos !== -1);
      expect(out.mask[b]).toEqual(tokens.map((_, i) => (i < end ? 1 : 0)));
      expect(tokens.slice(end).every((t) => t === PAD)).toBe(true);
      expect(out.logprobs[b].slice(end).every((l) => l === 0)).toBe(true);
      expect(out.logprobs[b].slice(0, end).every((l) => l < 0)).toBe(true);
      stops.add(end);
    }
    expect(out.finished.filter(Boolean).length).toBeGreaterThan(5); // some rows finished ...
    expect(out.finished.filter((f) => !f).length).toBeGreaterThan(5); // ... others ran to the end
    expect(stops.size).toBeGreaterThan(4); // at many different steps
  });

  it('ends the loop early when every row has finished and still returns N columns', async () => {
    const prompt = [1, 5, 2, 7];
    const first = argmax(nextLogits(config, params, prompt));
    const out = await generator.generate({
      params,
      prompts: [prompt, prompt],
      maxNewTokens: 6,
      temperature: 0,
      eosId: first,
      padId: PAD,
    });
    const row = [first, PAD, PAD, PAD, PAD, PAD];
    expect(out).toEqual({
      tokens: [row, row],
      logprobs: out.logprobs.map((r) => [r[0], 0, 0, 0, 0, 0]),
      mask: [
        [1, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
      ],
      finished: [true, true],
    } satisfies GenerateResult);
    expect(out.logprobs[0][0]).toBeLessThan(0);
  });

  it('rejects requests the graph cannot serve', async () => {
    const ok = { params, prompts, maxNewTokens: 4, eosId: 1, padId: PAD };
    await expect(generator.generate({ ...ok, prompts: [[1], []] })).rejects.toThrow(/prompt 1 is empty/);
    await expect(generator.generate({ ...ok, prompts: [[23]] })).rejects.toThrow(/token 23/);
    await expect(generator.generate({ ...ok, maxNewTokens: 21 })).rejects.toThrow(/exceed maxPositions 24/);
    await expect(generator.generate({ ...ok, padId: 23 })).rejects.toThrow(/padId/);
    await expect(generator.generate({ ...ok, topP: 0 })).rejects.toThrow(/topP/);
    await expect(generator.generate({ ...ok, temperature: -1 })).rejects.toThrow(/temperature/);
  });
});

/**
 * The distribution the sampler should draw from (HF warper order): softmax(logits / T), keep the top-k
 * tokens, renormalise, keep the smallest prefix whose mass reaches top-p (the crossing token included).
 */
function expectedDistribution(
  logits: ArrayLike<number>,
  temperature: number,
  topK: number,
  topP: number,
): number[] {
  const probs = logSoftmaxRow(logits, temperature).map(Math.exp);
  const order = probs.map((_, i) => i).sort((a, b) => probs[b] - probs[a]);
  const kept = order.slice(0, topK > 0 ? topK : order.length);
  const massK = kept.reduce((s, i) => s + probs[i], 0);
  const nucleus: number[] = [];
  let before = 0;
  for (const i of kept) {
    if (before >= topP && topP < 1) break;
    nucleus.push(i);
    before += probs[i] / massK;
  }
  const mass = nucleus.reduce((s, i) => s + probs[i], 0);
  return probs.map((p, i) => (nucleus.includes(i) ? p / mass : 0));
}

// Chi-square critical values at p = 0.001 for 1..7 degrees of freedom.
const CHI2_CRITICAL = [10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32];

describe('sampling distribution (one step, many rows)', () => {
  const small: GptConfig = {
    vocabSize: 8,
    maxPositions: 8,
    nEmbd: 8,
    nLayer: 1,
    nHead: 2,
    layerNormEps: 1e-5,
  };
  const smallParams = sharpParams(small, 5, 10);
  const prompt = [1, 2, 3];
  const logits = nextLogits(small, smallParams, prompt);
  const rows = 4000;
  let generator: Generator;
  beforeAll(async () => {
    generator = await createGenerator(runtime, small);
  });
  afterAll(() => generator.release());

  it('has a spread-out next-token distribution to test on', () => {
    const p = expectedDistribution(logits, 1, 0, 1).sort((a, b) => b - a);
    expect(p[0]).toBeLessThan(0.6);
    expect(p[3]).toBeGreaterThan(0.03);
  });

  const settings = [
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.5, topK: 0, topP: 1 },
    { temperature: 2, topK: 0, topP: 1 },
    { temperature: 1, topK: 3, topP: 1 },
    { temperature: 1, topK: 0, topP: 0.7 },
    { temperature: 1.5, topK: 5, topP: 0.8 },
  ];
  for (const s of settings) {
    it(`draws from the right distribution: temperature ${s.temperature}, topK ${s.topK}, topP ${s.topP}`, async () => {
      const out = await generator.generate({
        params: smallParams,
        prompts: new Array(rows).fill(prompt),
        maxNewTokens: 1,
        ...s,
        seed: 3,
        eosId: -1,
        padId: 0,
      });
      const q = expectedDistribution(logits, s.temperature, s.topK, s.topP);
      const counts = new Array(small.vocabSize).fill(0);
      for (const [t] of out.tokens) counts[t]++;
      let chi2 = 0;
      let kept = 0;
      for (const [i, qi] of q.entries()) {
        if (qi === 0) {
          expect(counts[i]).toBe(0); // filtered tokens are never drawn
          continue;
        }
        kept++;
        chi2 += (counts[i] - rows * qi) ** 2 / (rows * qi);
      }
      if (s.topK > 0 || s.topP < 1) expect(kept).toBeLessThan(small.vocabSize);
      expect(chi2).toBeLessThan(CHI2_CRITICAL[kept - 2]);
      // Log-probs are those of the temperature-scaled distribution before filtering.
      const logp = logSoftmaxRow(logits, s.temperature);
      for (const [b, [t]] of out.tokens.entries())
        expect(Math.abs(out.logprobs[b][0] - logp[t])).toBeLessThan(1e-5);
    });
  }
});
