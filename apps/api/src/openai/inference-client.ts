// The API's side of the inference pool: queues a request on the Redis stream and hands back its replies as
// they arrive on this process's own pub/sub channel (subscribed once, before any request is queued).
import { randomBytes } from 'node:crypto';
import {
  cancelInference,
  createRedis,
  enqueueInference,
  type InferenceReply,
  type InferenceRequest,
  inferenceKeys,
} from '@rlhf/queue';
import type { Redis } from 'ioredis';

export type InferenceAsk = Omit<InferenceRequest, 'id' | 'replyTo' | 'deadline'>;

export interface InferenceCall {
  id: string;
  /** The next reply; rejects after `timeoutMs` without one. */
  next(timeoutMs: number): Promise<InferenceReply>;
  /** Stops generation (client gone) and forgets the request. */
  cancel(): Promise<void>;
  /** Forgets the request (it finished). */
  end(): void;
}

export interface InferenceClient {
  submit(ask: InferenceAsk): Promise<InferenceCall>;
  close(): Promise<void>;
}

export class ReplyTimeout extends Error {}

/** The API waits this long for a request as a whole (a consumer drops it after that). */
const REQUEST_DEADLINE_MS = 10 * 60_000;

export async function createInferenceClient(
  redisUrl: string,
  redis: Redis,
  prefix: string,
): Promise<InferenceClient> {
  const k = inferenceKeys(prefix);
  const channel = k.replies(randomBytes(8).toString('hex'));
  const subscriber = createRedis(redisUrl, { worker: true });
  const calls = new Map<string, { queue: InferenceReply[]; wake: (() => void) | null; cancelled: boolean }>();
  subscriber.on('message', (_from: string, message: string) => {
    const reply = JSON.parse(message) as InferenceReply;
    const call = calls.get(reply.id);
    if (!call) return;
    call.queue.push(reply);
    call.wake?.();
  });
  await subscriber.subscribe(channel);

  return {
    async submit(ask) {
      const id = randomBytes(12).toString('hex');
      const call = { queue: [] as InferenceReply[], wake: null as (() => void) | null, cancelled: false };
      calls.set(id, call);
      try {
        await enqueueInference(
          redis,
          { ...ask, id, replyTo: channel, deadline: Date.now() + REQUEST_DEADLINE_MS },
          prefix,
        );
      } catch (error) {
        calls.delete(id);
        throw error;
      }
      return {
        id,
        async next(timeoutMs) {
          while (call.queue.length === 0) {
            if (call.cancelled) throw new ReplyTimeout('the request was cancelled');
            let timer: NodeJS.Timeout | undefined;
            const woke = await new Promise<boolean>((resolve) => {
              call.wake = () => resolve(true);
              timer = setTimeout(() => resolve(false), timeoutMs);
            });
            clearTimeout(timer);
            call.wake = null;
            if (!woke && call.queue.length === 0) throw new ReplyTimeout(`no reply in ${timeoutMs} ms`);
          }
          return call.queue.shift() as InferenceReply;
        },
        async cancel() {
          if (call.cancelled) return;
          call.cancelled = true;
          call.wake?.();
          calls.delete(id);
          await cancelInference(redis, id, prefix);
        },
        end: () => void calls.delete(id),
      };
    },
    async close() {
      calls.clear();
      subscriber.disconnect();
    },
  };
}
