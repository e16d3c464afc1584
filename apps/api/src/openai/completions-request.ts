// The request bodies of POST /v1/chat/completions and /v1/completions, checked field by field with OpenAI's
// names (a 400 names the `param`), and the model a request names resolved to its files: one of the team's
// fine-tuned models (`ft:…:<run id>`, the job's final model) or registered models (id or name).
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { Team } from '@rlhf/db';
import { gptConfigFromHf } from '@rlhf/model';
import type { ChatTurn } from '@rlhf/queue';
import { ApiError } from '../errors.js';
import { visibleTo } from '../models.js';
import type { Services } from '../services.js';
import { findFineTunedModel } from './fine-tuned-models.js';
import type { InferenceAsk } from './inference-client.js';

/** Most tokens one choice may ask for (also bounded by the model's context). */
export const MAX_TOKENS_PER_REQUEST = 4096;
const MAX_N = 16;
const MAX_PROMPTS = 64;
const MAX_STOPS = 4;

export interface ParsedRequest {
  model: string;
  ask: Omit<InferenceAsk, 'modelKey'>;
  /** The field the token limit came from, for errors. */
  maxTokensParam: string;
  stream: boolean;
  includeUsage: boolean;
}

const bad = (message: string, param: string | null) =>
  new ApiError(400, 'invalid_request', message, param ?? undefined);
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Accepted and ignored: they change nothing in what this server generates. */
const IGNORED = ['user', 'store', 'metadata', 'service_tier', 'parallel_tool_calls', 'modalities'];
const CHAT_FIELDS = [
  'model',
  'messages',
  'temperature',
  'top_p',
  'max_completion_tokens',
  'max_tokens',
  'n',
  'stop',
  'seed',
  'logprobs',
  'top_logprobs',
  'stream',
  'stream_options',
  'frequency_penalty',
  'presence_penalty',
];
const COMPLETION_FIELDS = [
  'model',
  'prompt',
  'temperature',
  'top_p',
  'max_tokens',
  'n',
  'stop',
  'seed',
  'logprobs',
  'stream',
  'stream_options',
  'echo',
  'best_of',
  'suffix',
  'frequency_penalty',
  'presence_penalty',
];

function number(body: Record<string, unknown>, key: string, min: number, max: number, fallback: number) {
  const value = body[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw bad(`${key} must be a number in [${min}, ${max}], got ${JSON.stringify(value)}`, key);
  return value;
}

function integer(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
    throw bad(`${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`, key);
  return value as number;
}

/** A message's content: a string, or text parts (`[{type: 'text', text}]`) joined. */
function contentOf(value: unknown, at: string): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((part) => isObject(part) && part.type === 'text'))
    return value.map((part) => String((part as { text?: unknown }).text ?? '')).join('');
  throw bad(`${at}: expected a string or text content parts`, at);
}

function messagesOf(value: unknown): ChatTurn[] {
  if (!Array.isArray(value) || value.length === 0)
    throw bad('messages must be a non-empty array of messages', 'messages');
  return value.map((message: unknown, i) => {
    const at = `messages.${i}`;
    if (!isObject(message)) throw bad(`${at}: expected an object`, at);
    // OpenAI's `developer` role is the newer name of `system`.
    const role = message.role === 'developer' ? 'system' : message.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant')
      throw bad(`${at}.role: expected system, developer, user or assistant`, `${at}.role`);
    return { role, content: contentOf(message.content, `${at}.content`) };
  });
}

function stopsOf(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const stops = typeof value === 'string' ? [value] : value;
  if (
    !Array.isArray(stops) ||
    stops.length > MAX_STOPS ||
    stops.some((s) => typeof s !== 'string' || s.length === 0 || s.length > 256)
  )
    throw bad(`stop must be a string or up to ${MAX_STOPS} non-empty strings`, 'stop');
  return stops as string[];
}

