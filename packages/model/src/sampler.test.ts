// The sampler's variants and the top-logprobs output, against the float64 reference forward (generate.test.ts
// checks the sampled distributions with a chi-square test).
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GptConfig } from './config.js';
import { createGenerator, MAX_TOP_LOGPROBS } from './generate.js';
import { samplerFor, TOP_P_CANDIDATES } from './sampler.js';
import { referenceGptForward } from './testing/reference-gpt.js';
import { logSoftmaxRow, sharpParams } from './testing/sharp-params.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

const config: GptConfig = {
  vocabSize: 29,
  maxPositions: 16,
  nEmbd: 16,
  nLayer: 2,
  nHead: 2,
  layerNormEps: 1e-5,
};
const params = sharpParams(config, 6, 3);

/** The reference's log-softmax at temperature T after a token sequence (float64). */
const nextLogp = (c: GptConfig, p: Map<string, Float32Array>, tokens: number[], temperature: number) =>
  logSoftmaxRow(
    referenceGptForward(c, p, tokens).logits.subarray((tokens.length - 1) * c.vocabSize),
    temperature,
  );

describe('samplerFor', () => {
  it('needs the sorted candidates only for a top-k or top-p filter', () => {
    expect(samplerFor({})).toBe('plain');
    expect(samplerFor({ topK: 0, topP: 1 })).toBe('plain');
    expect(samplerFor({ topK: 5 })).toBe('filtered');
    expect(samplerFor({ topP: 0.9 })).toBe('filtered');
  });
});

describe('top logprobs', () => {
  for (const { temperature, topK } of [
    { temperature: 1.5, topK: 0 },
    { temperature: 0, topK: 0 },
    { temperature: 0.8, topK: 4 },
  ]) {
    it(`are the k largest of the float64 log-softmax at every step (temperature ${temperature}, topK ${topK})`, async () => {
      const generator = await createGenerator(runtime, config);
      const prompts = [[1, 5, 2], [7], [3, 3, 9, 4]];
      const k = 5;
      const out = await generator.generate({
        params,
        prompts,
        maxNewTokens: 6,
        temperature,
        topK,
        seed: 4,
        eosId: -1,
        padId: 0,
        topLogprobs: k,
      });
      await generator.release();
      const top = out.top as NonNullable<typeof out.top>;
      for (const [b, prompt] of prompts.entries()) {
        const seq = [...prompt];
        for (let n = 0; n < 6; n++) {
          // Greedy reports log-probs at temperature 1, like the sampled token's.
          const logp = nextLogp(config, params, seq, temperature > 0 ? temperature : 1);
          const expected = logp
            .map((value, id) => ({ id, value }))
            .sort((x, y) => y.value - x.value)
            .slice(0, k);
          expect(top.ids[b][n]).toEqual(expected.map((e) => e.id));
          for (const [j, e] of expected.entries())
            expect(Math.abs(top.logprobs[b][n][j] - e.value)).toBeLessThan(1e-4);
          // The sampled token's own log-prob is the same distribution's.
          expect(Math.abs(out.logprobs[b][n] - logp[out.tokens[b][n]])).toBeLessThan(1e-4);
          seq.push(out.tokens[b][n]);
        }
      }
    });
  }

  it('asking for top logprobs does not change the samples', async () => {
    const generator = await createGenerator(runtime, config);
    const request = {
      params,
      prompts: [[1, 2], [4]],
      maxNewTokens: 8,
      temperature: 1.2,
      seed: 9,
      eosId: -1,
      padId: 0,
    };
    const plain = await generator.generate(request);
    const withTop = await generator.generate({ ...request, topLogprobs: 3 });
    await generator.release();
    expect(withTop.tokens).toEqual(plain.tokens);
    expect(plain.top).toBeUndefined();
    expect(withTop.top?.ids[0][0]).toHaveLength(3);
  });

  it(`rejects more than ${MAX_TOP_LOGPROBS}`, async () => {
    const generator = await createGenerator(runtime, config);
    const request = { params, prompts: [[1]], maxNewTokens: 1, eosId: -1, padId: 0 };
    await expect(generator.generate({ ...request, topLogprobs: MAX_TOP_LOGPROBS + 1 })).rejects.toThrow(
      /topLogprobs/,
    );
    await generator.release();
  });
});

describe(`top-p without top-k: the nucleus is found among the ${TOP_P_CANDIDATES} most likely tokens`, () => {
  it('a near-flat distribution over more tokens never draws outside the candidates', async () => {
    const wide: GptConfig = { ...config, vocabSize: TOP_P_CANDIDATES + 200, nLayer: 1 };
    const wideParams = sharpParams(wide, 2, 1);
    const prompt = [1, 2, 3];
    const logp = nextLogp(wide, wideParams, prompt, 50); // temperature 50: almost uniform
    const rank = new Map(
      logp
        .map((value, id) => ({ id, value }))
        .sort((x, y) => y.value - x.value)
        .map((e, r) => [e.id, r]),
    );
    const outside = [...rank].filter(([, r]) => r >= TOP_P_CANDIDATES).map(([id]) => id);
    const outsideMass = outside.reduce((sum, id) => sum + Math.exp(logp[id]), 0);
    expect(outsideMass).toBeGreaterThan(0.1); // the exact nucleus at p = 0.9999 would draw these ~15 % of the time
    const generator = await createGenerator(runtime, wide);
    const rows = 2000;
    const out = await generator.generate({
      params: wideParams,
      prompts: new Array(rows).fill(prompt),
      maxNewTokens: 1,
      temperature: 50,
      topP: 0.9999,
      seed: 1,
      eosId: -1,
      padId: 0,
    });
    // Without the filter (plain sampler), the same distribution does reach them.
    const plain = await generator.generate({
      params: wideParams,
      prompts: new Array(rows).fill(prompt),
      maxNewTokens: 1,
      temperature: 50,
      seed: 1,
      eosId: -1,
      padId: 0,
    });
    await generator.release();
    const drawnOutside = (tokens: number[][]) =>
      tokens.filter(([t]) => (rank.get(t) as number) >= TOP_P_CANDIDATES).length;
    expect(drawnOutside(out.tokens)).toBe(0);
    expect(drawnOutside(plain.tokens)).toBeGreaterThan(rows * outsideMass * 0.7);
  });
});
