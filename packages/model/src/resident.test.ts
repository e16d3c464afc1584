// Resident params: kept in the ORT thread while the same arrays come back; new arrays are kept anew.
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GptConfig } from './config.js';
import { createGenerator, type GenerateRequest } from './generate.js';
import { residentParams } from './resident.js';
import { sharpParams } from './testing/sharp-params.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu', intraOpNumThreads: 1 });
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

describe('residentParams', () => {
  it('keeps params once per Map of the same arrays, and again when an array is new', async () => {
    const resident = residentParams(runtime, config, 'float32');
    const a = sharpParams(config, 4, 3);
    const first = await resident.with(a, async (kept) => kept);
    expect(first.names.length).toBe(a.size);
    expect(await resident.with(a, async (kept) => kept)).toBe(first); // not kept again
    const b = new Map(a);
    b.set('wte', a.get('wte')?.slice() ?? new Float32Array()); // one new array: kept anew
    const second = await resident.with(b, async (kept) => kept);
    expect(second).not.toBe(first);
    await resident.release();
  });

  it('generate with changing params gives what a fresh generator gives for each', async () => {
    const request = (params: Map<string, Float32Array>): GenerateRequest => ({
      params,
      prompts: [[1, 2, 3], [4]],
      maxNewTokens: 5,
      temperature: 1,
      seed: 7,
      eosId: -1,
      padId: 22,
    });
    const pA = sharpParams(config, 4, 3);
    const pB = sharpParams(config, 5, 3);
    const fresh = async (p: Map<string, Float32Array>) => {
      const g = await createGenerator(runtime, config);
      const out = await g.generate(request(p));
      await g.release();
      return out;
    };
    const [wantA, wantB] = [await fresh(pA), await fresh(pB)];
    expect(wantB.tokens).not.toEqual(wantA.tokens);
    const g = await createGenerator(runtime, config);
    const got = [];
    for (const p of [pA, pA, pB, pA]) got.push(await g.generate(request(p)));
    await g.release();
    expect(got).toEqual([wantA, wantA, wantB, wantA]);
  });
});
