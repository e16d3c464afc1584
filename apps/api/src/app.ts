// The API, one plugin per concern. Public: /healthz, /readyz, /metrics, /docs, /dashboard (a static page).
// Team and admin keys: /v1 (rate-limited per team). Admin keys: /v1/admin, /admin/queues (bull-board).
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { createRedis } from '@rlhf/queue';
import { reconcileStages } from './reconcile.js';
import { admitSafely } from './admission.js';
import { authentication } from './auth.js';
import { bullBoard } from './bull-board.js';
import { dashboard } from './dashboard.js';
import { errorHandling } from './errors.js';
import { createEventConsumer, type EventConsumer } from './events/consumer.js';
import { metricsPlugin } from './metrics.js';
import { adminRoutes } from './routes/admin.js';
import { adminModelRoutes } from './routes/admin-models.js';
import { datasetRoutes } from './routes/datasets.js';
import { eventRoutes } from './routes/events.js';
import { graderRoutes } from './routes/graders.js';
import { healthRoutes } from './routes/health.js';
import { runRoutes } from './routes/runs.js';
import { stageDownloadRoutes } from './routes/stage-downloads.js';
import { evaluationRoutes } from './routes/evaluations.js';
import { modelRoutes } from './routes/models.js';
import { openaiRoutes } from './openai/routes.js';
import { workerRoutes } from './routes/workers.js';
import { NoQuery } from './schemas.js';
import { type ApiOptions, createServices, type Services } from './services.js';
import { serializerCompiler, validatorCompiler } from './validation.js';

/** Public routes for operators (probes, Prometheus): no query parameters either. */
const OPERATIONS_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);
/** Requests per minute of admin keys (teams have their own limit). */
const ADMIN_REQUESTS_PER_MINUTE = 6000;
/** Every 15 s: stages failed inside BullMQ are recorded, then runs not admitted yet (e.g. Redis was down) retried. */
const ADMISSION_INTERVAL_MS = 15_000;

export type App = FastifyInstance & { services: Services };

/**
 * Connections the kernel queues until the API accepts them (listen's backlog; Node's default is 511).
 * A burst of clients past it has its connections dropped and retried a second or more later.
 */
export const LISTEN_BACKLOG = 4096;

export async function buildApp(options: ApiOptions): Promise<App> {
  const services = await createServices(options);
  const app = Fastify({
    loggerInstance: options.logger,
    // Uploads stream past this limit (datasets have per-team limits); JSON bodies stay small.
    bodyLimit: 1024 * 1024,
    // Router errors (a malformed URL, a path parameter over maxParamLength) skip the error handler:
    // answer them in the same `{ error: { code, message } }` shape.
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      const status = error.statusCode ?? 400;
      const code = status === 414 ? 'uri_too_long' : 'bad_request';
      reply.status(status).send({ error: { code, message: error.message } });
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate('services', services);

  await app.register(errorHandling);
  // Unknown query parameters are refused like unknown body fields: one of our routes without a querystring
  // schema takes none (bull-board, /docs and the dashboard's static files keep their own rules).
  app.addHook('onRoute', (route) => {
    const ours = route.url.startsWith('/v1/') || OPERATIONS_ROUTES.has(route.url);
    if (ours && route.schema?.querystring === undefined)
      route.schema = { ...route.schema, querystring: NoQuery };
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'RLHF training service',
        version: '0.1.0',
        description:
          'Upload datasets, run SFT -> reward model -> PPO pipelines, follow their metrics and samples.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(metricsPlugin, { metrics: services.metrics });
  const background: Background = {};
  await app.register(healthRoutes, {
    services,
    ...(options.consumeEvents === false
      ? {}
      : { events: () => background.consumer?.health() ?? 'not started' }),
  });
  await app.register(bullBoard, { services });
  await app.register(dashboard);

  await app.register(
    async (v1) => {
      await v1.register(authentication, {
        prisma: services.prisma,
        adminKey: services.adminKey,
        guard: services.authGuard,
        verified: services.verifiedKeys,
        streamTokens: services.streamTokens,
      });
      await v1.register(rateLimit, {
        redis: services.redis,
        nameSpace: `${services.prefix}:api:rate:`,
        timeWindow: 60_000,
        keyGenerator: (request: FastifyRequest) =>
          request.principal?.team?.id ?? `admin:${request.principal?.keyId ?? 'env'}`,
        max: async (request: FastifyRequest) =>
          request.principal?.team?.requestsPerMinute ?? ADMIN_REQUESTS_PER_MINUTE,
      });
      await v1.register(datasetRoutes, { services });
      await v1.register(runRoutes, { services });
      await v1.register(stageDownloadRoutes, { services });
      await v1.register(eventRoutes, { services });
      await v1.register(graderRoutes, { services });
      await v1.register(modelRoutes, { services });
      await v1.register(evaluationRoutes, { services });
      await v1.register(openaiRoutes, { services });
      await v1.register(workerRoutes, { services });
      await v1.register(adminRoutes, { services, prefix: '/admin' });
      await v1.register(adminModelRoutes, { services, prefix: '/admin' });
    },
    { prefix: '/v1' },
  );

  await app.register(backgroundWork, { services, background });
  app.addHook('onClose', async () => services.close());
  return app as unknown as App;
}

/** What runs in the background, for readiness. */
interface Background {
  consumer?: EventConsumer;
}

// While the server is up: the event consumer, and a pass every 15 s (reconciliation, admission).
const backgroundWork = fp<{ services: Services; background: Background }>(
  async (app, { services, background }) => {
    const { options } = services;
    let consumer: EventConsumer | undefined;
    let timer: NodeJS.Timeout | undefined;
    app.addHook('onReady', async () => {
      if (options.consumeEvents !== false) {
        const reading = createRedis(options.redisUrl, { worker: true });
        reading.on('error', (error) => services.logger.debug({ err: error }, 'redis connection error'));
        consumer = createEventConsumer({
          prisma: services.prisma,
          artifacts: services.artifacts,
          redis: reading,
          commands: services.redis,
          prefix: services.prefix,
          consumer: options.consumerName as string,
          ...(options.claimIdleMs === undefined ? {} : { claimIdleMs: options.claimIdleMs }),
          hub: services.hub,
          logger: services.logger,
          onPersisted: (event) => services.metrics.eventsPersisted.inc({ type: event.type }),
          onStageFinished: async (teamId) => {
            await admitSafely(services, teamId);
          },
        });
        await consumer.start();
        background.consumer = consumer;
      }
      const pass = async () => {
        try {
          await reconcileStages(services);
        } catch (error) {
          services.logger.error(
            { err: error },
            'reconciling stages with BullMQ failed; retried on the next pass',
          );
        }
        await admitSafely(services);
      };
      await pass();
      timer = setInterval(() => void pass(), ADMISSION_INTERVAL_MS);
      timer.unref();
    });
    app.addHook('preClose', async () => {
      clearInterval(timer);
      await consumer?.stop();
    });
  },
);