/** A chat (`kind: 'chat'`) or legacy completion request in our terms; 400 naming the field otherwise. */
export function parseRequest(body: unknown, kind: 'chat' | 'completion'): ParsedRequest {
  if (!isObject(body)) throw bad('the body must be a JSON object', null);
  const fields = kind === 'chat' ? CHAT_FIELDS : COMPLETION_FIELDS;
  for (const key of Object.keys(body))
    if (!fields.includes(key) && !IGNORED.includes(key)) throw bad(`unsupported parameter ${key}`, key);
  if (typeof body.model !== 'string' || body.model === '')
    throw bad('missing required parameter model', 'model');
  for (const key of ['frequency_penalty', 'presence_penalty'])
    if (number(body, key, -2, 2, 0) !== 0) throw bad(`${key} is not supported (only 0)`, key);
  if (body.echo === true) throw bad('echo is not supported', 'echo');
  if ((integer(body, 'best_of', 1, 1) ?? 1) !== 1) throw bad('best_of is not supported', 'best_of');
  if (body.suffix !== undefined && body.suffix !== null) throw bad('suffix is not supported', 'suffix');

  const maxTokensParam = body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = integer(body, maxTokensParam, 1, MAX_TOKENS_PER_REQUEST) ?? null;
  const stream = body.stream ?? false;
  if (typeof stream !== 'boolean') throw bad('stream must be a boolean', 'stream');
  const options = body.stream_options ?? {};
  if (!isObject(options)) throw bad('stream_options must be an object', 'stream_options');
  if (options.include_usage !== undefined && typeof options.include_usage !== 'boolean')
    throw bad('stream_options.include_usage must be a boolean', 'stream_options.include_usage');

  let logprobs: boolean;
  let topLogprobs: number;
  if (kind === 'chat') {
    if (body.logprobs !== undefined && body.logprobs !== null && typeof body.logprobs !== 'boolean')
      throw bad('logprobs must be a boolean', 'logprobs');
    logprobs = body.logprobs === true;
    const top = integer(body, 'top_logprobs', 0, 20);
    if (top !== undefined && !logprobs) throw bad('top_logprobs needs logprobs: true', 'top_logprobs');
    topLogprobs = top ?? 0;
  } else {
    // The legacy completions' logprobs is the number of alternatives to list (0: the sampled token's only).
    const top = integer(body, 'logprobs', 0, 5);
    logprobs = top !== undefined;
    topLogprobs = top ?? 0;
  }

  let text: Pick<InferenceAsk, 'messages' | 'prompts'>;
  if (kind === 'chat') text = { messages: messagesOf(body.messages) };
  else {
    const prompt = body.prompt;
    const prompts = typeof prompt === 'string' ? [prompt] : prompt;
    if (
      !Array.isArray(prompts) ||
      prompts.length === 0 ||
      prompts.length > MAX_PROMPTS ||
      prompts.some((p) => typeof p !== 'string')
    )
      throw bad(`prompt must be a string or an array of 1 to ${MAX_PROMPTS} strings`, 'prompt');
    text = { prompts: prompts as string[] };
  }
  const seed = integer(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  return {
    model: body.model,
    maxTokensParam,
    stream,
    includeUsage: options.include_usage === true,
    ask: {
      kind,
      ...text,
      n: integer(body, 'n', 1, MAX_N) ?? 1,
      maxTokens,
      temperature: number(body, 'temperature', 0, 2, 1),
      topP: number(body, 'top_p', Number.MIN_VALUE, 1, 1),
      stop: stopsOf(body.stop),
      seed: seed ?? Math.floor(Math.random() * 2 ** 32),
      logprobs,
      topLogprobs,
    },
  };
}

export interface ResolvedModel {
  /** Artifact key of the model directory. */
  key: string;
  /** The model's context in tokens. */
  context: number;
}

const notFound = (model: string) =>
  new ApiError(
    404,
    'model_not_found',
    `The model ${model} does not exist or you do not have access to it`,
    'model',
  );

/** The team's model named `model`; another team's (or none) is a 404 model_not_found. */
export async function resolveModel(
  s: Services,
  team: Team,
  model: string,
  contexts: Map<string, number>,
): Promise<ResolvedModel> {
  let key: string | null | undefined;
  if (model.startsWith('ft:')) {
    key = (await findFineTunedModel(s, team, model))?.key;
  } else {
    const registered = await s.prisma.model.findFirst({
      where: {
        AND: [
          visibleTo(team),
          { OR: [{ name: model }, ...(/^[0-9a-f-]{36}$/.test(model) ? [{ id: model }] : [])] },
        ],
      },
    });
    key = registered?.key;
  }
  if (!key) throw notFound(model);
  let context = contexts.get(key);
  if (context === undefined) {
    // An admin model's key is its absolute directory, read in place (not a key of the store).
    const text = isAbsolute(key)
      ? await readFile(join(key, 'config.json'), 'utf8')
      : await s.artifacts.getText(`${key}/config.json`);
    const config = JSON.parse(text) as Record<string, unknown>;
    context = gptConfigFromHf(config).maxPositions;
    if (contexts.size > 1000) contexts.clear();
    contexts.set(key, context);
  }
  return { key, context };
}
