import { Graph } from '@rlhf/graph';
import { createRuntime, int64, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GptConfig } from './config.js';
import { createGenerator } from './generate.js';
import { createScorer, lastTokenIndex } from './score.js';
import { referenceGptForward } from './testing/reference-gpt.js';
import { logSoftmaxRow, sharpParams } from './testing/sharp-params.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

// A scalar-head model: its LM head generates, its score head plays critic and reward model.
const config: GptConfig = {
  vocabSize: 19,
  maxPositions: 20,
  nEmbd: 16,
  nLayer: 2,
  nHead: 4,
  layerNormEps: 1e-5,
  scalarHead: true,
};
const params = sharpParams(config, 9, 3);
const [EOS, PAD] = [3, 18];
const prompts = [[5, 1, 7, 3], [9], [4, 4, 12], [8, 0]];
const temperature = 1.3;

async function rollout() {
  const generator = await createGenerator(runtime, config);
  const out = await generator.generate({
    params,
    prompts,
    maxNewTokens: 9,
    temperature,
    topK: 12,
    seed: 5,
    eosId: EOS,
    padId: PAD,
  });
  await generator.release();
  return out;
}

const entropyOf = (logp: number[]) => -logp.reduce((s, l) => s + Math.exp(l) * l, 0);

describe('scoring graph', () => {
  it('reproduces the generation log-probs and matches the reference log-probs, entropy, values and scores', async () => {
    const gen = await rollout();
    expect(gen.finished.some(Boolean)).toBe(true); // some rows stop early, so masks and scores differ per row
    expect(gen.finished.every(Boolean)).toBe(false);
    for (const dtype of ['float32', 'float64'] as const) {
      const scorer = await createScorer(runtime, config, { dtype });
      const scored = await scorer.score({
        params,
        prompts,
        padId: PAD,
        responses: gen.tokens,
        responseMask: gen.mask,
        temperature,
      });
      await scorer.release();
      const tolerance = dtype === 'float64' ? 1e-9 : 1e-4;
      for (const [b, prompt] of prompts.entries()) {
        const length = gen.mask[b].reduce((s, m) => s + m, 0);
        const sequence = [...prompt, ...gen.tokens[b].slice(0, length)];
        const ref = referenceGptForward(config, params, sequence);
        for (let j = 0; j < length; j++) {
          const position = prompt.length - 1 + j; // the column that predicts response token j
          const logp = logSoftmaxRow(ref.logits.subarray(position * 19, (position + 1) * 19), temperature);
          if (dtype === 'float32')
            expect(Math.abs(scored.logprobs![b][j] - gen.logprobs[b][j])).toBeLessThanOrEqual(1e-5);
          expect(Math.abs(scored.logprobs![b][j] - logp[gen.tokens[b][j]])).toBeLessThanOrEqual(tolerance);
          expect(Math.abs(scored.entropy![b][j] - entropyOf(logp))).toBeLessThanOrEqual(tolerance);
          expect(Math.abs(scored.values![b][j] - ref.values![position])).toBeLessThanOrEqual(tolerance);
        }
        // The reward sits on the last real token (EOS when generated).
        expect(Math.abs(scored.scores![b] - ref.values![sequence.length - 1])).toBeLessThanOrEqual(tolerance);
      }
    }
  });

  it('computes only the outputs asked for', async () => {
    const scorer = await createScorer(runtime, config, { outputs: ['scores'] });
    const scored = await scorer.score({
      params,
      prompts: [[1, 2]],
      padId: PAD,
      responses: [[3, 2]],
      responseMask: [[1, 1]],
    });
    await scorer.release();
    expect(Object.keys(scored)).toEqual(['scores']);
    const ref = referenceGptForward(config, params, [1, 2, 3, 2]);
    expect(Math.abs(scored.scores![0] - ref.values![3])).toBeLessThanOrEqual(1e-4);
    await expect(
      createScorer(runtime, { ...config, scalarHead: false }, { outputs: ['values'] }),
    ).rejects.toThrow(/needs a config with scalarHead/);
  });

  it('lastTokenIndex finds the last real column for left, right and no padding', async () => {
    const g = new Graph('last');
    g.output(lastTokenIndex(g.input('mask', 'int64', ['batch', 'seq'])), 'last');
    const session = await runtime.createSession(g.toBytes());
    const mask = [
      [1, 1, 1, 1, 1],
      [0, 0, 1, 1, 1],
      [0, 1, 1, 0, 0],
      [1, 0, 0, 0, 0],
      [0, 0, 0, 0, 0],
    ];
    const out = await session.run({ mask: int64([5, 5], mask.flat()) });
    await session.release();
    expect(Array.from(out.last.data as BigInt64Array, Number)).toEqual([4, 4, 2, 0, 0]);
  });
});
