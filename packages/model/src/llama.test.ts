// The Llama family (llama, mistral, qwen2, qwen3) against the independent float64 reference
// (testing/reference-llama.ts), on tiny random checkpoints written here in HF layout.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildTrainStep,
  checkGradients,
  createTrainer,
  crossEntropy,
  Graph,
  gatherElements,
  logSoftmax,
  neg,
  reduceMean,
  slice,
  type Tensor,
  unsqueeze,
} from '@rlhf/graph';
import { createRuntime, hostTensor, int64, type Runtime } from '@rlhf/runtime';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countParams, type GptConfig, type LlamaConfig, paramShapes, presetConfig } from './config.js';
import { exportPolicyOnnx } from './export.js';
import { type HostParams, leftPad, type ModelDtype, paramFeeds } from './feeds.js';
import { createGenerator } from './generate.js';
import { gptForward, gptParamInputs } from './gpt.js';
import { checkpointFiles, checkpointFromFiles, gptConfigFromHf, gptConfigToHf, loadHfModel } from './hf.js';
import { f32ToF16, readSafetensors, type SafeTensor, writeSafetensors } from './safetensors.js';
import { createScorer } from './score.js';
import { referenceLlamaForward } from './testing/reference-llama.js';
import { logSoftmaxRow } from './testing/sharp-params.js';
import { tinyGpt2TokenizerJson } from './testing/tiny-hf.js';
import {
  type HfConfig,
  hfLlamaShapes,
  hfLlamaWeights,
  llamaDynamic,
  llamaGqaLlama3,
  mistral,
  mistralWindow,
  qwen2Biases,
  qwen3QkNorm,
  variants,
} from './testing/tiny-llama.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

/** config.json + model.safetensors bytes as HF save_pretrained writes them (F32, or F16 when asked). */
function hfFiles(json: HfConfig, weights: Map<string, Float32Array>, dtype: 'F32' | 'F16' = 'F32') {
  const tensors = new Map<string, SafeTensor>();
  const shapes = new Map(hfLlamaShapes(json));
  for (const [name, data] of weights) {
    const shape = shapes.get(name)!;
    tensors.set(name, dtype === 'F16' ? { dtype, shape, data: f32ToF16(data) } : { dtype, shape, data });
  }
  return {
    'config.json': new TextEncoder().encode(JSON.stringify(json)),
    'model.safetensors': writeSafetensors(tensors, { format: 'pt' }),
  };
}

function load(json: HfConfig, seed: number) {
  const weights = hfLlamaWeights(json, seed);
  const { config, params } = checkpointFromFiles(hfFiles(json, weights), 'test');
  return { config, params, weights };
}

/** gptForward logits [B, T, V] of a batch (optionally with an attention mask), flattened. */
async function forward(
  config: GptConfig,
  params: HostParams,
  rows: number[][],
  dtype: ModelDtype,
  padId?: number,
): Promise<Float64Array> {
  const g = new Graph('forward');
  const p = gptParamInputs(g, config, dtype);
  const ids = g.input('ids', 'int64', ['batch', 'seq']);
  const mask = padId === undefined ? undefined : g.input('mask', 'int64', ['batch', 'seq']);
  g.output(gptForward(p, config, ids, { attentionMask: mask }).logits, 'logits');
  const session = await runtime.createSession(g.toBytes());
  const batch = leftPad(rows, padId ?? 0);
  const out = await session.run({
    ...paramFeeds(config, params, dtype),
    ids: batch.ids,
    ...(mask ? { mask: batch.mask } : {}),
  });
  await session.release();
  return Float64Array.from(out.logits.data as Float32Array | Float64Array);
}

/** Max |ours - reference| over rows of the reference ([b][t] -> V logits), ours [B, T, V] left-padded to T. */
function maxDiff(ours: Float64Array, ref: Float64Array[][], T: number, V: number): number {
  let m = 0;
  ref.forEach((row, b) => {
    const offset = T - row.length;
    row.forEach((logits, t) => {
      for (let v = 0; v < V; v++) m = Math.max(m, Math.abs(ours[(b * T + offset + t) * V + v] - logits[v]));
    });
  });
  return m;
}

