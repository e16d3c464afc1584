// Models and waits for the evaluation tests: untrained tiny models that answer differently (their own init
// seeds), a judge language model built to prefer whichever answer it is shown first, and polling an evaluation.
import { ByteTokenizer, hfModelFiles, initParams, presetConfig } from '@rlhf/model';
import type { TestApi } from './api-helpers.js';

/** A tiny random GPT-2 in HF layout (with the byte tokenizer and its chat template). */
export function untrainedModelFiles(seed: number): Record<string, Uint8Array> {
  const config = presetConfig('tiny');
  const { 'README.md': _readme, ...files } = hfModelFiles(
    { config, params: initParams(config, seed) },
    { tokenizer: new ByteTokenizer() },
  );
  return files;
}

/**
 * A judge that always prefers the answer shown first: ln_f's weight is 0, so the last hidden state is ln_f's
 * bias v whatever the input, and the tied embedding rows of "A" and "B" differ by margin·v/|v|², so every
 * position's logit of "A" exceeds that of "B" by exactly `margin`: P("A") / (P("A") + P("B")) = σ(margin).
 */
export function firstPreferringJudgeFiles(
  margin: number,
  options: { seed?: number; chatTemplate?: string } = {},
): Record<string, Uint8Array> {
  const seed = options.seed ?? 11;
  const config = presetConfig('tiny');
  const params = initParams(config, seed);
  const d = config.nEmbd;
  const v = Float32Array.from({ length: d }, (_, i) => ((i % 7) - 3) / 4);
  const norm2 = v.reduce((s, x) => s + x * x, 0);
  params.set('ln_f.weight', new Float32Array(d));
  params.set('ln_f.bias', v);
  const wte = params.get('wte.weight') as Float32Array;
  const [a, b] = ['A', 'B'].map((c) => c.charCodeAt(0)); // the byte tokenizer's ids
  for (let i = 0; i < d; i++) wte[a * d + i] = wte[b * d + i] + (margin * v[i]) / norm2;
  const { 'README.md': _readme, ...files } = hfModelFiles(
    { config, params },
    {
      tokenizer: new ByteTokenizer(),
      ...(options.chatTemplate ? { chatTemplate: options.chatTemplate } : {}),
    },
  );
  return files;
}

/** `files` without a chat template in tokenizer_config.json (a base model, not a chat model). */
export function withoutChatTemplate(files: Record<string, Uint8Array>): Record<string, Uint8Array> {
  const config = JSON.parse(new TextDecoder().decode(files['tokenizer_config.json']));
  delete config.chat_template;
  return { ...files, 'tokenizer_config.json': new TextEncoder().encode(JSON.stringify(config)) };
}

/** Polls GET /v1/evaluations/:id until it succeeded or failed. */
export async function finishedEvaluation(
  api: TestApi,
  headers: { authorization: string },
  id: string,
  timeoutMs = 240_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const view = (await api.app.inject({ method: 'GET', url: `/v1/evaluations/${id}`, headers })).json();
    if (view.status === 'succeeded' || view.status === 'failed') return view;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`evaluation ${id} did not finish in ${timeoutMs} ms`);
}
