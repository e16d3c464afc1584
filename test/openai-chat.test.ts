// Chat and text completions driven by the official `openai` client (pinned) against the real API and a real
// inference consumer (the worker pool's, in this process) on tiny uploaded Llamas and a model fine-tuned through
// the fine-tuning API: usage, streaming (first chunk before the last token), n, stop, seed, logprobs, model
// access, bad parameters, the team's concurrency limit, batching of 50 concurrent requests, client disconnects.
import { ByteTokenizer, hfModelFiles, initParams, presetConfig } from '@rlhf/model';
import { inferenceKeys } from '@rlhf/queue';
import type { RunningInferenceWorker } from '@rlhf/worker';
import { Redis } from 'ioredis';
import type OpenAI from 'openai';
import { BadRequestError, NotFoundError, RateLimitError, toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestTeam, registerModel, type TestApi, type TestTeam } from './api-helpers.js';
import { openAiClient, type Serving, startServing } from './serving-helpers.js';

const ASK = [{ role: 'user' as const, content: 'sort: 3 1 2' }];
const PROMPT_TOKENS = 1 + Buffer.byteLength('<|user|>\nsort: 3 1 2\n<|assistant|>\n'); // bos + the template's bytes

/** tiny-llama with a longer context: long enough generations to watch streaming and disconnects. */
function longLlamaFiles(): Record<string, Uint8Array> {
  const config = { ...presetConfig('tiny-llama'), maxPositions: 512 };
  const { 'README.md': _readme, ...files } = hfModelFiles(
    { config, params: initParams(config, 11) },
    { tokenizer: new ByteTokenizer() },
  );
  return files;
}

