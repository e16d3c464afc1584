// top_logprobs over the official client, against an independent reference: a full forward of the same weights
// (no KV cache, no Loop, no sampler) in float64, its log-softmax over each position, greedy decoding followed
// step by step. Chat (`top_logprobs: k`) and text completions (`logprobs: k`).
import { ByteTokenizer, createForward, hfModelFiles, initParams, presetConfig } from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { RunningInferenceWorker } from '@rlhf/worker';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { baseUrl, createTestTeam, registerModel, startApi, type TestApi } from './api-helpers.js';
import { startTestInferenceWorker } from './worker-helpers.js';

const config = presetConfig('tiny'); // GPT-2 layout, byte vocabulary
const params = initParams(config, 5);
// Larger weights than the init: peaked distributions, so the top tokens are well apart.
for (const [name, p] of params) if (!/ln_/.test(name)) for (let i = 0; i < p.length; i++) p[i] *= 4;
const tokenizer = new ByteTokenizer();
const CHAT_PROMPT = [tokenizer.bosId, ...tokenizer.encode('<|user|>\nsort: 3 1 2\n<|assistant|>\n')];
const TEXT_PROMPT = [tokenizer.bosId, ...tokenizer.encode('sort: 9 7')];
const STEPS = 6;
const K = 5;

describe('top_logprobs', () => {
  let api: TestApi;
  let inference: RunningInferenceWorker;
  let runtime: Runtime;
  let client: OpenAI;
  beforeAll(async () => {
    api = await startApi();
    inference = await startTestInferenceWorker(api, 'top-logprobs');
    const team = await createTestTeam(api.app);
    const { 'README.md': _readme, ...files } = hfModelFiles({ config, params }, { tokenizer });
    await registerModel(api.app, team.headers, 'sharp-gpt', files);
    client = new OpenAI({ baseURL: `${await baseUrl(api.app)}/v1`, apiKey: team.key, maxRetries: 0 });
    runtime = await createRuntime({ device: 'cpu' });
  });
  afterAll(async () => {
    await runtime?.close();
    await inference?.close();
    await api?.close();
  });

  /** Greedy continuation of `prompt` by the float64 reference: per step the top K (id, log-prob), best first. */
  async function reference(prompt: number[]) {
    const forward = await createForward(runtime, config, { dtype: 'float64' });
    const seq = [...prompt];
    const steps: { id: number; logprob: number }[][] = [];
    for (let n = 0; n < STEPS; n++) {
      const [row] = await forward.run(params, [seq]);
      const V = config.vocabSize;
      const last = Array.from(row.logprobs.subarray((seq.length - 1) * V, seq.length * V));
      const top = last
        .map((logprob, id) => ({ id, logprob }))
        .sort((a, b) => b.logprob - a.logprob)
        .slice(0, K);
      expect(top[0].logprob - top[1].logprob).toBeGreaterThan(1e-3); // no near-tie for greedy to break
      steps.push(top);
      seq.push(top[0].id);
    }
    await forward.release();
    return steps;
  }
  const textOf = (id: number) => tokenizer.decode([id], { skipSpecialTokens: true });

  test('chat: each token lists the k most likely tokens with their float64 log-probs', async () => {
    const expected = await reference(CHAT_PROMPT);
    const completion = await client.chat.completions.create({
      model: 'sharp-gpt',
      messages: [{ role: 'user', content: 'sort: 3 1 2' }],
      max_tokens: STEPS,
      temperature: 0,
      logprobs: true,
      top_logprobs: K,
    });
    expect(completion.usage?.prompt_tokens).toBe(CHAT_PROMPT.length); // the prompt the reference continues
    const content = completion.choices[0].logprobs?.content ?? [];
    const eos = expected.findIndex((top) => top[0].id === tokenizer.eosId);
    expect(content.length).toBe(eos === -1 ? STEPS : eos);
    for (const [n, token] of content.entries()) {
      expect(token.top_logprobs).toHaveLength(K);
      for (const [j, alt] of token.top_logprobs.entries()) {
        expect(Math.abs(alt.logprob - expected[n][j].logprob)).toBeLessThan(1e-4);
        expect(alt.token).toBe(textOf(expected[n][j].id));
        expect(alt.bytes).toEqual([...Buffer.from(textOf(expected[n][j].id), 'utf8')]);
      }
      // Greedy: the sampled token is the first alternative.
      expect(token.logprob).toBeCloseTo(token.top_logprobs[0].logprob, 6);
    }
  });

  test('text completions: logprobs = k gives top_logprobs as token → log-prob objects', async () => {
    const expected = await reference(TEXT_PROMPT);
    const completion = await client.completions.create({
      model: 'sharp-gpt',
      prompt: 'sort: 9 7',
      max_tokens: STEPS,
      temperature: 0,
      logprobs: 3,
    });
    const logprobs = completion.choices[0].logprobs;
    const tops = logprobs?.top_logprobs ?? [];
    expect(tops.length).toBe(logprobs?.tokens?.length);
    for (const [n, top] of tops.entries()) {
      // Alternatives whose text collides (bytes that are not UTF-8 all read U+FFFD) share one key.
      const want = new Map<string, number>();
      for (const e of expected[n].slice(0, 3)) if (!want.has(textOf(e.id))) want.set(textOf(e.id), e.logprob);
      expect(Object.keys(top).sort()).toEqual([...want.keys()].sort());
      for (const [text, logprob] of want) expect(Math.abs(top[text] - logprob)).toBeLessThan(1e-4);
    }
    const none = await client.completions.create({
      model: 'sharp-gpt',
      prompt: 'x',
      max_tokens: 2,
      logprobs: 0,
    });
    expect(none.choices[0].logprobs?.top_logprobs).toBeNull();
  });
});
