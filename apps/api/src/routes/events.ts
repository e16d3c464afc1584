// GET /v1/runs/:runId/events: Server-Sent Events. First a `run` event with the run as it is, then the run's
// stored history (every event the API persisted for it: metrics, stage.progress, samples, artifact,
// stage.completed, run.updated, ...; after `Last-Event-ID` when given), then each new one live, then `end`
// once the run finished. Each event's `id:` is its place in the history. Browsers authenticate with a
// short-lived token from POST /v1/runs/:runId/stream-token (`?token=`). Streams close when the app closes.
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { teamOf } from '../auth.js';
import { runEventsAfter } from '../events/history.js';
import type { RunMessage } from '../events/hub.js';
import { runStatus } from '../run-store.js';
import { findRun, runDetail } from '../runs.js';
import { Errors, EventsHeaders, EventsQuery, RunParams, StreamTokenView } from '../schemas.js';
import type { Services } from '../services.js';
import { isFinished } from '../views.js';

const KEEPALIVE_MS = 15_000;
/** How often a stream re-checks its key by default: a revoked key's streams end within this. */
const KEY_CHECK_MS = 5_000;
/** History rows read per query while replaying. */
const REPLAY_PAGE = 500;
/** How long the ids of a replay are remembered: an event stored just before it was read is published just after. */
const REPLAY_OVERLAP_MS = 30_000;
// Events after which the run may have finished.
const FINAL_EVENTS = new Set(['stage.completed', 'stage.failed', 'stage.cancelled', 'run.updated']);

export const eventRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services: s },
) => {
  const open = new Set<ServerResponse>();
  // Open streams never end by themselves: end them before the server waits for its connections.
  app.addHook('preClose', async () => {
    for (const response of open) response.end();
  });

  app.post(
    '/runs/:runId/stream-token',
    {
      schema: {
        tags: ['runs'],
        summary: "A short-lived token that opens this run's event stream (for a browser EventSource)",
        description:
          'Send it as `GET /v1/runs/:runId/events?token=…`: it opens only this run, for 5 minutes, and only while the key that asked for it is valid. Never put the API key in a URL.',
        params: RunParams,
        response: { 201: StreamTokenView, ...Errors },
      },
    },
    async (request, reply) => {
      const team = teamOf(request);
      const run = await findRun(s, team, request.params.runId); // 404 for another team's run
      const keyId = request.principal?.keyId as string; // team keys always have an id
      const { token, expiresAt } = await s.streamTokens.issue({ teamId: team.id, runId: run.id, keyId });
      return reply.status(201).send({
        token,
        expiresAt: expiresAt.toISOString(),
        url: `/v1/runs/${run.id}/events?token=${token}`,
      });
    },
  );

  app.get(
    '/runs/:runId/events',
    {
      config: { streamToken: true },
      schema: {
        tags: ['runs'],
        summary: 'Live events of a run (text/event-stream): its history first, then new events',
        description:
          'Authenticate with the Authorization header or `?token=` (POST /v1/runs/:runId/stream-token). ' +
          '`Last-Event-ID` (or `?lastEventId=`) resumes after that event.',
        params: RunParams,
        querystring: EventsQuery,
        headers: EventsHeaders,
        response: { ...Errors },
      },
    },
    async (request, reply) => {
      const team = teamOf(request);
      const { runId } = request.params;
      const resumeAfter = BigInt(request.headers['last-event-id'] ?? request.query.lastEventId ?? 0);
      const snapshot = await runDetail(s, team, runId); // 404 before the stream starts
      const response = reply.raw;
      let closed = false;
      const write = (event: string, data: unknown, id?: string) => {
        if (!closed)
          response.write(`${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      let checking = Promise.resolve();
      const finish = () => {
        if (closed) return;
        write('end', {});
        closed = true;
        response.end();
      };
      const finishIfDone = () => {
        checking = checking
          .then(async () => {
            const status = await runStatus(s.prisma, runId);
            if (status === null || isFinished(status)) finish();
          })
          .catch(() => {}); // the database is away: the next final event (or the client's reconnect) decides
      };
      // Each stored event once: the replay and the live feed overlap, and the live feed skips what the replay
      // sent (by id; live events themselves may come out of order when several API instances consume).
      let replayed: Set<string> | null = new Set();
      const deliver = (message: RunMessage, fromHistory = false) => {
        if (message.id !== undefined) {
          if (replayed?.has(message.id)) return;
          if (fromHistory) replayed?.add(message.id);
        }
        write(message.type, message.data, message.id);
      };
      // Subscribed before the history is read: what arrives meanwhile waits, nothing falls in between.
      let waiting: RunMessage[] | null = [];
      const unsubscribe = s.hub.subscribe(runId, (message) => {
        if (waiting) return void waiting.push(message);
        deliver(message);
        if (FINAL_EVENTS.has(message.type)) finishIfDone();
      });
      const keepalive = setInterval(() => {
        if (!closed) response.write(': keepalive\n\n');
      }, KEEPALIVE_MS);
      // A stream outlives the request that authenticated it: its key is looked at again now and then,
      // and a revoked (or deleted) key ends the stream with an `unauthorized` event.
      const keyId = request.principal?.keyId ?? null;
      const keyCheck =
        keyId === null
          ? undefined
          : setInterval(() => {
              void s.prisma.apiKey
                .findUnique({ where: { id: keyId }, select: { revokedAt: true } })
                .then((key) => {
                  if (closed || (key && key.revokedAt === null)) return;
                  write('unauthorized', { error: { code: 'unauthorized', message: 'API key revoked' } });
                  closed = true;
                  response.end();
                })
                .catch(() => {}); // the database is away: the next check decides
            }, s.options.streamKeyCheckMs ?? KEY_CHECK_MS);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        closed = true;
        clearInterval(keepalive);
        clearInterval(keyCheck);
        unsubscribe();
        open.delete(response);
        s.metrics.sseClients.dec();
      };
      response.on('close', release);
      open.add(response);
      s.metrics.sseClients.inc();
      reply.hijack();
      // A client gone while the snapshot was read closed before the listener existed: nothing would release it.
      if (response.destroyed || request.raw.socket?.destroyed === true) return release();
      response.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no', // nginx: do not buffer the stream
      });
      write('run', snapshot);
      try {
        for (let after = resumeAfter; ; ) {
          const page = await runEventsAfter(s.prisma, runId, after, REPLAY_PAGE);
          for (const message of page) deliver(message, true);
          if (page.length < REPLAY_PAGE || closed) break;
          after = BigInt(page[page.length - 1].id as string);
        }
      } catch (error) {
        request.log.error({ err: error }, 'replaying run events failed');
        write('error', { error: { code: 'internal_error', message: 'the history could not be read' } });
      }
      const caughtUp = waiting;
      waiting = null;
      // Buffered live events older than the resume point were seen by the client already.
      for (const message of caughtUp)
        if (message.id === undefined || BigInt(message.id) > resumeAfter) deliver(message);
      setTimeout(() => {
        replayed = null;
      }, REPLAY_OVERLAP_MS).unref();
      // The run may have finished after the snapshot was read, its last events in the history: look again.
      finishIfDone();
    },
  );
};
