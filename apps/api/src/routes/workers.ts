// GET /v1/workers: the worker processes that sent a heartbeat recently (from Redis).
import type { WorkerInfo } from '@rlhf/contracts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { listWorkers } from '@rlhf/queue';
import { teamStageIds } from '../run-store.js';
import { Errors, WorkerList } from '../schemas.js';
import type { Services } from '../services.js';

export const workerRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services: s },
) => {
  app.get(
    '/workers',
    {
      schema: {
        tags: ['workers'],
        summary: 'Live workers: device, current stage (job id), last heartbeat',
        description:
          "A team sees the ids of its own stages only; another team's job shows as busy with stageId null.",
        response: { 200: WorkerList, ...Errors },
      },
    },
    async (request) => {
      const workers = await listWorkers(s.redis, s.prefix);
      const principal = request.principal;
      const stageIds = workers.flatMap((w) => (w.currentStageId ? [w.currentStageId] : []));
      const visible = principal?.isAdmin
        ? new Set(stageIds)
        : await teamStageIds(s.prisma, principal?.team?.id ?? '', stageIds);
      const items: WorkerInfo[] = workers.map((w) => ({
        id: w.workerId,
        hostname: w.hostname,
        device: w.device,
        status: w.currentStageId ? 'busy' : 'idle',
        stageId: w.currentStageId && visible.has(w.currentStageId) ? w.currentStageId : null,
        lastSeenAt: w.lastHeartbeat,
      }));
      return { items };
    },
  );
};
