// The inference consumer: takes chat/completion requests off the Redis stream (packages/queue inference.ts),
// batches the sequences of every request waiting for the same model and sampling settings, and generates them
// a chunk of tokens per session.run (the generation graph is one ONNX Loop, so streaming means short loops:
// each chunk feeds prompt + tokens so far again). Between chunks new requests join and cancelled ones leave
// (continuous batching); every chunk's final text is published to the asking API process at once.
import type { Logger } from '@rlhf/config';
import { createRng } from '@rlhf/model';
import {
  createRedis,
  DEFAULT_PREFIX,
  INFERENCE_GROUP,
  type InferenceReply,
  type InferenceRequest,
  inferenceKeys,
  publishInferenceReply,
} from '@rlhf/queue';
import { createRuntime, type Device } from '@rlhf/runtime';
import { createModelCache, generateChunk, type ServedModel, UniformStream } from './inference-models.js';
import { CompletionText, PromptError, promptIds } from './inference-text.js';

export interface InferenceWorkerOptions {
  redisUrl: string;
  artifactDir: string;
  device: string;
  workerId: string;
  logger: Logger;
  prefix?: string;
  /** Sequences (choices) generated together in one call (default 64). */
  maxBatch?: number;
  /** After the first request of an idle spell, wait this long for others to batch with it (default 20 ms). */
  batchWindowMs?: number;
  /** Tokens per generation call: the streaming granularity (default 8). */
  chunkTokens?: number;
  /** Models kept loaded (default 3). */
  models?: number;
}

/** What one request went through here, for tests and the bench (the last 1000 requests are kept). */
export interface InferenceRequestLog {
  chunks: number;
  tokens: number;
  /** Epoch ms of the last token generation call that produced tokens for it. */
  lastTokenAt: number;
  outcome: 'running' | 'done' | 'cancelled' | 'expired' | 'error';
}

export interface InferenceStats {
  requests: number;
  /** session.run calls: fewer than requests when requests were batched. */
  generationCalls: number;
  /** Largest number of sequences in one call. */
  largestBatch: number;
}

export interface RunningInferenceWorker {
  workerId: string;
  device: Device;
  stats(): InferenceStats;
  request(id: string): InferenceRequestLog | undefined;
  /** Base models loaded now, least recently used first (a LoRA model's base stands for it). */
  loadedModels(): string[];
  /** LoRA adapter models served on those bases (inference-adapters.ts). */
  loadedAdapters(): string[];
  close(): Promise<void>;
}

/** One choice being generated. */
interface Sequence {
  request: InferenceRequest;
  index: number;
  prompt: number[];
  text: CompletionText;
  uniforms: UniformStream;
}

/** The request wants alternatives listed: its batch needs the graph that reports them. */
const wantsTop = (s: Sequence) => s.request.logprobs && (s.request.topLogprobs ?? 0) > 0;

const BLOCK_MS = 1000;
/** Tokens per choice when the request names no limit. */
const DEFAULT_MAX_TOKENS = 256;

