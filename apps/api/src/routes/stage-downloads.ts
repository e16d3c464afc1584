// GET /v1/runs/:runId/stages/:stageId/model.tar: one download of a stage's whole model directory (HF layout).
import { tarSize, writeTarStream } from '@rlhf/artifacts';
import { Id } from '@rlhf/contracts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Readable } from 'node:stream';
import Type from 'typebox';
import { teamOf } from '../auth.js';
import { Errors, FileBody } from '../schemas.js';
import type { Services } from '../services.js';
import { stageModelArchive } from '../stage-downloads.js';

const StageParams = Type.Object({ runId: Id, stageId: Id }, { additionalProperties: false });

export const stageDownloadRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, opts) => {
  const s = opts.services;
  app.get(
    '/runs/:runId/stages/:stageId/model.tar',
    {
      schema: {
        tags: ['artifacts'],
        summary: "A finished stage's model as one tar of a Hugging Face directory",
        description:
          'config.json, generation_config.json, safetensors and tokenizer files at the top (what ' +
          '`AutoModelForCausalLM.from_pretrained` or, for a reward model, `AutoModelForSequenceClassification` ' +
          'loads); a LoRA stage adds its PEFT adapter under `adapter/`. `curl … | tar -xf - -C my-model`. ' +
          'The archive re-imports as it is with POST /v1/models. 409 while the stage has not finished.',
        params: StageParams,
        response: { 200: FileBody, ...Errors },
      },
    },
    async (request, reply) => {
      const { runId, stageId } = request.params;
      const archive = await stageModelArchive(s, teamOf(request), runId, stageId);
      return reply
        .header('content-type', 'application/x-tar')
        .header('content-length', tarSize(archive.members))
        .header('content-disposition', `attachment; filename="${archive.filename}"`)
        .send(Readable.from(writeTarStream(archive.members)));
    },
  );
};
