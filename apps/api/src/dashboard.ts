// GET /dashboard: a live page of the team's runs, evaluations and leaderboard. The page is static and public;
// everything it shows comes from /v1 with the key the user types in (kept in the browser's localStorage, sent
// as a Bearer header). Its routes (/dashboard, /dashboard/runs/:runId, /dashboard/workers,
// /dashboard/leaderboard, /dashboard/evaluations[/:evaluationId]) are one HTML shell; the page's script and
// styles are files of their own under /dashboard/static/, so the CSP admits only this origin's files.
import { readFile } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';

const DIRECTORY = new URL('./dashboard/', import.meta.url);
/** The page's ES modules (app.js the entry, one module per page and what pages share). */
const DASHBOARD_SCRIPTS = [
  'app.js',
  'chart.js',
  'dom.js',
  'session.js',
  'runs.js',
  'workers.js',
  'run.js',
  'run-views.js',
  'run-metrics.js',
  'run-samples.js',
  'evaluation-views.js',
  'evaluation-results.js',
  'evaluations.js',
  'leaderboard.js',
];
/** The static files: name -> content type. Nothing else under the directory is served. */
const ASSETS: Record<string, string> = {
  ...Object.fromEntries(DASHBOARD_SCRIPTS.map((name) => [name, 'text/javascript; charset=utf-8'])),
  'app.css': 'text/css; charset=utf-8',
};
/** The client-side routes, each answered with the same shell (the script reads location.pathname). */
const PAGES = [
  '/dashboard',
  '/dashboard/',
  '/dashboard/runs/:runId',
  '/dashboard/workers',
  '/dashboard/leaderboard',
  '/dashboard/evaluations',
  '/dashboard/evaluations/:evaluationId',
];

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function secured(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache');
}

export async function dashboard(app: FastifyInstance): Promise<void> {
  const html = await readFile(new URL('index.html', DIRECTORY), 'utf8');
  const assets = new Map<string, { body: string; type: string }>();
  for (const [name, type] of Object.entries(ASSETS)) {
    assets.set(name, { body: await readFile(new URL(name, DIRECTORY), 'utf8'), type });
  }

  for (const url of PAGES) {
    app.get(url, { schema: { hide: true } }, async (_request, reply) =>
      secured(reply).type('text/html; charset=utf-8').send(html),
    );
  }
  app.get<{ Params: { file: string } }>(
    '/dashboard/static/:file',
    { schema: { hide: true } },
    async (request, reply) => {
      const asset = assets.get(request.params.file);
      if (!asset) {
        return reply.status(404).send({ error: { code: 'not_found', message: 'no such dashboard file' } });
      }
      return secured(reply).type(asset.type).send(asset.body);
    },
  );
}