export async function startInferenceWorker(options: InferenceWorkerOptions): Promise<RunningInferenceWorker> {
  const { logger, workerId } = options;
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const maxBatch = options.maxBatch ?? 64;
  const batchWindowMs = options.batchWindowMs ?? 20;
  const chunkTokens = options.chunkTokens ?? 8;
  const k = inferenceKeys(prefix);
  const runtime = await createRuntime({
    device: options.device,
    logger: { warn: (message) => logger.warn(message) },
  });
  const models = createModelCache(runtime, options.artifactDir, options.models ?? 3);
  const reader = createRedis(options.redisUrl, { worker: true }); // blocking reads
  const redis = createRedis(options.redisUrl, { worker: true });
  const subscriber = createRedis(options.redisUrl, { worker: true });
  await redis.xgroup('CREATE', k.requests, INFERENCE_GROUP, '0', 'MKSTREAM').catch((error: Error) => {
    if (!error.message.includes('BUSYGROUP')) throw error;
  });

  const cancelled = new Set<string>();
  subscriber.on('message', (_channel: string, id: string) => {
    if (cancelled.size > 10_000) cancelled.clear();
    cancelled.add(id);
  });
  await subscriber.subscribe(k.cancel);

  const stats: InferenceStats = { requests: 0, generationCalls: 0, largestBatch: 0 };
  const logs = new Map<string, InferenceRequestLog>();
  const log = (id: string) => logs.get(id) as InferenceRequestLog;
  const reply = (request: InferenceRequest, message: InferenceReply) =>
    publishInferenceReply(redis, request.replyTo, message).catch((error: unknown) =>
      logger.warn({ err: error, request: request.id }, 'inference reply failed'),
    );
  const fail = (request: InferenceRequest, status: number, message: string, param: string | null) => {
    log(request.id).outcome = 'error';
    return reply(request, { id: request.id, type: 'error', status, message, param, code: 'invalid_request' });
  };

  let active: Sequence[] = [];
  let stopping = false;

  async function read(count: number, blockMs: number | null): Promise<InferenceRequest[]> {
    const args = ['GROUP', INFERENCE_GROUP, workerId, 'COUNT', count] as const;
    const result = (await (blockMs === null
      ? reader.xreadgroup(...args, 'STREAMS', k.requests, '>')
      : reader.xreadgroup(...args, 'BLOCK', blockMs, 'STREAMS', k.requests, '>'))) as
      | [string, [string, string[]][]][]
      | null;
    const entries = result?.[0]?.[1] ?? [];
    if (entries.length === 0) return [];
    const ids = entries.map(([id]) => id);
    await redis
      .multi()
      .xack(k.requests, INFERENCE_GROUP, ...ids)
      .xdel(k.requests, ...ids)
      .exec();
    return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('request') + 1]) as InferenceRequest);
  }

  async function admit(request: InferenceRequest): Promise<void> {
    stats.requests++;
    logs.set(request.id, { chunks: 0, tokens: 0, lastTokenAt: 0, outcome: 'running' });
    if (logs.size > 1000) logs.delete(logs.keys().next().value as string);
    if (request.deadline < Date.now()) {
      log(request.id).outcome = 'expired';
      return;
    }
    if (cancelled.has(request.id) || (await redis.exists(k.cancelled(request.id))) === 1) {
      log(request.id).outcome = 'cancelled';
      return;
    }
    let model: ServedModel;
    try {
      model = await models.get(request.modelKey);
    } catch (error) {
      logger.error({ err: error, modelKey: request.modelKey }, 'model failed to load');
      return fail(request, 409, `the model cannot be loaded: ${(error as Error).message}`, 'model');
    }
    let prompts: number[][];
    try {
      prompts = promptIds(model.tokenizer, request).prompts;
    } catch (error) {
      if (error instanceof PromptError) return fail(request, 400, error.message, error.param);
      throw error;
    }
    const context = model.context;
    const param = request.kind === 'chat' ? 'messages' : 'prompt';
    const budgets = prompts.map((p) => request.maxTokens ?? Math.min(DEFAULT_MAX_TOKENS, context - p.length));
    for (const [i, prompt] of prompts.entries())
      if (budgets[i] < 1 || prompt.length + budgets[i] > context)
        return fail(
          request,
          400,
          `the prompt (${prompt.length} tokens) + ${budgets[i] < 1 ? 'one new token' : `max tokens (${budgets[i]})`} exceed the model's context of ${context} tokens`,
          param,
        );
    await reply(request, { id: request.id, type: 'started', promptTokens: prompts.map((p) => p.length) });
    prompts.forEach((prompt, p) => {
      for (let c = 0; c < request.n; c++) {
        const index = p * request.n + c;
        active.push({
          request,
          index,
          prompt,
          text: new CompletionText(
            model.tokenizer,
            request.stop,
            budgets[p],
            request.logprobs ? (request.topLogprobs ?? 0) : 0,
          ),
          uniforms: new UniformStream(createRng(request.seed, `choice-${index}`)),
        });
      }
    });
  }

  /** The oldest sequence's group (model, temperature, top-p, alternatives or not), up to maxBatch, oldest first. */
  function nextBatch(): Sequence[] {
    const [first] = active;
    const same = (s: Sequence) =>
      s.request.modelKey === first.request.modelKey &&
      s.request.temperature === first.request.temperature &&
      s.request.topP === first.request.topP &&
      wantsTop(s) === wantsTop(first);
    return active.filter(same).slice(0, maxBatch);
  }

  async function step(batch: Sequence[]): Promise<void> {
    // From the cache, not the sequence: a model evicted since (more models active than kept) is loaded again.
    const model = await models.get(batch[0].request.modelKey);
    const room = Math.min(...batch.map((s) => model.context - s.prompt.length - s.text.tokens.length));
    const tokens = Math.max(1, Math.min(chunkTokens, room, Math.max(...batch.map((s) => s.text.remaining))));
    stats.generationCalls++;
    stats.largestBatch = Math.max(stats.largestBatch, batch.length);
    const result = await generateChunk(
      model,
      batch.map((s) => ({
        ids: [...s.prompt, ...s.text.tokens],
        uniforms: s.uniforms.slice(s.text.tokens.length, tokens),
      })),
      tokens,
      {
        temperature: batch[0].request.temperature,
        topP: batch[0].request.topP,
        topLogprobs: wantsTop(batch[0]),
      },
    );
    const now = Date.now();
    const finished = new Set<Sequence>();
    batch.forEach((s, b) => {
      const id = s.request.id;
      const out = s.text.push(result.tokens[b], result.logprobs[b], result.top?.[b]);
      const entry = log(id);
      entry.chunks++;
      entry.tokens += result.tokens[b].length;
      entry.lastTokenAt = now;
      if (out.text !== '' || out.logprobs.length > 0)
        void reply(s.request, {
          id,
          type: 'delta',
          index: s.index,
          text: out.text,
          ...(s.request.logprobs ? { logprobs: out.logprobs } : {}),
        });
      if (s.text.finishReason) {
        finished.add(s);
        void reply(s.request, {
          id,
          type: 'done',
          index: s.index,
          finishReason: s.text.finishReason,
          completionTokens: s.text.tokens.length,
        });
      }
    });
    // The batch goes to the back: other groups waiting get the next call.
    const rest = active.filter((s) => !batch.includes(s));
    active = [...rest, ...batch.filter((s) => !finished.has(s))];
    for (const s of finished)
      if (!active.some((o) => o.request === s.request)) log(s.request.id).outcome = 'done';
  }

  /** Drops sequences whose client went away or whose API stopped waiting. */
  function prune(): void {
    const now = Date.now();
    active = active.filter((s) => {
      const gone = cancelled.has(s.request.id);
      if (gone || s.request.deadline < now) {
        log(s.request.id).outcome = gone ? 'cancelled' : 'expired';
        return false;
      }
      return true;
    });
  }

  async function serve(): Promise<void> {
    while (!stopping) {
      try {
        const idle = active.length === 0;
        let arrived = await read(maxBatch, idle ? BLOCK_MS : null);
        if (idle && arrived.length > 0 && arrived.length < maxBatch && batchWindowMs > 0) {
          await new Promise((resolve) => setTimeout(resolve, batchWindowMs));
          arrived = [...arrived, ...(await read(maxBatch - arrived.length, null))];
        }
        for (const request of arrived) await admit(request);
        prune();
        if (active.length === 0) continue;
        const batch = nextBatch();
        try {
          await step(batch);
        } catch (error) {
          logger.error({ err: error }, 'generation failed');
          for (const request of new Set(batch.map((s) => s.request)))
            await reply(request, {
              id: request.id,
              type: 'error',
              status: 500,
              message: 'generation failed (logged by the worker)',
              param: null,
              code: 'generation_failed',
            });
          active = active.filter((s) => !batch.includes(s));
        }
      } catch (error) {
        if (stopping) break;
        logger.error({ err: error }, 'inference loop error');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  const serving = serve();
  logger.info({ workerId, device: runtime.device, maxBatch, chunkTokens }, 'inference consumer started');
  return {
    workerId,
    device: runtime.device,
    stats: () => ({ ...stats }),
    request: (id) => logs.get(id),
    loadedModels: () => models.loaded(),
    loadedAdapters: () => models.adapters(),
    async close() {
      stopping = true;
      reader.disconnect(); // ends a blocking read at once
      await serving;
      for (const request of new Set(active.map((s) => s.request)))
        await reply(request, {
          id: request.id,
          type: 'error',
          status: 503,
          message: 'the inference worker stopped; try again',
          param: null,
          code: 'inference_unavailable',
        });
      await models.close();
      await runtime.close();
      subscriber.disconnect();
      await redis.quit();
    },
  };
}
