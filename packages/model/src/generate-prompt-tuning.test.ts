// Generation with prompt tuning's virtual tokens (createGenerator { promptTuning }): greedy tokens and their
// log-probs equal a float64 reference that reruns the whole [virtual ; prompt ; generated so far] sequence each
// step (no cache), for GPT-2 and every tiny Llama-family variant, left-padded rows of different lengths in one batch.
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type GptConfig, presetConfig } from './config.js';
import { PROMPT_EMBEDDINGS } from './decoder.js';
import type { HostParams } from './feeds.js';
import { createGenerator } from './generate.js';
import { checkpointFromFiles } from './hf.js';
import { createRng } from './random.js';
import { type SafeTensor, writeSafetensors } from './safetensors.js';
import { referenceGptForward } from './testing/reference-gpt.js';
import { referenceLlamaForward } from './testing/reference-llama.js';
import { logSoftmaxRow, sharpParams } from './testing/sharp-params.js';
import { type HfConfig, hfLlamaShapes, hfLlamaWeights, variants } from './testing/tiny-llama.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

const P = 3;
const NEW = 5;
const PROMPTS = [
  [5, 17, 40, 3],
  [60, 1],
];

/** Virtual-token embeddings unlike any token's. */
function noisyPrompt(config: GptConfig, seed = 11): Float32Array {
  const rng = createRng(seed, 'prompt');
  return Float32Array.from({ length: P * config.nEmbd }, () => 0.5 * rng.normal());
}

const rowsOf = (d: number, prompt: Float32Array) =>
  Array.from({ length: prompt.length / d }, (_, i) => Array.from(prompt.subarray(i * d, (i + 1) * d)));

/** Greedy decoding by the reference: the last position's log-softmax of the full forward, step by step. */
function referenceGreedy(lastLogits: (tokens: number[]) => ArrayLike<number>, prompt: readonly number[]) {
  const tokens = [...prompt];
  const logprobs: number[] = [];
  for (let i = 0; i < NEW; i++) {
    const row = logSoftmaxRow(lastLogits(tokens));
    const next = row.indexOf(Math.max(...row));
    tokens.push(next);
    logprobs.push(row[next]);
  }
  return { tokens: tokens.slice(prompt.length), logprobs };
}

/** Last position's logits of the reference forward of `tokens` after `prefix` embedding rows. */
type LastLogits = (tokens: number[], prefix: number[][]) => ArrayLike<number>;

async function expectReference(
  config: GptConfig,
  base: HostParams,
  prompt: Float32Array,
  reference: LastLogits,
  label: string,
) {
  const virtual = rowsOf(config.nEmbd, prompt);
  const lastLogits = (tokens: number[]) => reference(tokens, virtual);
  const prompts = PROMPTS.map((row) => row.map((id) => id % config.vocabSize));
  const generator = await createGenerator(runtime, config, {
    promptTuning: { numVirtualTokens: P },
    dtype: 'float64',
  });
  try {
    const out = await generator.generate({
      params: base,
      adapter: new Map([[PROMPT_EMBEDDINGS, prompt]]),
      prompts,
      maxNewTokens: NEW,
      temperature: 0,
      eosId: -1,
      padId: 0,
    });
    let worst = 0;
    for (const [b, row] of prompts.entries()) {
      const want = referenceGreedy(lastLogits, row);
      expect(out.tokens[b], `${label} row ${b}`).toEqual(want.tokens);
      for (const [t, lp] of want.logprobs.entries())
        worst = Math.max(worst, Math.abs(out.logprobs[b][t] - lp));
    }
    console.log(
      `${label}: greedy with ${P} virtual tokens, max |log-prob - float64 reference| ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThanOrEqual(1e-8);
    // The bare base's greedy log-probs differ: the virtual tokens are in play.
    const plain = referenceGreedy((tokens) => reference(tokens, []), prompts[0]);
    expect(Math.max(...plain.logprobs.map((lp, t) => Math.abs(lp - out.logprobs[0][t])))).toBeGreaterThan(
      1e-3,
    );
  } finally {
    await generator.release();
  }
}

describe('generation with virtual tokens', () => {
  test('GPT-2', async () => {
    const config = presetConfig('tiny');
    const base = sharpParams(config, 3, 2);
    const prompt = noisyPrompt(config);
    const V = config.vocabSize;
    await expectReference(
      config,
      base,
      prompt,
      (tokens, prefix) => {
        const ref = referenceGptForward(config, base, tokens, prefix);
        return ref.logits.subarray(ref.logits.length - V);
      },
      'gpt2',
    );
  });

  const hfFiles = (json: HfConfig, weights: Map<string, Float32Array>) => {
    const shapes = new Map(hfLlamaShapes(json));
    const tensors = new Map<string, SafeTensor>();
    for (const [name, data] of weights)
      tensors.set(name, { dtype: 'F32', shape: shapes.get(name) as number[], data });
    return {
      'config.json': new TextEncoder().encode(JSON.stringify(json)),
      'model.safetensors': writeSafetensors(tensors, { format: 'pt' }),
    };
  };
  test.each(variants)('%s', async (name, json) => {
    const weights = hfLlamaWeights(json, 5);
    const { config, params } = checkpointFromFiles(hfFiles(json, weights), 'test');
    const prompt = noisyPrompt(config);
    await expectReference(
      config,
      params,
      prompt,
      (tokens, prefix) => referenceLlamaForward(json, weights, [tokens], prefix)[0].at(-1) ?? [],
      name,
    );
  });
});
