// POST /v1/evaluations, GET /v1/evaluations[/:evaluationId], GET /v1/leaderboard
import { EVAL_JUDGE_TYPES, Id } from '@rlhf/contracts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { teamOf } from '../auth.js';
import {
  createEvaluation,
  evaluationQueue,
  evaluationView,
  findEvaluation,
  listEvaluations,
  teamLeaderboard,
} from '../evaluations.js';
import type { Services } from '../services.js';

const closed = { additionalProperties: false } as const;
const EvaluationParams = Type.Object({ evaluationId: Id }, closed);
const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
  },
  closed,
);
const LeaderboardQuery = Type.Object(
  {
    judge: Type.Optional(
      Type.Enum([...EVAL_JUDGE_TYPES], { description: 'only comparisons by this kind of judge' }),
    ),
  },
  closed,
);

export const evaluationRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services: s },
) => {
  app.addHook('onClose', async () => evaluationQueue(s).close());

  app.post(
    '/evaluations',
    { schema: { tags: ['evaluations'], summary: 'Compare two or more models on a prompt set with a judge' } },
    async (request, reply) =>
      reply.status(201).send(evaluationView(await createEvaluation(s, teamOf(request), request.body))),
  );
  app.get(
    '/evaluations',
    {
      schema: {
        tags: ['evaluations'],
        summary: "The team's evaluations, newest first",
        querystring: ListQuery,
      },
    },
    async (request) => {
      const { rows, nextCursor } = await listEvaluations(s, teamOf(request), {
        ...(request.query.cursor ? { cursor: request.query.cursor } : {}),
        limit: request.query.limit ?? 20,
      });
      return { items: rows.map(evaluationView), nextCursor };
    },
  );
  app.get(
    '/evaluations/:evaluationId',
    {
      schema: {
        tags: ['evaluations'],
        summary:
          'An evaluation: status, and when done per pair win / tie / loss, win rate with a 95 % interval, verdicts',
        params: EvaluationParams,
      },
    },
    async (request) => evaluationView(await findEvaluation(s, teamOf(request), request.params.evaluationId)),
  );
  app.get(
    '/leaderboard',
    {
      schema: {
        tags: ['evaluations'],
        summary:
          'Ratings (Bradley–Terry, Elo scale, bootstrap 95 % intervals) of every model the team compared',
        querystring: LeaderboardQuery,
      },
    },
    async (request) => teamLeaderboard(s, teamOf(request), request.query.judge),
  );
};