const argmax = (xs: ArrayLike<number>) =>
  Array.from(xs).reduce((best, x, i, all) => (x > all[best] ? i : best), 0);

const ROWS = [
  [1, 5, 2, 7, 3, 9, 4, 8, 0, 6, 11],
  [6, 0, 11, 13, 12, 1, 1, 2, 15, 3, 4],
];

describe('Llama-family forward vs the float64 reference', () => {
  for (const [label, json] of variants) {
    it(`${label}: HF checkpoint loads; logits match in float64 and float32, also left-padded`, async () => {
      const { config, params, weights } = load(json, 7);
      const V = config.vocabSize;
      const ref = referenceLlamaForward(json, weights, ROWS);
      const T = ROWS[0].length;
      const f64 = maxDiff(await forward(config, params, ROWS, 'float64'), ref, T, V);
      const f32 = maxDiff(await forward(config, params, ROWS, 'float32'), ref, T, V);
      // Row 1 shorter: left padding must not change its logits (positions count real tokens only).
      const short = [ROWS[0], ROWS[1].slice(4)];
      const refShort = referenceLlamaForward(json, weights, [short[1]]);
      const padded = await forward(config, params, short, 'float64', 0);
      const pad = maxDiff(padded.subarray(T * V), refShort, T, V);
      console.log(
        `${label}: max |logit error| float64 ${f64.toExponential(2)}, float32 ${f32.toExponential(2)}, left-padded float64 ${pad.toExponential(2)}`,
      );
      expect(f64).toBeLessThanOrEqual(1e-9);
      expect(f32).toBeLessThanOrEqual(1e-4);
      expect(pad).toBeLessThanOrEqual(1e-9);
    });
  }

  it('dynamic NTK rope past max_position_embeddings matches the reference', async () => {
    const { config, params, weights } = load(llamaDynamic, 3);
    expect(config.maxPositions).toBe(16); // max_position_embeddings 8 · factor 2
    const rows = [
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
      [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7],
    ];
    const ref = referenceLlamaForward(llamaDynamic, weights, rows);
    const err = maxDiff(await forward(config, params, rows, 'float64'), ref, 14, config.vocabSize);
    const within = rows.map((r) => r.slice(0, 6)); // T ≤ 8: plain RoPE
    const errWithin = maxDiff(
      await forward(config, params, within, 'float64'),
      referenceLlamaForward(llamaDynamic, weights, within),
      6,
      config.vocabSize,
    );
    console.log(
      `dynamic rope: float64 max error T=14 ${err.toExponential(2)}, T=6 ${errWithin.toExponential(2)}`,
    );
    expect(err).toBeLessThanOrEqual(1e-9);
    expect(errWithin).toBeLessThanOrEqual(1e-9);
  });

  it('loads an F16 HF directory with tokenizer.json (weights converted to f32)', async () => {
    const json = { ...qwen3QkNorm, vocab_size: 262 };
    const weights = hfLlamaWeights(json, 5);
    const dir = await mkdtemp(join(tmpdir(), 'llama-hf-'));
    try {
      const files = hfFiles(json, weights, 'F16');
      await writeFile(join(dir, 'config.json'), files['config.json']);
      await writeFile(join(dir, 'model.safetensors'), files['model.safetensors']);
      await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tinyGpt2TokenizerJson()));
      const loaded = await loadHfModel(dir);
      expect(loaded.config).toMatchObject({
        architecture: 'llama',
        modelType: 'qwen3',
        headDim: 12,
        qkNorm: true,
      });
      const rounded = new Map([...weights.keys()].map((k) => [k, loaded.params.get(k)!]));
      for (const [k, w] of weights) {
        const r = rounded.get(k)!;
        for (let i = 0; i < w.length; i++)
          expect(Math.abs(r[i] - w[i])).toBeLessThanOrEqual(2e-3 * Math.abs(w[i]) + 1e-7);
      }
      const tokens = loaded.tokenizer.encode('hello world');
      const ref = referenceLlamaForward(json, rounded, [tokens]);
      const err = maxDiff(
        await forward(loaded.config, loaded.params, [tokens], 'float32'),
        ref,
        tokens.length,
        262,
      );
      expect(err).toBeLessThanOrEqual(1e-4);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Llama-family generation, scoring, training and export', () => {
  const PAD = 0;
  const prompts = [[5, 1, 7, 3], [9], [4, 4, 12]];

  for (const [label, json] of [
    ['llama GQA', llamaGqaLlama3],
    ['qwen3', qwen3QkNorm],
    ['mistral sliding window', mistralWindow],
  ] as const) {
    it(`${label}: KV-cache generation = full forward; greedy ids = step-by-step argmax`, async () => {
      const { config, params, weights } = load(json, 11);
      const N = 8;
      // Sampling in float64: every log-prob against the reference's full forward over prompt + tokens so far.
      const gen64 = await createGenerator(runtime, config, { dtype: 'float64' });
      const sampled = await gen64.generate({
        params,
        prompts,
        maxNewTokens: N,
        temperature: 1,
        seed: 3,
        eosId: -1,
        padId: PAD,
      });
      await gen64.release();
      let lpErr = 0;
      sampled.tokens.forEach((tokens, b) => {
        const full = [...prompts[b], ...tokens];
        const ref = referenceLlamaForward(json, weights, [full])[0];
        tokens.forEach((tok, i) => {
          const logp = logSoftmaxRow(ref[prompts[b].length - 1 + i]);
          lpErr = Math.max(lpErr, Math.abs(sampled.logprobs[b][i] - logp[tok]));
        });
      });
      // Greedy in float32: each id is the argmax of the reference logits after the tokens before it.
      const gen32 = await createGenerator(runtime, config);
      const greedy = await gen32.generate({
        params,
        prompts,
        maxNewTokens: N,
        temperature: 0,
        eosId: -1,
        padId: PAD,
      });
      await gen32.release();
      greedy.tokens.forEach((tokens, b) => {
        const ref = referenceLlamaForward(json, weights, [[...prompts[b], ...tokens]])[0];
        const expected = tokens.map((_, i) => argmax(ref[prompts[b].length - 1 + i]));
        expect(tokens).toEqual(expected);
      });
      console.log(
        `${label} generation: float64 KV-cache log-prob max error ${lpErr.toExponential(2)}; greedy ids exact`,
      );
      expect(lpErr).toBeLessThanOrEqual(1e-5);
    });
  }

  it('chunked decoding with the KV cache gives the full forward logits (float32)', async () => {
    const { config, params } = load(mistral, 2);
    const g = new Graph('kv');
    const p = gptParamInputs(g, config, 'float32');
    const ids = g.input('ids', 'int64', ['batch', 'seq']);
    const mask = g.input('mask', 'int64', ['batch', 'seq']);
    const cols = (t: Tensor, from: number, to: number) => slice(t, [from], [to], [1]);
    const full = gptForward(p, config, ids, { attentionMask: mask });
    const prefill = gptForward(p, config, cols(ids, 0, 5), { attentionMask: cols(mask, 0, 5) });
    const rest = gptForward(p, config, cols(ids, 5, 8), { attentionMask: mask, pastKv: prefill.presentKv });
    g.output(full.logits, 'full');
    g.output(prefill.logits, 'prefill');
    g.output(rest.logits, 'rest');
    g.output(rest.presentKv[0].key, 'key');
    const session = await runtime.createSession(g.toBytes());
    const batch = leftPad(
      [
        [1, 5, 2, 7, 3, 9, 4, 8],
        [6, 0, 11, 13, 12],
      ],
      PAD,
    );
    const out = await session.run({ ...paramFeeds(config, params), ids: batch.ids, mask: batch.mask });
    await session.release();
    expect(out.key.dims).toEqual([2, 2, 8, 8]); // [B, numKvHeads, S, headDim]
    const V = config.vocabSize;
    const fullData = out.full.data as Float32Array;
    let m = 0;
    for (const [t, from, width] of [
      [out.prefill, 0, 5],
      [out.rest, 5, 3],
    ] as const) {
      const data = t.data as Float32Array;
      for (let b = 0; b < 2; b++)
        for (let i = 0; i < width * V; i++)
          m = Math.max(m, Math.abs(data[b * width * V + i] - fullData[(b * 8 + from) * V + i]));
    }
    console.log(`chunked KV decoding vs full forward (float32): ${m.toExponential(2)}`);
    expect(m).toBeLessThanOrEqual(1e-5);
  });

  it('scores log-probs and a scalar head (Qwen2ForSequenceClassification) against the reference', async () => {
    const json: HfConfig = {
      ...qwen2Biases,
      architectures: ['Qwen2ForSequenceClassification'],
      num_labels: 1,
    };
    const weights = hfLlamaWeights(json, 13);
    expect(weights.has('lm_head.weight')).toBe(false); // HF's classifier has no LM head
    const d = json.hidden_size as number;
    const embed = weights.get('model.embed_tokens.weight')!;
    // score.weight = embedding row 4; the loader gives the classifier the embedding as its LM head, so the
    // reference's logit of token 4 at the last real token is the score.
    weights.set('score.weight', embed.slice(4 * d, 5 * d));
    const { config, params } = checkpointFromFiles(hfFiles(json, weights), 'test');
    expect(config.scalarHead).toBe(true);
    expect(params.get('score.bias')).toEqual(new Float32Array(1)); // HF has none: zero
    expect(params.get('lm_head.weight')).toEqual(embed);
    const refWeights = new Map([...weights, ['lm_head.weight', embed]]);
    const responses = [
      [2, 8, 1, 0],
      [3, 3, 0, 0],
      [7, 6, 5, 4],
    ];
    const responseMask = [
      [1, 1, 1, 0],
      [1, 1, 0, 0],
      [1, 1, 1, 1],
    ];
    const scorer = await createScorer(runtime, config, { dtype: 'float64' });
    const out = await scorer.score({ params, prompts, padId: PAD, responses, responseMask });
    await scorer.release();
    let lpErr = 0;
    let scoreErr = 0;
    prompts.forEach((prompt, b) => {
      const n = responseMask[b].reduce((a, x) => a + x, 0);
      const seq = [...prompt, ...responses[b].slice(0, n)];
      const ref = referenceLlamaForward(json, refWeights, [seq])[0];
      for (let i = 0; i < n; i++) {
        const logp = logSoftmaxRow(ref[prompt.length - 1 + i]);
        lpErr = Math.max(lpErr, Math.abs(out.logprobs![b][i] - logp[responses[b][i]]));
      }
      scoreErr = Math.max(scoreErr, Math.abs(out.scores![b] - ref[seq.length - 1][4]));
    });
    console.log(
      `scoring (float64): log-prob max error ${lpErr.toExponential(2)}, score ${scoreErr.toExponential(2)}`,
    );
    expect(lpErr).toBeLessThanOrEqual(1e-9);
    expect(scoreErr).toBeLessThanOrEqual(1e-9);
  });

  it('one fused SFT-like train step (3 AdamW steps) runs and lowers the loss', async () => {
    const config = presetConfig('tiny-llama', { nLayer: 1, vocabSize: 32, maxPositions: 16 });
    const { params } = load(gptConfigToHf(config), 1);
    const [B, T, K] = [2, 6, 3];
    const step = buildTrainStep({
      params: paramShapes(config),
      batch: [
        { name: 'ids', dtype: 'int64', shape: [B, T] },
        { name: 'targets', dtype: 'int64', shape: [B, T] },
        { name: 'mask', dtype: 'float32', shape: [B, T] },
      ],
      loss: (p, batch) => ({
        loss: crossEntropy(gptForward(p, config, batch.ids).logits, batch.targets, batch.mask),
      }),
      steps: K,
    });
    const trainer = await createTrainer(runtime, step, { params });
    const seq = [
      [1, 2, 3, 4, 5, 6, 7],
      [9, 8, 7, 6, 5, 4, 3],
    ];
    const stack = <T>(rows: T[][]) => Array.from({ length: K }, () => rows.flat()).flat();
    const batch = {
      ids: int64([K, 1, B, T], stack(seq.map((r) => r.slice(0, T)))),
      targets: int64([K, 1, B, T], stack(seq.map((r) => r.slice(1)))),
      mask: hostTensor(
        'float32',
        [K, 1, B, T],
        stack([
          [0, 1, 1, 1, 1, 1],
          [1, 1, 1, 1, 1, 1],
        ]),
      ),
    };
    const first = await trainer.run(batch, 3e-3);
    const second = await trainer.run(batch, 3e-3);
    await trainer.release();
    const losses = [...first.loss, ...second.loss];
    console.log(`train step losses: ${losses.map((l) => l.toFixed(4)).join(' ')}`);
    expect(losses.every(Number.isFinite)).toBe(true);
    for (let i = 1; i < losses.length; i++) expect(losses[i]).toBeLessThan(losses[i - 1]);
    expect(trainer.state.params.has('lm_head.weight')).toBe(true);
  });

  it('passes a finite-difference gradient check of the cross-entropy loss (float64, GQA + q/k norm + biases)', async () => {
    const config: LlamaConfig = {
      architecture: 'llama',
      vocabSize: 7,
      maxPositions: 8,
      nEmbd: 4,
      nLayer: 1,
      nHead: 2,
      numKvHeads: 1,
      headDim: 4,
      intermediateSize: 6,
      rmsNormEps: 1e-6,
      ropeTheta: 100,
      ropeScaling: {
        type: 'llama3',
        factor: 4,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositions: 8,
      },
      tieWordEmbeddings: false,
      qkvBias: true,
      oBias: true,
      qkNorm: true,
      scalarHead: true,
    };
    const shapes = paramShapes(config);
    const [B, T] = [2, 5];
    const result = await checkGradients(
      (idsIn, maskIn, targetsIn, ...ws) => {
        const p = new Map(shapes.map(({ name }, i) => [name, ws[i]] as [string, Tensor]));
        const { logits, values } = gptForward(p, config, idsIn, { attentionMask: maskIn });
        const picked = gatherElements(logSoftmax(logits), unsqueeze(targetsIn, [2]), 2);
        return [neg(reduceMean(picked)), values!];
      },
      [
        { shape: [B, T], dtype: 'int64', data: [1, 3, 0, 6, 2, 0, 0, 4, 5, 1] },
        { shape: [B, T], dtype: 'int64', data: [1, 1, 1, 1, 1, 0, 0, 1, 1, 1] },
        { shape: [B, T], dtype: 'int64', data: [3, 0, 6, 2, 5, 0, 4, 5, 1, 2] },
        ...shapes.map(({ name, shape }) =>
          name.endsWith('norm.weight') ? { shape, low: 0.5, high: 1.5 } : { shape, low: -0.8, high: 0.8 },
        ),
      ],
      { runtime, maxElements: 12 },
    );
    console.log(
      `llama gradient check: ${result.checked} elements, max relative error ${result.maxRelError.toExponential(2)}`,
    );
    expect(result.checked).toBeGreaterThan(150);
    expect(result.maxRelError).toBeLessThanOrEqual(1e-6);
  });

  it('exportPolicyOnnx: a Llama policy runs in plain onnxruntime-node (prefill + cached decode)', async () => {
    const { config, params, weights } = load(llamaGqaLlama3, 4);
    const session = await ort.InferenceSession.create(exportPolicyOnnx(config, params));
    const seq = [4, 8, 15, 16, 3, 9];
    const ids = (rows: number[][]) =>
      new ort.Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [rows.length, rows[0].length]);
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 8]);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: ids([seq.slice(0, 4)]),
      attention_mask: ids([[1, 1, 1, 1]]),
    };
    for (let i = 0; i < config.nLayer; i++) {
      feeds[`past_key_values.${i}.key`] = empty;
      feeds[`past_key_values.${i}.value`] = empty;
    }
    const prefill = await session.run(feeds);
    const decodeFeeds: Record<string, ort.Tensor> = {
      input_ids: ids([seq.slice(4)]),
      attention_mask: ids([[1, 1, 1, 1, 1, 1]]),
    };
    for (let i = 0; i < config.nLayer; i++) {
      decodeFeeds[`past_key_values.${i}.key`] = prefill[`present.${i}.key`];
      decodeFeeds[`past_key_values.${i}.value`] = prefill[`present.${i}.value`];
    }
    const decode = await session.run(decodeFeeds);
    const ref = referenceLlamaForward(llamaGqaLlama3, weights, [seq])[0];
    const V = config.vocabSize;
    const ours = [...(prefill.logits.data as Float32Array), ...(decode.logits.data as Float32Array)];
    let m = 0;
    ref.forEach((row, t) => {
      for (let v = 0; v < V; v++) m = Math.max(m, Math.abs(ours[t * V + v] - row[v]));
    });
    console.log(`exported Llama policy vs reference: ${m.toExponential(2)}`);
    expect(m).toBeLessThanOrEqual(1e-4);
  });
});

