// Prometheus metrics of the API process (prom-client), one registry per app, scraped at GET /metrics.
import type {} from '@fastify/swagger'; // the `hide` schema option
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status_code'>;
  httpDuration: Histogram<'method' | 'route'>;
  runsCreated: Counter;
  runsAdmitted: Counter;
  datasetsUploaded: Counter;
  uploadRejected: Counter<'reason'>;
  eventsPersisted: Counter<'type'>;
  sseClients: Gauge;
}

/** `stageJobs` reads BullMQ's job counts at scrape time. */
export function createApiMetrics(stageJobs: () => Promise<Record<string, number>>): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rlhf_api_' });
  const registers = [registry];
  new Gauge({
    name: 'rlhf_stage_jobs',
    help: 'Stage jobs in the BullMQ queue by state',
    labelNames: ['state'],
    registers,
    async collect() {
      for (const [state, count] of Object.entries(await stageJobs())) this.set({ state }, count);
    },
  });
  return {
    registry,
    httpRequests: new Counter({
      name: 'rlhf_api_http_requests_total',
      help: 'HTTP requests by method, route and status code',
      labelNames: ['method', 'route', 'status_code'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'rlhf_api_http_request_duration_seconds',
      help: 'HTTP request duration by method and route',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    }),
    runsCreated: new Counter({ name: 'rlhf_api_runs_created_total', help: 'Runs created', registers }),
    runsAdmitted: new Counter({
      name: 'rlhf_api_runs_admitted_total',
      help: 'Runs admitted to the queue (their BullMQ flow added)',
      registers,
    }),
    datasetsUploaded: new Counter({
      name: 'rlhf_api_datasets_uploaded_total',
      help: 'Datasets stored',
      registers,
    }),
    uploadRejected: new Counter({
      name: 'rlhf_api_dataset_uploads_rejected_total',
      help: 'Dataset uploads refused, by reason',
      labelNames: ['reason'],
      registers,
    }),
    eventsPersisted: new Counter({
      name: 'rlhf_api_events_persisted_total',
      help: 'Worker events written to Postgres, by type',
      labelNames: ['type'],
      registers,
    }),
    sseClients: new Gauge({ name: 'rlhf_api_sse_clients', help: 'Open SSE streams', registers }),
  };
}

/** Counts and times every request; serves GET /metrics (text exposition format). */
export const metricsPlugin = fp<{ metrics: ApiMetrics }>(async (app: FastifyInstance, { metrics }) => {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status_code: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
});
