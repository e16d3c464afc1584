// The inference protocol between the API (POST /v1/chat/completions, /v1/completions) and the inference
// consumers of the worker pool. Requests go on one Redis stream read by a consumer group: a consumer takes
// everything waiting in one XREADGROUP (COUNT = its batch size), which is the batching BullMQ's one-job-at-a-time
// fetch would not give, and costs one round trip instead of BullMQ's per-job locks. Replies are published on
// the asking API process's own pub/sub channel (subscribed before the request is queued: nothing is missed).
import type { Redis } from 'ioredis';
import { DEFAULT_PREFIX } from './keys.js';

/** Stream entries beyond this are trimmed (requests are consumed within milliseconds when a pool runs). */
export const INFERENCE_STREAM_MAXLEN = 10_000;
export const INFERENCE_GROUP = 'inference';

export function inferenceKeys(prefix: string = DEFAULT_PREFIX) {
  return {
    /** Stream of InferenceRequests (field `request` = JSON); consumer group INFERENCE_GROUP. */
    requests: `${prefix}:inference:requests`,
    /** Pub/sub channel of one API process: InferenceReply JSON messages. */
    replies: (apiId: string) => `${prefix}:inference:replies:${apiId}`,
    /** Pub/sub channel: message = request id whose client went away. */
    cancel: `${prefix}:inference:cancel`,
    /** Flag set with the cancel, for a consumer that takes the request after the broadcast. */
    cancelled: (requestId: string) => `${prefix}:inference:cancelled:${requestId}`,
    /** Requests a team has in flight (all API processes), for the per-team concurrency limit. */
    active: (teamId: string) => `${prefix}:inference:active:${teamId}`,
  };
}

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** One request as the API queued it: the model is already resolved to its files, fields already checked. */
export interface InferenceRequest {
  id: string;
  /** Channel the replies go to (inferenceKeys().replies(apiId)). */
  replyTo: string;
  /** Artifact-store key of the model directory (config.json, model.safetensors, tokenizer.json). */
  modelKey: string;
  /** chat: `messages` rendered with the model's chat template; completion: each of `prompts` as it is. */
  kind: 'chat' | 'completion';
  messages?: ChatTurn[];
  prompts?: string[];
  /** Choices per prompt. */
  n: number;
  /** Tokens per choice; null = up to the model's context (at most the consumer's default). */
  maxTokens: number | null;
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  stop: string[];
  seed: number;
  logprobs: boolean;
  /** With logprobs: the most likely alternatives listed per token (0..20, default 0). */
  topLogprobs?: number;
  /** Epoch ms after which the API no longer waits: a consumer drops the request. */
  deadline: number;
}

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  /** The request's topLogprobs most likely tokens at this position, most likely first. */
  top_logprobs?: { token: string; logprob: number; bytes: number[] }[];
}

/** Replies to one request, in order: started (prompt size), deltas per choice, one done per choice, or error. */
export type InferenceReply =
  | { id: string; type: 'started'; promptTokens: number[] }
  | { id: string; type: 'delta'; index: number; text: string; logprobs?: TokenLogprob[] }
  | {
      id: string;
      type: 'done';
      index: number;
      finishReason: 'stop' | 'length';
      completionTokens: number;
    }
  | { id: string; type: 'error'; status: number; message: string; param: string | null; code: string };

export async function enqueueInference(
  redis: Redis,
  request: InferenceRequest,
  prefix = DEFAULT_PREFIX,
): Promise<void> {
  const stream = inferenceKeys(prefix).requests;
  await redis.xadd(stream, 'MAXLEN', '~', INFERENCE_STREAM_MAXLEN, '*', 'request', JSON.stringify(request));
}

/** Stops the request's generation wherever it is (queued or running). */
export async function cancelInference(
  redis: Redis,
  requestId: string,
  prefix = DEFAULT_PREFIX,
): Promise<void> {
  const k = inferenceKeys(prefix);
  await redis.set(k.cancelled(requestId), '1', 'PX', 10 * 60_000);
  await redis.publish(k.cancel, requestId);
}

export async function publishInferenceReply(
  redis: Redis,
  channel: string,
  reply: InferenceReply,
): Promise<void> {
  await redis.publish(channel, JSON.stringify(reply));
}
