// GET /healthz (the process is up) and GET /readyz (Postgres and Redis answer, and the event consumer,
// where this process runs one, reads the events stream): no authentication.
import type {} from '@fastify/swagger'; // the `hide` schema option
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.js';

const CHECK_TIMEOUT_MS = 2000;

async function probe(check: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
    return 'ok';
  } catch (error) {
    return (error as Error).message.split('\n')[0];
  } finally {
    clearTimeout(timer);
  }
}

export interface HealthOptions {
  services: Services;
  /** The event consumer's health ('ok' or why not); absent when this process runs none. */
  events?: () => string;
}

export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, { services: s, events }) => {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const [postgres, redis] = await Promise.all([
      probe(() => s.prisma.$queryRaw`SELECT 1`),
      probe(() => s.redis.ping()),
    ]);
    const checks = { postgres, redis, ...(events ? { events: events() } : {}) };
    const ready = Object.values(checks).every((check) => check === 'ok');
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });
};
