import { Graph } from '@rlhf/graph';
import { createRuntime, float32, type HostTensor, int64, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type GptConfig, initParams, presetConfig } from './config.js';
import { PROMPT_EMBEDDINGS } from './decoder.js';
import { type HostParams, paramFeeds } from './feeds.js';
import { gptForward, gptParamInputs } from './gpt.js';
import { LoraError } from './lora.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from './lora-peft.js';
import {
  initPromptTuning,
  promptTuningFiles,
  promptTuningFromFiles,
  promptTuningParamShapes,
} from './prompt-tuning.js';
import { createRng } from './random.js';
import { checkpointFromFiles } from './hf.js';
import { type SafeTensor, writeSafetensors } from './safetensors.js';
import { referenceGptForward } from './testing/reference-gpt.js';
import { referenceLlamaForward } from './testing/reference-llama.js';
import { type HfConfig, hfLlamaShapes, hfLlamaWeights, variants } from './testing/tiny-llama.js';
import { maxAbsDiff, runOnce } from './testing/graph-run.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

const gpt2 = presetConfig('tiny');
const llama = presetConfig('tiny-llama');
const P = 3;

/** Virtual-token embeddings unlike any token's: normal noise of the embeddings' scale. */
function noisyPrompt(config: GptConfig, seed = 7): Float32Array {
  const rng = createRng(seed, 'prompt');
  return Float32Array.from({ length: P * config.nEmbd }, () => 0.5 * rng.normal());
}

/** Logits [B, T, V] of base + virtual tokens (prompt null: the plain graph) for ids [B, T], optionally masked. */
async function logits(
  config: GptConfig,
  base: HostParams,
  prompt: Float32Array | null,
  ids: HostTensor,
  mask?: HostTensor,
): Promise<Float32Array> {
  const g = new Graph('prompt_tuning_forward');
  const params = gptParamInputs(g, config);
  const feeds: Record<string, HostTensor> = { ...paramFeeds(config, base), ids };
  if (prompt) {
    const rows = prompt.length / config.nEmbd;
    params.set(PROMPT_EMBEDDINGS, g.input('prompt', 'float32', [rows, config.nEmbd]));
    feeds.prompt = float32([rows, config.nEmbd], prompt);
  }
  const attentionMask = mask && g.input('mask', 'int64', ['batch', 'seq']);
  if (mask) feeds.mask = mask;
  const ids_ = g.input('ids', 'int64', ['batch', 'seq']);
  g.output(gptForward(params, config, ids_, { attentionMask }).logits, 'logits');
  return (await runOnce(runtime, g, feeds)).logits.data as Float32Array;
}

const rowsOf = (config: GptConfig, prompt: Float32Array) =>
  Array.from({ length: prompt.length / config.nEmbd }, (_, i) =>
    Array.from(prompt.subarray(i * config.nEmbd, (i + 1) * config.nEmbd)),
  );

