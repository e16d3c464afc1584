// POST /v1/chat/completions and POST /v1/completions in OpenAI's shapes. Nothing is generated in this process:
// each request goes on the inference queue (inference-client.ts) and an inference consumer of the worker pool
// answers it; replies are relayed as they come, as SSE chunks when `stream: true`.
import type { ServerResponse } from 'node:http';
import type { Team } from '@rlhf/db';
import { type InferenceReply, inferenceKeys, type TokenLogprob } from '@rlhf/queue';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { teamOf } from '../auth.js';
import { ApiError } from '../errors.js';
import type { Services } from '../services.js';
import { type ParsedRequest, parseRequest, resolveModel } from './completions-request.js';
import { createInferenceClient, type InferenceCall, ReplyTimeout } from './inference-client.js';

/** Requests one team may have generating at once, over all API processes; more is a 429. */
export const MAX_CONCURRENT_PER_TEAM = 64;
/** No consumer took the request (none running, or all busy) within this long: 503. */
const START_TIMEOUT_MS = 60_000;
/** Longest silence between two replies of a running request. */
const REPLY_TIMEOUT_MS = 120_000;

type Kind = 'chat' | 'completion';
interface Choice {
  text: string;
  logprobs: TokenLogprob[];
  finishReason: 'stop' | 'length' | null;
  tokens: number;
}

const seconds = () => Math.floor(Date.now() / 1000);
const chatLogprobs = (tokens: TokenLogprob[]) => ({
  content: tokens.map((t) => ({ ...t, top_logprobs: t.top_logprobs ?? [] })),
  refusal: null,
});
/** The legacy shape: tokens, their log-probs, per token an object alternative → log-prob (or null). */
function completionLogprobs(tokens: TokenLogprob[], offset: number) {
  const text_offset: number[] = [];
  for (const t of tokens) {
    text_offset.push(offset);
    offset += t.token.length;
  }
  return {
    tokens: tokens.map((t) => t.token),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: tokens.some((t) => t.top_logprobs?.length)
      ? // Alternatives of one text (bytes that are not UTF-8 all read U+FFFD) keep the most likely's log-prob.
        tokens.map((t) =>
          Object.fromEntries((t.top_logprobs ?? []).map((a) => [a.token, a.logprob]).reverse()),
        )
      : null,
    text_offset,
  };
}

