// GET /v1/runs/:runId/events: Server-Sent Events. First a `run` event with the run as it is, then each
// event the API persists for it (metrics, stage.progress, stage.completed, samples, artifact,
// run.updated, ...), then `end` once the run finished. Streams are closed when the app closes.
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { teamOf } from '../auth.js';
import { runStatus } from '../run-store.js';
import { runDetail } from '../runs.js';
import { Errors, RunParams } from '../schemas.js';
import type { Services } from '../services.js';
import { isFinished } from '../views.js';

const KEEPALIVE_MS = 15_000;
/** How often a stream re-checks its key by default: a revoked key's streams end within this. */
const KEY_CHECK_MS = 5_000;
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

  app.get(
    '/runs/:runId/events',
    {
      schema: {
        tags: ['runs'],
        summary: 'Live events of a run (text/event-stream)',
        params: RunParams,
        response: { ...Errors },
      },
    },
    async (request, reply) => {
      const team = teamOf(request);
      const { runId } = request.params;
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
      // Subscribe before sending the snapshot: nothing falls between the two.
      const unsubscribe = s.hub.subscribe(runId, (message) => {
        write(message.type, message.data, message.id);
        if (FINAL_EVENTS.has(message.type)) {
          checking = checking.then(async () => {
            const status = await runStatus(s.prisma, runId);
            if (status === null || isFinished(status)) finish();
          });
        }
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
      response.on('close', () => {
        closed = true;
        clearInterval(keepalive);
        clearInterval(keyCheck);
        unsubscribe();
        open.delete(response);
        s.metrics.sseClients.dec();
      });
      open.add(response);
      s.metrics.sseClients.inc();
      reply.hijack();
      response.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no', // nginx: do not buffer the stream
      });
      write('run', snapshot);
      if (isFinished(snapshot.status)) finish();
    },
  );
};