describe('prompt tuning on GPT-2', () => {
  const config = gpt2;
  const base = initParams(config, 1);
  const tokens = [
    [5, 17, 200, 3, 99, 42],
    [250, 1, 1, 64, 8, 120],
  ];
  const T = tokens[0].length;
  const V = config.vocabSize;

  test('logits of base + virtual tokens equal the float64 reference on [virtual ; token] embeddings', async () => {
    const prompt = noisyPrompt(config);
    const out = await logits(config, base, prompt, int64([2, T], tokens.flat()));
    let worst = 0;
    for (let b = 0; b < 2; b++) {
      const ref = referenceGptForward(config, base, tokens[b], rowsOf(config, prompt));
      expect(ref.logits.length).toBe((P + T) * V);
      // The graph returns the real tokens' rows only: the reference's rows P .. P+T-1.
      worst = Math.max(
        worst,
        maxAbsDiff(out.subarray(b * T * V, (b + 1) * T * V), ref.logits.subarray(P * V)),
      );
    }
    console.log(`prompt tuning, GPT-2: max |logit - float64 reference| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-4);
  });

  test('a right-padding mask gets ones for the virtual tokens: real rows equal the unpadded forward', async () => {
    const prompt = noisyPrompt(config);
    const mask = int64([2, T], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    const masked = await logits(config, base, prompt, int64([2, T], tokens.flat()), mask);
    const short = await logits(config, base, prompt, int64([1, 4], tokens[1].slice(0, 4)));
    expect(maxAbsDiff(masked.subarray(T * V, T * V + 4 * V), short)).toBeLessThanOrEqual(1e-5);
    const ref = referenceGptForward(config, base, tokens[0], rowsOf(config, prompt));
    expect(maxAbsDiff(masked.subarray(0, T * V), ref.logits.subarray(P * V))).toBeLessThanOrEqual(1e-4);
  });
});

describe('prompt tuning on the Llama family', () => {
  /** An HF directory's files (config.json + model.safetensors) of tiny Llama-family weights. */
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
  test.each(variants)(
    '%s: logits of base + virtual tokens equal the float64 reference on [virtual ; token] embeddings',
    async (_, json) => {
      const weights = hfLlamaWeights(json, 3);
      const { config, params } = checkpointFromFiles(hfFiles(json, weights), 'test');
      const row = [1, 5, 2, 7, 3, 9];
      const prompt = noisyPrompt(config);
      const out = await logits(config, params, prompt, int64([1, row.length], row));
      const ref = referenceLlamaForward(json, weights, [row], rowsOf(config, prompt))[0];
      expect(ref.length).toBe(P + row.length);
      const flat = Float64Array.from(ref.slice(P).flatMap((r) => Array.from(r)));
      expect(maxAbsDiff(out, flat)).toBeLessThanOrEqual(1e-4);
    },
  );
});

describe.each([
  ['gpt2', gpt2],
  ['llama', llama],
] as const)('prompt tuning on %s', (_, config) => {
  const base = initParams(config, 2);
  const settings = { numVirtualTokens: P };
  const tokens = [9, 33, 70, 2, 11];

  test('virtual tokens that are copies of token embeddings give the plain forward of those tokens in front', async () => {
    const embedding = base.get(config.architecture === 'llama' ? 'model.embed_tokens.weight' : 'wte.weight');
    const front = [40, 41, 42];
    const d = config.nEmbd;
    const prompt = new Float32Array(P * d);
    for (const [i, t] of front.entries())
      prompt.set((embedding as Float32Array).subarray(t * d, (t + 1) * d), i * d);
    const tuned = await logits(config, base, prompt, int64([1, tokens.length], tokens));
    const plain = await logits(config, base, null, int64([1, P + tokens.length], [...front, ...tokens]));
    expect(maxAbsDiff(tuned, plain.subarray(P * config.vocabSize))).toBeLessThanOrEqual(1e-5);
  });

  test("PEFT's layout: config fields, one prompt_embeddings key; re-import gives identical outputs", async () => {
    const prompt = initPromptTuning(config, settings, base, 4);
    const files = promptTuningFiles(config, settings, prompt, 'models/base');
    const json = JSON.parse(new TextDecoder().decode(files[ADAPTER_CONFIG]));
    expect(json).toMatchObject({
      peft_type: 'PROMPT_TUNING',
      task_type: 'CAUSAL_LM',
      num_virtual_tokens: P,
      token_dim: config.nEmbd,
      num_transformer_submodules: 1,
      prompt_tuning_init: 'SAMPLE_VOCAB',
      base_model_name_or_path: 'models/base',
    });
    const loaded = promptTuningFromFiles(config, files);
    expect(loaded.settings).toEqual(settings);
    expect(loaded.baseModel).toBe('models/base');
    expect([...loaded.adapter.keys()]).toEqual([PROMPT_EMBEDDINGS]);
    const ids = int64([1, tokens.length], tokens);
    const before = await logits(config, base, prompt.get(PROMPT_EMBEDDINGS) as Float32Array, ids);
    const after = await logits(config, base, loaded.adapter.get(PROMPT_EMBEDDINGS) as Float32Array, ids);
    expect(maxAbsDiff(before, after)).toBe(0);
    expect(files[ADAPTER_WEIGHTS].length).toBeLessThan(P * config.nEmbd * 4 + 200);
  });

  test('SAMPLE_VOCAB init: every virtual token starts as some vocabulary token’s embedding', () => {
    const prompt = initPromptTuning(config, settings, base, 4).get(PROMPT_EMBEDDINGS) as Float32Array;
    const embedding = base.get(
      config.architecture === 'llama' ? 'model.embed_tokens.weight' : 'wte.weight',
    ) as Float32Array;
    const d = config.nEmbd;
    for (let i = 0; i < P; i++) {
      const row = prompt.subarray(i * d, (i + 1) * d);
      const found = Array.from({ length: config.vocabSize }, (_, v) => v).some((v) =>
        row.every((x, c) => x === embedding[v * d + c]),
      );
      expect(found).toBe(true);
    }
  });
});

describe('bad prompt-tuning settings and files name the field', () => {
  const base = initParams(gpt2, 1);
  test.each([0, -1, 1.5, gpt2.maxPositions])('numVirtualTokens %s', (n) => {
    expect(() => promptTuningParamShapes(gpt2, { numVirtualTokens: n })).toThrow(LoraError);
    expect(() => promptTuningParamShapes(gpt2, { numVirtualTokens: n })).toThrow(/^numVirtualTokens/);
  });

  test('a token_dim or shape unlike the base, or a LoRA config', () => {
    const files = promptTuningFiles(
      gpt2,
      { numVirtualTokens: P },
      initPromptTuning(gpt2, { numVirtualTokens: P }, base, 1),
    );
    const edit = (over: Record<string, unknown>) => {
      const json = JSON.parse(new TextDecoder().decode(files[ADAPTER_CONFIG]));
      return { ...files, [ADAPTER_CONFIG]: new TextEncoder().encode(JSON.stringify({ ...json, ...over })) };
    };
    expect(() => promptTuningFromFiles(gpt2, edit({ token_dim: 32 }))).toThrow(/^token_dim/);
    expect(() => promptTuningFromFiles(gpt2, edit({ num_virtual_tokens: 4 }))).toThrow(/^prompt_embeddings/);
    expect(() => promptTuningFromFiles(gpt2, edit({ peft_type: 'LORA' }))).toThrow(/^peft_type/);
  });
});
