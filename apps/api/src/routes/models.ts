// POST /v1/models (a tar of an HF model directory), GET /v1/models[/:modelId], DELETE /v1/models/:modelId
import type { Readable } from 'node:stream';
import { Id, RegisteredModelView } from '@rlhf/contracts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { teamOf } from '../auth.js';
import { notFound } from '../errors.js';
import { deleteModel, findModel, modelPage, modelView, registerModel } from '../models.js';
import { findFineTunedModel, listFineTunedModels } from '../openai/fine-tuned-models.js';
import { Errors } from '../schemas.js';
import type { Services } from '../services.js';

const closed = { additionalProperties: false } as const;
// A registered model's id, or a fine-tuned model's `ft:<base>:<team>:<suffix>:<run id>`.
const ModelParams = Type.Object(
  { modelId: Type.Union([Id, Type.String({ maxLength: 512, pattern: '^ft:[^\\u0000-\\u001f/]+$' })]) },
  closed,
);
// OpenAI's model object of a succeeded fine-tuning job.
const FineTunedModelView = Type.Object(
  { id: Type.String(), object: Type.Literal('model'), created: Type.Integer(), owned_by: Type.String() },
  closed,
);
const AnyModelView = Type.Union([RegisteredModelView, FineTunedModelView]);
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
    data: Type.Array(AnyModelView, {
      description: "registered models; the team's fine-tuned models follow them on the last page",
    }),
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
          'Accepted files: config.json and model.safetensors, or sharded model-0000i-of-0000n.safetensors + ' +
          'model.safetensors.index.json (required), generation_config.json, tokenizer.json, tokenizer_config.json, ' +
          'special_tokens_map.json, chat_template.jinja; a PEFT LoRA adapter under adapter/ (or its two files alone, ' +
          'base_model_name_or_path naming a registered model: its files are linked in, not uploaded again). ' +
          'The body is streamed to a temporary directory and validated ' +
          "there; nothing is stored unless it all is valid (413 past the team's maxUploadBytes).",
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
        summary:
          "The team's registered models and the admin models (MODEL_DIRS), newest first, then its fine-tuned models",
        querystring: ModelListQuery,
        response: { 200: ModelList, ...Errors },
      },
    },
    async (request) => {
      const { cursor } = request.query;
      const team = teamOf(request);
      const { rows, nextCursor } = await modelPage(s, team, {
        ...(cursor ? { cursor } : {}),
        limit: request.query.limit ?? 50,
      });
      // Fine-tuned models on the last page: a client that follows nextCursor sees every model once.
      const fineTuned = nextCursor === null ? await listFineTunedModels(s, team) : [];
      return { object: 'list' as const, data: [...rows.map(modelView), ...fineTuned], nextCursor };
    },
  );

  app.get(
    '/models/:modelId',
    {
      schema: {
        tags: ['models'],
        summary: 'One registered model, or a fine-tuned model (ft:…)',
        params: ModelParams,
        response: { 200: AnyModelView, ...Errors },
      },
    },
    async (request) => {
      const { modelId } = request.params;
      if (!modelId.startsWith('ft:')) return modelView(await findModel(s, teamOf(request), modelId));
      const found = await findFineTunedModel(s, teamOf(request), modelId);
      if (!found) throw notFound('model', modelId);
      return found.model;
    },
  );

  app.delete(
    '/models/:modelId',
    {
      schema: {
        tags: ['models'],
        summary: 'Delete a registered model no run uses (an admin model is read-only: 403)',
        params: Type.Object({ modelId: Id }, closed),
        response: { 204: Type.Null(), ...Errors },
      },
    },
    async (request, reply) => {
      await deleteModel(s, teamOf(request), request.params.modelId);
      return reply.status(204).send(null);
    },
  );
};
