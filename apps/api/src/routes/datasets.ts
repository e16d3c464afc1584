// POST /v1/datasets (JSONL upload), GET /v1/datasets, GET /v1/datasets/:datasetId
import type { Readable } from 'node:stream';
import { Dataset } from '@rlhf/contracts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { teamOf } from '../auth.js';
import { datasetPage, findDataset, uploadDataset } from '../datasets.js';
import { DatasetListQuery, DatasetPage, DatasetParams, Errors, UploadQuery } from '../schemas.js';
import type { Services } from '../services.js';
import { datasetView } from '../views.js';

export const datasetRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services: s },
) => {
  // Uploads are streamed to the validator as they arrive, whatever their content type (JSONL has no
  // registered one: application/jsonl, application/x-ndjson, text/plain and octet-stream are common).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  app.post(
    '/datasets',
    {
      schema: {
        tags: ['datasets'],
        summary: 'Upload a JSONL dataset (the request body), validated line by line',
        description:
          'Send the file as the raw body, e.g. `curl --data-binary @train.jsonl -H "content-type: application/jsonl"`. ' +
          'Rows by kind: sft `{prompt, response}` or `{messages}`, preference `{prompt, chosen, rejected}`, ' +
          'ranked `{prompt, responses}` (best first), prompt `{prompt}`. Uploading the same content again returns the stored dataset (200).',
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
