// Live fan-out of run events to SSE streams. Events go through a Redis pub/sub channel, so a client
// connected to any API instance sees events persisted by any other.
import type { Redis } from 'ioredis';

/** One message for the subscribers of a run: a persisted worker event or a status change made by the API. */
export interface RunMessage {
  runId: string;
  /** SSE event name: the StageEvent type ('metrics', 'stage.completed', ...) or 'run.updated'. */
  type: string;
  /** Redis stream id of a worker event (SSE `id:`). */
  id?: string;
  data: unknown;
}

export interface EventHub {
  /** Calls `listener` for each message of `runId` until the returned function is called. */
  subscribe(runId: string, listener: (message: RunMessage) => void): () => void;
  publish(message: RunMessage): Promise<void>;
  /** Open subscriptions. */
  readonly size: number;
  close(): Promise<void>;
}

/**
 * `subscriber` becomes a subscriber-mode connection (give it a dedicated one, the hub closes it);
 * `publisher` is any command connection.
 */
export async function createEventHub(
  publisher: Redis,
  subscriber: Redis,
  channel: string,
): Promise<EventHub> {
  const listeners = new Map<string, Set<(message: RunMessage) => void>>();
  let size = 0;
  subscriber.on('message', (from: string, text: string) => {
    if (from !== channel) return;
    const message = JSON.parse(text) as RunMessage;
    for (const listener of listeners.get(message.runId) ?? []) listener(message);
  });
  await subscriber.subscribe(channel);
  return {
    subscribe(runId, listener) {
      const set = listeners.get(runId) ?? new Set();
      listeners.set(runId, set);
      set.add(listener);
      size++;
      return () => {
        if (set.delete(listener)) size--;
        if (set.size === 0) listeners.delete(runId);
      };
    },
    async publish(message) {
      await publisher.publish(channel, JSON.stringify(message));
    },
    get size() {
      return size;
    },
    async close() {
      listeners.clear();
      size = 0;
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}
