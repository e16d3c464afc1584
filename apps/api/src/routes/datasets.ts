// POST /v1/datasets (JSONL upload), GET /v1/datasets, GET /v1/datasets/:datasetId
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { Dataset } from '@rlhf/contracts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { teamOf } from '../auth.js';
import { datasetPage, findDataset, uploadDataset } from '../datasets.js';
import { DatasetListQuery, DatasetPage, DatasetParams, Errors, UploadQuery } from '../schemas.js';
import type { Services } from '../services.js';
import { datasetView } from '../views.js';

/** How long a refused upload's client may go on sending (discarded) before its socket is destroyed. */
const REFUSED_GRACE_MS = 1000;

export const datasetRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services: s },
) => {
  // Uploads are streamed to the validator as they arrive, whatever their content type (JSONL has no
  // registered one: application/jsonl, application/x-ndjson, text/plain and octet-stream are common).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  // A refused upload is answered while the client may still be sending: the connection is closed after
  // the reply instead of being left half-read (keep-alive would wait for the rest, and so would a graceful
  // shutdown). The reply goes out first, then our side ends; what the client still sends is discarded and
  // the socket destroyed after a short grace (or at once when the app closes).
  const refused = new Set<Socket>();
  // The request's own socket is gone once its stream was destroyed (a refusal while reading): the
  // response's is the connection. Injected requests have none.
  const halfRead = (request: FastifyRequest, reply: FastifyReply) =>
    reply.raw.socket instanceof Socket && !request.raw.complete;
  app.addHook('onSend', async (request, reply) => {
    if (reply.statusCode >= 400 && halfRead(request, reply)) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    if (!halfRead(request, reply)) return;
    const socket = reply.raw.socket as Socket;
    if (socket.destroyed) return;
    request.raw.resume(); // discard the rest
    refused.add(socket);
    const timer = setTimeout(() => socket.destroy(), REFUSED_GRACE_MS);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      refused.delete(socket);
    });
    socket.end();
  });
  app.addHook('preClose', async () => {
    for (const socket of refused) socket.destroy();
  });

  app.post(
    '/datasets',
    {
      schema: {
        tags: ['datasets'],
        summary: 'Upload a JSONL dataset (the request body), validated line by line',
        description:
          'Send the file as the raw body, e.g. `curl --data-binary @train.jsonl -H "content-type: application/jsonl"`. ' +
          'Rows by kind: sft `{prompt, response}` or `{messages}`, preference `{prompt, chosen, rejected}`, ' +
          'ranked `{prompt, responses}` (best first), prompt `{prompt}`. The same name, kind and content again returns the stored dataset (200); the same content under another name is a new dataset (201) on the same stored file.',
        querystring: UploadQuery,
        response: { 200: Dataset, 201: Dataset, ...Errors },
      },
    },
    async (request, reply) => {
      const team = teamOf(request);
      const declared = request.headers['content-length'];
      const { dataset, created } = await uploadDataset(s, team, {
        name: request.query.name,
        kind: request.query.kind,
        body: (request.body ?? request.raw) as Readable,
        ...(declared === undefined ? {} : { declaredBytes: Number(declared) }),
      });
      return reply.status(created ? 201 : 200).send(datasetView(dataset));
    },
  );

  app.get(
    '/datasets',
    {
      schema: {
        tags: ['datasets'],
        summary: "The team's datasets, newest first",
        querystring: DatasetListQuery,
        response: { 200: DatasetPage, ...Errors },
      },
    },
    async (request) => {
      const { kind, cursor } = request.query;
      const { rows, nextCursor } = await datasetPage(s, teamOf(request), {
        ...(kind ? { kind } : {}),
        ...(cursor ? { cursor } : {}),
        limit: request.query.limit ?? 50,
      });
      return { items: rows.map(datasetView), nextCursor };
    },
  );

  app.get(
    '/datasets/:datasetId',
    {
      schema: {
        tags: ['datasets'],
        summary: 'One dataset',
        params: DatasetParams,
        response: { 200: Dataset, ...Errors },
      },
    },
    async (request) => datasetView(await findDataset(s, teamOf(request), request.params.datasetId)),
  );
};