function usageOf(promptTokens: number[], choices: Choice[]) {
  const prompt = promptTokens.reduce((a, b) => a + b, 0);
  const completion = choices.reduce((a, c) => a + c.tokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

const replyError = (r: Extract<InferenceReply, { type: 'error' }>) =>
  new ApiError(r.status, r.code, r.message, r.param ?? undefined);

export const completionRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services: s }) => {
  const client = await createInferenceClient(s.options.redisUrl, s.redis, s.prefix);
  const contexts = new Map<string, number>();
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.end();
  });
  app.addHook('onClose', async () => client.close());

  /** Counts the request against the team's concurrency (429 beyond); the returned function gives it back. */
  async function acquire(team: Team): Promise<() => Promise<void>> {
    const key = inferenceKeys(s.prefix).active(team.id);
    const [[, count]] = (await s.redis
      .multi()
      .incr(key)
      .pexpire(key, 15 * 60_000)
      .exec()) as [[Error | null, number]];
    const release = async () => void (await s.redis.decr(key));
    if (count > MAX_CONCURRENT_PER_TEAM) {
      await release();
      throw new ApiError(
        429,
        'rate_limit_exceeded',
        `the team already has ${MAX_CONCURRENT_PER_TEAM} completion requests running; retry when one finishes`,
      );
    }
    return release;
  }

  async function serve(request: FastifyRequest, reply: FastifyReply, kind: Kind) {
    const team = teamOf(request);
    const parsed = parseRequest(request.body, kind);
    const model = await resolveModel(s, team, parsed.model, contexts);
    const limit = model.context - 1;
    if (parsed.ask.maxTokens !== null && parsed.ask.maxTokens > limit)
      throw new ApiError(
        400,
        'invalid_request',
        `${parsed.maxTokensParam} must be at most ${limit}: the model's context is ${model.context} tokens`,
        parsed.maxTokensParam,
      );
    const release = await acquire(team);
    let call: InferenceCall | undefined;
    let finished = false;
    // A client that goes away (closed SSE connection, aborted request) stops its generation.
    reply.raw.on('close', () => {
      if (!finished) void call?.cancel();
    });
    try {
      call = await client.submit({ ...parsed.ask, modelKey: model.key });
      const first = await call.next(START_TIMEOUT_MS).catch((error: unknown) => {
        if (!(error instanceof ReplyTimeout)) throw error;
        void call?.cancel();
        throw new ApiError(503, 'inference_unavailable', 'no inference worker took the request; try again');
      });
      if (first.type === 'error') throw replyError(first);
      if (first.type !== 'started') throw new Error(`inference: expected started, got ${first.type}`);
      const total = first.promptTokens.length * parsed.ask.n;
      const choices: Choice[] = Array.from({ length: total }, () => ({
        text: '',
        logprobs: [],
        finishReason: null,
        tokens: 0,
      }));
      const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${call.id}`; // the inference request's id: logs match
      const head = { id, created: seconds(), model: parsed.model, system_fingerprint: null };
      if (parsed.stream) {
        // Headers are sent from here on: a failure can only end the stream (streamReplies reports it in it).
        const completed = await streamReplies(
          reply,
          call,
          parsed,
          kind,
          head,
          first.promptTokens,
          choices,
        ).catch((error: unknown) => {
          if (!(error instanceof ReplyTimeout)) request.log.error({ err: error }, 'stream failed');
          return false;
        });
        if (!completed) await call.cancel();
        finished = true;
        return reply;
      }
      let open = total;
      while (open > 0) {
        const next = await call.next(REPLY_TIMEOUT_MS);
        if (next.type === 'error') throw replyError(next);
        if (next.type === 'delta') {
          const choice = choices[next.index];
          choice.text += next.text;
          if (next.logprobs) choice.logprobs.push(...next.logprobs);
        } else if (next.type === 'done') {
          choices[next.index].finishReason = next.finishReason;
          choices[next.index].tokens = next.completionTokens;
          open--;
        }
      }
      finished = true;
      call.end();
      const usage = usageOf(first.promptTokens, choices);
      if (kind === 'chat')
        return {
          ...head,
          object: 'chat.completion',
          choices: choices.map((c, index) => ({
            index,
            message: { role: 'assistant', content: c.text, refusal: null },
            logprobs: parsed.ask.logprobs ? chatLogprobs(c.logprobs) : null,
            finish_reason: c.finishReason,
          })),
          usage,
        };
      return {
        ...head,
        object: 'text_completion',
        choices: choices.map((c, index) => ({
          index,
          text: c.text,
          logprobs: parsed.ask.logprobs ? completionLogprobs(c.logprobs, 0) : null,
          finish_reason: c.finishReason,
        })),
        usage,
      };
    } catch (error) {
      if (!finished) await call?.cancel();
      finished = true;
      if (error instanceof ReplyTimeout)
        throw new ApiError(
          504,
          'inference_timeout',
          `the inference worker stopped answering: ${error.message}`,
        );
      throw error;
    } finally {
      await release();
    }
  }

  /** SSE: `data: {chunk}` per reply, a usage chunk if asked, then `data: [DONE]`. */
  async function streamReplies(
    reply: FastifyReply,
    call: InferenceCall,
    parsed: ParsedRequest,
    kind: Kind,
    head: { id: string; created: number; model: string; system_fingerprint: null },
    promptTokens: number[],
    choices: Choice[],
  ): Promise<boolean> {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    streams.add(raw);
    const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const usageField = parsed.includeUsage ? { usage: null } : {};
    const send = (chunkChoices: object[], extra: object = usageField) =>
      raw.write(`data: ${JSON.stringify({ ...head, object, choices: chunkChoices, ...extra })}\n\n`);
    try {
      if (kind === 'chat')
        send(
          choices.map((_, index) => ({
            index,
            delta: { role: 'assistant', content: '' },
            logprobs: null,
            finish_reason: null,
          })),
        );
      let open = choices.length;
      while (open > 0 && !raw.destroyed) {
        const next = await call.next(REPLY_TIMEOUT_MS);
        if (next.type === 'error') {
          const { message, param, code } = next;
          raw.write(`data: ${JSON.stringify({ error: { message, type: 'server_error', param, code } })}\n\n`);
          break;
        }
        if (next.type === 'delta') {
          const choice = choices[next.index];
          const offset = choice.text.length;
          choice.text += next.text;
          const logprobs = next.logprobs && parsed.ask.logprobs ? next.logprobs : null;
          send([
            kind === 'chat'
              ? {
                  index: next.index,
                  delta: { content: next.text },
                  logprobs: logprobs && chatLogprobs(logprobs),
                  finish_reason: null,
                }
              : {
                  index: next.index,
                  text: next.text,
                  logprobs: logprobs && completionLogprobs(logprobs, offset),
                  finish_reason: null,
                },
          ]);
        } else if (next.type === 'done') {
          choices[next.index].tokens = next.completionTokens;
          open--;
          send([
            kind === 'chat'
              ? { index: next.index, delta: {}, logprobs: null, finish_reason: next.finishReason }
              : { index: next.index, text: '', logprobs: null, finish_reason: next.finishReason },
          ]);
        }
      }
      if (open === 0) {
        call.end();
        if (parsed.includeUsage) send([], { usage: usageOf(promptTokens, choices) });
        raw.write('data: [DONE]\n\n');
      }
      return open === 0;
    } finally {
      streams.delete(raw);
      raw.end();
    }
  }

  app.post('/chat/completions', (request, reply) => serve(request, reply, 'chat'));
  app.post('/completions', (request, reply) => serve(request, reply, 'completion'));
};
