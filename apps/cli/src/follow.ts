// Following a run's event stream for `--follow`: reconnects (with Last-Event-ID) when the stream breaks
// before the run ended, and stops at `end` or when the signal aborts.
import { ApiRequestError, type Client, NetworkError } from './client.js';
import type { SseEvent } from './sse.js';
import { isFinished } from './watch.js';

const RETRY_MS = 1000;

/** Every event of the run's stream until it ends; `end` itself is not yielded. */
export async function* followEvents(
  client: Client,
  runId: string,
  options: { signal?: AbortSignal; once?: boolean; idleMs?: number } = {},
): AsyncGenerator<SseEvent> {
  let lastEventId: string | undefined;
  for (;;) {
    const local = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, local.signal]) : local.signal;
    // Without --follow: what the stream sends at once (snapshot, history), then stop once it goes quiet.
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      if (options.idleMs === undefined) return;
      clearTimeout(idle);
      idle = setTimeout(() => local.abort(), options.idleMs);
    };
    try {
      for await (const event of client.events(runId, { signal, ...(lastEventId ? { lastEventId } : {}) })) {
        arm();
        if (event.id) lastEventId = event.id;
        if (event.event === 'end') return;
        if (event.event === 'unauthorized')
          throw new ApiRequestError(401, 'unauthorized', 'events: the API key was revoked');
        yield event;
      }
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
    } finally {
      clearTimeout(idle);
    }
    if (options.signal?.aborted || local.signal.aborted || options.once) return;
    // The stream ended without `end`: over if the run is, else reconnect.
    if (isFinished((await client.getRun(runId)).status)) return;
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}