const idOf = (completionId: string) => completionId.replace(/^(chatcmpl|cmpl)-/, '');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('chat and text completions with the official client', () => {
  let serving: Serving;
  let api: TestApi;
  let inference: RunningInferenceWorker;
  let team: TestTeam;
  let client: OpenAI;
  let other: OpenAI;
  let redis: Redis;
  beforeAll(async () => {
    // Three models in use below with two kept: the LRU evicts and reloads.
    serving = await startServing('chat', { chunkTokens: 4, maxBatch: 32, models: 2 });
    ({ api, inference, team, client } = serving);
    await registerModel(api.app, team.headers, 'tiny-llama');
    await registerModel(api.app, team.headers, 'long-llama', longLlamaFiles());
    const otherTeam = await createTestTeam(api.app);
    await registerModel(api.app, otherTeam.headers, 'their-llama');
    other = await openAiClient(api.app, otherTeam.key);
    redis = new Redis(api.options.redisUrl);
  });
  afterAll(async () => {
    redis?.disconnect();
    await serving?.close();
  });

  test('a chat completion in OpenAI shape with usage', async () => {
    const completion = await client.chat.completions.create({
      model: 'tiny-llama',
      messages: ASK,
      max_completion_tokens: 8,
      seed: 1,
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('tiny-llama');
    expect(completion.choices).toHaveLength(1);
    const [choice] = completion.choices;
    expect(choice.message.role).toBe('assistant');
    expect(typeof choice.message.content).toBe('string');
    expect(['stop', 'length']).toContain(choice.finish_reason);
    expect(completion.usage?.prompt_tokens).toBe(PROMPT_TOKENS);
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect(completion.usage?.completion_tokens).toBeLessThanOrEqual(8);
    expect(completion.usage?.total_tokens).toBe(PROMPT_TOKENS + (completion.usage?.completion_tokens ?? 0));
    expect(inference.loadedModels()).toHaveLength(1);
  });

  test('streamed: chunks as they are generated, the first before the last token; usage chunk; same text as unstreamed', async () => {
    const request = { model: 'long-llama', messages: ASK, max_tokens: 120, seed: 5, temperature: 0.8 };
    const stream = await client.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    });
    let firstContentAt = 0;
    let text = '';
    const chunks = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      const delta = chunk.choices[0]?.delta.content ?? '';
      if (delta !== '' && firstContentAt === 0) firstContentAt = Date.now();
      text += delta;
    }
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const log = inference.request(idOf(chunks[0].id));
    expect(log?.outcome).toBe('done');
    expect(log?.chunks).toBeGreaterThan(3);
    expect(firstContentAt).toBeGreaterThan(0);
    expect(firstContentAt).toBeLessThan(log?.lastTokenAt ?? 0); // the client had text before generation ended
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(['stop', 'length']).toContain(finish?.choices[0].finish_reason);
    const usage = chunks.at(-1);
    expect(usage?.choices).toEqual([]);
    expect(usage?.usage?.prompt_tokens).toBe(PROMPT_TOKENS);

    const plain = await client.chat.completions.create(request);
    expect(plain.choices[0].message.content).toBe(text);
    expect(plain.usage?.completion_tokens).toBe(usage?.usage?.completion_tokens);
  });

  test('n = 3 choices, each with its index', async () => {
    const completion = await client.chat.completions.create({
      model: 'tiny-llama',
      messages: ASK,
      n: 3,
      max_tokens: 6,
      temperature: 1,
      seed: 2,
    });
    expect(completion.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(completion.usage?.prompt_tokens).toBe(PROMPT_TOKENS);
    const tokens = completion.usage?.completion_tokens ?? 0;
    expect(tokens).toBeGreaterThanOrEqual(3);
    expect(tokens).toBeLessThanOrEqual(18);
  });

  test('seed: the same seed gives the same text, another seed another', async () => {
    const ask = (seed: number) =>
      client.chat.completions
        .create({ model: 'long-llama', messages: ASK, max_tokens: 24, temperature: 1, seed })
        .then((c) => c.choices[0].message.content);
    const first = await ask(42);
    expect(first?.length).toBeGreaterThan(0);
    expect(await ask(42)).toBe(first);
    expect(await ask(43)).not.toBe(first);
  });

  test('stop: the text ends before the first stop sequence, finish_reason stop', async () => {
    const request = { model: 'long-llama', messages: ASK, max_tokens: 40, temperature: 1, seed: 9 };
    const full = (await client.chat.completions.create(request)).choices[0].message.content ?? '';
    const at = [...full].findIndex((c, i) => i > 2 && c !== '\uFFFD');
    expect(at).toBeGreaterThan(0);
    const stop = [...full][at];
    const stopped = await client.chat.completions.create({ ...request, stop: [stop, '\u0000never'] });
    expect(stopped.choices[0].message.content).toBe(full.slice(0, full.indexOf(stop)));
    expect(stopped.choices[0].finish_reason).toBe('stop');
    const streamed = await client.chat.completions.create({ ...request, stop, stream: true });
    let text = '';
    for await (const chunk of streamed) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(full.slice(0, full.indexOf(stop)));
  });

  test("logprobs: each sampled token's log-prob and bytes, and the alternatives asked for", async () => {
    const completion = await client.chat.completions.create({
      model: 'tiny-llama',
      messages: ASK,
      max_tokens: 10,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    });
    const content = completion.choices[0].logprobs?.content ?? [];
    expect(content).toHaveLength(completion.usage?.completion_tokens ?? -1);
    for (const token of content) {
      expect(token.logprob).toBeLessThanOrEqual(0);
      expect(Number.isFinite(token.logprob)).toBe(true);
      expect(token.bytes?.length).toBeGreaterThan(0);
      expect(token.top_logprobs).toHaveLength(2); // values: openai-top-logprobs.test.ts
    }
    const plain = await client.chat.completions.create({ model: 'tiny-llama', messages: ASK, max_tokens: 4 });
    expect(plain.choices[0].logprobs).toBeNull();
  });

  test('completions: text_completion for each prompt × n, streamed too', async () => {
    const completion = await client.completions.create({
      model: 'tiny-llama',
      prompt: ['sort: 3 1 2', 'sort: 9 7'],
      n: 2,
      max_tokens: 5,
      logprobs: 1,
      seed: 3,
    });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(completion.usage?.prompt_tokens).toBe(2 + 'sort: 3 1 2'.length + 'sort: 9 7'.length);
    const first = completion.choices[0];
    expect(first.logprobs?.token_logprobs?.length).toBe(first.logprobs?.tokens?.length);
    const stream = await client.completions.create({
      model: 'tiny-llama',
      prompt: 'sort: 3 1 2',
      max_tokens: 5,
      seed: 3,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) {
      expect(chunk.object).toBe('text_completion');
      text += chunk.choices[0]?.text ?? '';
    }
    const single = await client.completions.create({
      model: 'tiny-llama',
      prompt: 'sort: 3 1 2',
      max_tokens: 5,
      seed: 3,
    });
    expect(text).toBe(single.choices[0].text);
  });

  test('bad parameters are BadRequestErrors naming the param; an unknown or foreign model is NotFoundError', async () => {
    const failure = (body: Record<string, unknown>) =>
      client.chat.completions
        .create({ model: 'tiny-llama', messages: ASK, ...body } as never)
        .catch((error: unknown) => error);
    for (const [body, param] of [
      [{ temperature: -0.5 }, 'temperature'],
      [{ max_tokens: 1000 }, 'max_tokens'],
      [{ max_completion_tokens: 64 }, 'max_completion_tokens'],
      [{ top_p: 0 }, 'top_p'],
      [{ n: 0 }, 'n'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ messages: [] }, 'messages'],
      [{ messages: [{ role: 'user', content: 'x'.repeat(60) }], max_tokens: 20 }, 'messages'],
    ] as const) {
      const error = await failure(body);
      expect(error, JSON.stringify(body)).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).param, JSON.stringify(body)).toBe(param);
    }
    const missing = await failure({ model: 'no-such-model' });
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).code).toBe('model_not_found');
    await expect(failure({ model: 'their-llama' })).resolves.toBeInstanceOf(NotFoundError);
  });

  test('a fine-tuned model answers its team; another team gets NotFoundError; both listed in /v1/models', async () => {
    const rows = ['3 1 2', '9 7', '5 4 6', '8 2'].map((digits) => ({
      messages: [
        { role: 'user', content: `sort: ${digits}` },
        { role: 'assistant', content: digits.split(' ').sort().join(' ') },
      ],
    }));
    const file = await client.files.create({
      file: await toFile(Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n')), 'sft.jsonl'),
      purpose: 'fine-tune',
    });
    let job = await client.fineTuning.jobs.create({
      model: 'tiny-llama',
      training_file: file.id,
      suffix: 'chat',
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 1, batch_size: 2 } } },
    });
    for (let i = 0; i < 600 && !['succeeded', 'failed', 'cancelled'].includes(job.status); i++) {
      await sleep(200);
      job = await client.fineTuning.jobs.retrieve(job.id);
    }
    expect(job.status).toBe('succeeded');
    const model = job.fine_tuned_model as string;
    const answer = await client.chat.completions.create({ model, messages: ASK, max_tokens: 6 });
    expect(answer.model).toBe(model);
    expect(answer.usage?.prompt_tokens).toBe(PROMPT_TOKENS);
    const streamed = await client.chat.completions.create({
      model,
      messages: ASK,
      max_tokens: 6,
      stream: true,
    });
    const deltas = [];
    for await (const chunk of streamed) deltas.push(chunk.choices[0]?.delta.content ?? '');
    expect(deltas.length).toBeGreaterThan(1);
    const error = await other.chat.completions
      .create({ model, messages: ASK, max_tokens: 6 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).code).toBe('model_not_found');

    // Three models at once with room for two loaded: each request still answered (evicted ones load again).
    const three = await Promise.all(
      ['tiny-llama', 'long-llama', model].map((name) =>
        client.chat.completions.create({ model: name, messages: ASK, max_tokens: 12 }),
      ),
    );
    expect(three.map((c) => c.model)).toEqual(['tiny-llama', 'long-llama', model]);
    expect(inference.loadedModels().length).toBeLessThanOrEqual(2);

    const listed = [];
    for await (const m of client.models.list()) listed.push(m.id);
    expect(listed).toContain(model);
    expect(await client.models.retrieve(model)).toMatchObject({ id: model, object: 'model' });
    await expect(other.models.retrieve(model)).rejects.toBeInstanceOf(NotFoundError);
    const theirs = [];
    for await (const m of other.models.list()) theirs.push(m.id);
    expect(theirs).not.toContain(model);
  });

  test('50 concurrent chat requests are all answered, batched into fewer generation calls', async () => {
    const before = inference.stats();
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        client.chat.completions.create({
          model: 'tiny-llama',
          messages: [{ role: 'user', content: `sort: ${i % 10} ${(i * 7) % 10}` }],
          max_tokens: 8,
          temperature: 0.7,
          seed: i,
        }),
      ),
    );
    expect(answers).toHaveLength(50);
    for (const answer of answers) expect(answer.usage?.completion_tokens).toBeGreaterThan(0);
    const after = inference.stats();
    expect(after.requests - before.requests).toBe(50);
    expect(after.generationCalls - before.generationCalls).toBeLessThan(50);
    expect(after.largestBatch).toBeGreaterThan(1);
  });

  test("beyond the team's concurrent requests: RateLimitError", async () => {
    const key = inferenceKeys(api.prefix).active(team.team.id);
    await redis.set(key, 64); // as if 64 of the team's requests were running on any API process
    try {
      const error = await client.chat.completions
        .create({ model: 'tiny-llama', messages: ASK, max_tokens: 2 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RateLimitError);
      expect((error as RateLimitError).type).toBe('rate_limit_error');
    } finally {
      await redis.decrby(key, 64);
    }
    const ok = await client.chat.completions.create({ model: 'tiny-llama', messages: ASK, max_tokens: 2 });
    expect(ok.choices).toHaveLength(1);
  });

  test('a client that disconnects stops its generation', async () => {
    const stream = await client.chat.completions.create({
      model: 'long-llama',
      messages: ASK,
      max_tokens: 460,
      temperature: 1,
      seed: 1,
      stream: true,
    });
    let id = '';
    for await (const chunk of stream) {
      id = idOf(chunk.id);
      if (chunk.choices[0]?.delta.content) break; // leaving the loop aborts the HTTP request
    }
    let log = inference.request(id);
    for (let i = 0; i < 100 && log?.outcome === 'running'; i++) {
      await sleep(20);
      log = inference.request(id);
    }
    expect(log?.outcome).toBe('cancelled');
    const chunks = log?.chunks ?? 0;
    await sleep(300);
    expect(inference.request(id)?.chunks).toBe(chunks); // nothing generated for it since
    expect(log?.tokens).toBeLessThan(460);
  });
});
