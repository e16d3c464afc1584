// /v1/admin: teams, their limits and their keys; events the API could not store (admin keys only).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { requireAdmin } from '../auth.js';
import { notFound } from '../errors.js';
import { listDeadLetters, replayDeadLetters } from '../events/dead-letter.js';
import {
  CreatedKeyView,
  DeadEventList,
  DeadEventsQuery,
  DeadEventsReplayBody,
  DeadEventsReplayed,
  Errors,
  KeyBody,
  KeyParams,
  TeamBody,
  TeamLimitsBody,
  TeamList,
  TeamParams,
  TeamView,
} from '../schemas.js';
import type { Services } from '../services.js';
import { createApiKey, createTeam, listTeams, revokeApiKey, teamById, updateTeam } from '../teams.js';
import { teamView } from '../views.js';

export const adminRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services: s },
) => {
  app.addHook('onRequest', requireAdmin);

  app.post(
    '/teams',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create a team (limits default to 2 active runs, 100 MiB uploads, 600 requests/minute)',
        body: TeamBody,
        response: { 201: TeamView, ...Errors },
      },
    },
    async (request, reply) => {
      const { name, ...limits } = request.body;
      return reply.status(201).send(teamView(await createTeam(s.prisma, name, limits)));
    },
  );

  app.get(
    '/teams',
    { schema: { tags: ['admin'], summary: 'Every team', response: { 200: TeamList, ...Errors } } },
    async () => ({ items: (await listTeams(s.prisma)).map(teamView) }),
  );

  app.patch(
    '/teams/:teamId',
    {
      schema: {
        tags: ['admin'],
        summary: "Change a team's limits",
        params: TeamParams,
        body: TeamLimitsBody,
        response: { 200: TeamView, ...Errors },
      },
    },
    async (request) => {
      const team = await updateTeam(s.prisma, request.params.teamId, request.body);
      s.verifiedKeys.clear(); // the new limits apply to the next request
      return teamView(team);
    },
  );

  app.post(
    '/teams/:teamId/keys',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create an API key for a team; the key is in this response only',
        params: TeamParams,
        body: KeyBody,
        response: { 201: CreatedKeyView, ...Errors },
      },
    },
    async (request, reply) => {
      const team = await teamById(s.prisma, request.params.teamId);
      if (!team) throw notFound('team', request.params.teamId);
      const key = await createApiKey(s.prisma, { teamId: team.id, name: request.body?.name ?? 'default' });
      return reply.status(201).send({ ...key, createdAt: key.createdAt.toISOString() });
    },
  );

  app.get(
    '/dead-events',
    {
      schema: {
        tags: ['admin'],
        summary: 'Worker events that could not be stored (dead letters), newest first',
        querystring: DeadEventsQuery,
        response: { 200: DeadEventList, ...Errors },
      },
    },
    async (request) => listDeadLetters(s.redis, s.prefix, request.query.limit ?? 100),
  );

  app.post(
    '/dead-events/replay',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Send dead letters back to the events stream once their cause is fixed (each at most once; stored idempotently or dead-lettered again)',
        body: DeadEventsReplayBody,
        response: { 200: DeadEventsReplayed, ...Errors },
      },
    },
    async (request) => {
      const result = await replayDeadLetters(s.redis, s.prefix, request.body.ids);
      request.log.info(
        { replayed: result.replayed.length, missing: result.missing.length },
        'dead letters replayed',
      );
      return result;
    },
  );

  app.delete(
    '/keys/:keyId',
    {
      schema: {
        tags: ['admin'],
        summary: 'Revoke an API key',
        params: KeyParams,
        response: { 204: Type.Null(), ...Errors },
      },
    },
    async (request, reply) => {
      if (!(await revokeApiKey(s.prisma, request.params.keyId)))
        throw notFound('API key', request.params.keyId);
      s.verifiedKeys.clear(); // refused from the next request on
      return reply.status(204).send(null);
    },
  );
};
