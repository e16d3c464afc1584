// POST /v1/admin/models/scan: (re)registers the admin model directories of MODEL_DIRS (admin keys only).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { requireAdmin } from '../auth.js';
import { registerModelDirs } from '../model-dirs.js';
import { Errors } from '../schemas.js';
import type { Services } from '../services.js';

const closed = { additionalProperties: false } as const;
const ScanResult = Type.Object(
  {
    data: Type.Array(
      Type.Object(
        {
          dir: Type.String(),
          modelId: Type.Optional(
            Type.String({ description: 'the admin model, when the directory is valid' }),
          ),
          error: Type.Optional(Type.String({ description: 'why the directory was not registered' })),
        },
        closed,
      ),
    ),
  },
  closed,
);

export const adminModelRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services: s },
) => {
  app.addHook('onRequest', requireAdmin);
  app.post(
    '/models/scan',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Validate and register each MODEL_DIRS directory as an admin model (visible to every team, read-only, read in place)',
        response: { 200: ScanResult, ...Errors },
      },
    },
    async () => ({ data: await registerModelDirs(s, s.options.modelDirs ?? []) }),
  );
};
