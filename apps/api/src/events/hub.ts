// Live fan-out of run events to SSE streams. Events go through a Redis pub/sub channel, so a client
// connected to any API instance sees events persisted by any other.
import type { Redis } from 'ioredis';

/** One message for the subscribers of a run: a persisted worker event or a status change made by the API. */
export interface RunMessage {
  runId: string;
  /** SSE event name: the StageEvent type ('metrics', 'stage.completed', ...) or 'run.updated'. */
  type: string;
  /** Its seq in the run's stored history (SSE `id:`); messages that could not be stored have none. */
  id?: string;
  data: unknown;
}

export interface EventHub {
  /** Calls `listener` for each message of `runId` until the returned function is called. */
  subscribe(runId: string, listener: (message: RunMessage) => void): () => void;
  /** Stores a message without an id first (it gets its seq as id), then fans it out. */
  publish(message: RunMessage): Promise<void>;
  /** Open subscriptions. */
  readonly size: number;
  close(): Promise<void>;
}

/** Stores a message in the run's history and returns its id (null: not stored). */
export type RecordMessage = (message: RunMessage) => Promise<string | null>;

/**
 * `subscriber` becomes a subscriber-mode connection (give it a dedicated one, the hub closes it);
 * `publisher` is any command connection.
 */
export async function createEventHub(
  publisher: Redis,
  subscriber: Redis,
  channel: string,
  record?: RecordMessage,
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
      // A status change the history could not take is still sent live (the snapshot on reconnect has it).
      const id = message.id ?? (record ? await record(message).catch(() => null) : null);
      await publisher.publish(channel, JSON.stringify(id === null ? message : { ...message, id }));
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