describe('Llama-family HF config and checkpoints', () => {
  it('config.json round-trips through gptConfigFromHf / gptConfigToHf for every variant', () => {
    for (const [, json] of [...variants, ['dynamic', llamaDynamic] as const]) {
      const config = gptConfigFromHf(json);
      const again = gptConfigFromHf(gptConfigToHf(config));
      expect(again).toEqual(config);
    }
    expect(gptConfigFromHf(qwen3QkNorm)).toEqual({
      architecture: 'llama',
      modelType: 'qwen3',
      vocabSize: 31,
      maxPositions: 40,
      nEmbd: 32,
      nLayer: 2,
      nHead: 4,
      numKvHeads: 2,
      headDim: 12,
      intermediateSize: 48,
      rmsNormEps: 1e-6,
      ropeTheta: 1000000,
      tieWordEmbeddings: true,
      qkvBias: false,
      oBias: false,
      qkNorm: true,
    });
    expect(gptConfigFromHf(qwen2Biases)).toMatchObject({ qkvBias: true, oBias: false, qkNorm: false });
    expect(
      gptConfigFromHf({ ...llamaGqaLlama3, architectures: ['LlamaForSequenceClassification'] }).scalarHead,
    ).toBe(true);
  });

  it('reads the published config.json of Llama-3.2-1B, Qwen3-0.6B and SmolLM2-135M; counts their parameters', () => {
    const llama32 = {
      architectures: ['LlamaForCausalLM'],
      attention_bias: false,
      head_dim: 64,
      hidden_act: 'silu',
      hidden_size: 2048,
      intermediate_size: 8192,
      max_position_embeddings: 131072,
      mlp_bias: false,
      model_type: 'llama',
      num_attention_heads: 32,
      num_hidden_layers: 16,
      num_key_value_heads: 8,
      pretraining_tp: 1,
      rms_norm_eps: 1e-5,
      rope_scaling: {
        factor: 32.0,
        high_freq_factor: 4.0,
        low_freq_factor: 1.0,
        original_max_position_embeddings: 8192,
        rope_type: 'llama3',
      },
      rope_theta: 500000.0,
      tie_word_embeddings: true,
      torch_dtype: 'bfloat16',
      vocab_size: 128256,
    };
    const qwen3 = {
      architectures: ['Qwen3ForCausalLM'],
      attention_bias: false,
      head_dim: 128,
      hidden_act: 'silu',
      hidden_size: 1024,
      intermediate_size: 3072,
      max_position_embeddings: 40960,
      max_window_layers: 28,
      model_type: 'qwen3',
      num_attention_heads: 16,
      num_hidden_layers: 28,
      num_key_value_heads: 8,
      rms_norm_eps: 1e-6,
      rope_scaling: null,
      rope_theta: 1000000,
      sliding_window: null,
      tie_word_embeddings: true,
      use_sliding_window: false,
      vocab_size: 151936,
    };
    const smol = {
      architectures: ['LlamaForCausalLM'],
      hidden_size: 576,
      intermediate_size: 1536,
      max_position_embeddings: 8192,
      model_type: 'llama',
      num_attention_heads: 9,
      num_hidden_layers: 30,
      num_key_value_heads: 3,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      tie_word_embeddings: true,
      vocab_size: 49152,
    };
    expect(countParams(gptConfigFromHf(llama32))).toBe(1_235_814_400);
    expect(countParams(gptConfigFromHf(qwen3))).toBe(596_049_920); // 0.44 B without the embedding
    expect(countParams(gptConfigFromHf(smol))).toBe(134_515_008);
    expect(gptConfigFromHf(llama32)).toMatchObject({
      maxPositions: 131072,
      ropeScaling: {
        type: 'llama3',
        factor: 32,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositions: 8192,
      },
    });
  });

  it('rejects what it does not compute with one line naming the field and value', () => {
    const cases: [HfConfig, RegExp][] = [
      [
        { ...mistral, model_type: 'gemma' },
        /model_type "gemma" is not supported \(gpt2, llama, mistral, qwen2, qwen3\)/,
      ],
      [{ ...llamaGqaLlama3, hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
      [
        { ...llamaGqaLlama3, rope_scaling: { rope_type: 'yarn', factor: 4 } },
        /rope_scaling.rope_type "yarn" is not supported/,
      ],
      [{ ...mistral, sliding_window: 0 }, /sliding_window 0 must be a positive integer or null/],
      [{ ...qwen2Biases, use_sliding_window: true, sliding_window: 8 }, /sliding_window 8 is not supported/],
      [
        { ...llamaGqaLlama3, architectures: ['Qwen2ForCausalLM'] },
        /architectures "Qwen2ForCausalLM" is not supported for model_type llama/,
      ],
      [{ ...llamaGqaLlama3, num_key_value_heads: 3 }, /nHead \(4\) must be divisible by numKvHeads \(3\)/],
      [{ ...llamaGqaLlama3, mlp_bias: true }, /mlp_bias true is not supported/],
      [
        { ...llamaGqaLlama3, architectures: ['LlamaForSequenceClassification'], num_labels: 2 },
        /num_labels 2/,
      ],
    ];
    for (const [json, message] of cases) {
      expect(() => gptConfigFromHf(json, 'm/config.json')).toThrow(message);
      try {
        gptConfigFromHf(json, 'm/config.json');
      } catch (error) {
        expect((error as Error).message).toMatch(/^m\/config\.json: [^\n]+$/);
      }
    }
    // Sliding windows that cover the whole context are plain causal attention.
    expect(gptConfigFromHf({ ...mistral, sliding_window: 32 }).maxPositions).toBe(32);
  });

  it('checkpointFiles writes HF names and shapes as they are (rename-free) and reads them back', () => {
    for (const [, json] of variants) {
      const { config, params } = load(json, 9);
      const files = checkpointFiles(config, params, { step: '3' });
      const back = checkpointFromFiles(files);
      expect(back.config).toEqual(config);
      expect(back.params).toEqual(params);
      expect(back.metadata).toMatchObject({ step: '3', format: 'pt' });
      const written = readSafetensors(files['model.safetensors']).tensors;
      expect([...written.keys()].sort()).toEqual(
        hfLlamaShapes(json)
          .map(([n]) => n)
          .sort(),
      );
      for (const [n, shape] of hfLlamaShapes(json)) expect(written.get(n)!.shape).toEqual(shape);
      expect(JSON.parse(new TextDecoder().decode(files['config.json']))).toMatchObject({
        model_type: json.model_type,
        architectures: json.architectures,
      });
    }
  });

  it('a tied lm_head in the file must equal the embedding; an untied one must be there', () => {
    const weights = hfLlamaWeights(qwen3QkNorm, 1);
    const embed = weights.get('model.embed_tokens.weight')!;
    const withHead = (head: Float32Array) => {
      const files = hfFiles(
        { ...qwen3QkNorm, tie_word_embeddings: false },
        new Map([...weights, ['lm_head.weight', head]]),
      );
      return { ...files, 'config.json': new TextEncoder().encode(JSON.stringify(qwen3QkNorm)) };
    };
    expect(checkpointFromFiles(withHead(Float32Array.from(embed))).params.has('lm_head.weight')).toBe(false);
    const other = Float32Array.from(embed);
    other[0] += 1;
    expect(() => checkpointFromFiles(withHead(other))).toThrow(
      /lm_head.weight differs from model.embed_tokens.weight/,
    );
    const untied = hfLlamaWeights(llamaGqaLlama3, 1);
    untied.delete('lm_head.weight');
    expect(() => checkpointFromFiles(hfFiles(llamaGqaLlama3, untied))).toThrow(
      /missing tensor "lm_head.weight"/,
    );
  });
});
