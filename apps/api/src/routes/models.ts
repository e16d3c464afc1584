// POST /v1/models (a tar of an HF model directory), GET /v1/models[/:modelId], DELETE /v1/models/:modelId
import type { Readable } from 'node:stream';
import { Id, RegisteredModelView } from '@rlhf/contracts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { teamOf } from '../auth.js';
import { deleteModel, findModel, modelPage, modelView, registerModel } from '../models.js';
import { Errors } from '../schemas.js';
import type { Services } from '../services.js';

const closed = { additionalProperties: false } as const;
const ModelParams = Type.Object({ modelId: Id }, closed);
const ModelUploadQuery = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: '^[^\\u0000-\\u001f]+$',
      description: 'a name for the model, unique within the team',
    }),
  },
  closed,
);
// OpenAI's list shape (`object: 'list'`, `data`), so its clients' models.list() reads it too.
const ModelList = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(RegisteredModelView),
    nextCursor: Type.Union([Type.String(), Type.Null()], {
      description: 'cursor of the next page; null = last',
    }),
  },
  closed,
);
const ModelListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'page size (default 50)' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
  },
  closed,
);

export const modelRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services: s },
) => {
  // The archive is read as it arrives, whatever its content type (application/x-tar, octet-stream).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  app.post(
    '/models',
    {
      schema: {
        tags: ['models'],
        summary: 'Register a Hugging Face model directory, uploaded as one tar archive (the request body)',
        description:
          'e.g. `tar -cf - -C my-model . | curl --data-binary @- -H "content-type: application/x-tar" …/v1/models?name=my-model`. ' +
          'Accepted files: config.json and model.safetensors (required), generation_config.json, tokenizer.json, ' +
          'tokenizer_config.json, special_tokens_map.json, chat_template.jinja. Everything is validated before anything is stored.',
        querystring: ModelUploadQuery,
        response: { 201: RegisteredModelView, ...Errors },
      },
    },
    async (request, reply) => {
      const declared = request.headers['content-length'];
      const row = await registerModel(s, teamOf(request), {
        name: request.query.name,
        body: (request.body ?? request.raw) as Readable,
        ...(declared === undefined ? {} : { declaredBytes: Number(declared) }),
      });
      return reply.status(201).send(modelView(row));
    },
  );

  app.get(
    '/models',
    {
      schema: {
        tags: ['models'],
        summary: "The team's registered models, newest first",
        querystring: ModelListQuery,
        response: { 200: ModelList, ...Errors },
      },
    },
    async (request) => {
      const { cursor } = request.query;
      const { rows, nextCursor } = await modelPage(s, teamOf(request), {
        ...(cursor ? { cursor } : {}),
        limit: request.query.limit ?? 50,
      });
      return { object: 'list' as const, data: rows.map(modelView), nextCursor };
    },
  );

  app.get(
    '/models/:modelId',
    {
      schema: {
        tags: ['models'],
        summary: 'One registered model',
        params: ModelParams,
        response: { 200: RegisteredModelView, ...Errors },
      },
    },
    async (request) => modelView(await findModel(s, teamOf(request), request.params.modelId)),
  );

  app.delete(
    '/models/:modelId',
    {
      schema: {
        tags: ['models'],
        summary: 'Delete a registered model no run uses',
        params: ModelParams,
        response: { 204: Type.Null(), ...Errors },
      },
    },
    async (request, reply) => {
      await deleteModel(s, teamOf(request), request.params.modelId);
      return reply.status(204).send(null);
    },
  );
};
