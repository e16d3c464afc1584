// bull-board at /admin/queues, for admin keys only (bull-board has no auth of its own). Browsers are
// asked for Basic credentials: any user name, the admin key as password. Read-only: Postgres is the
// source of truth for runs, so jobs are changed through the API (cancel), not here.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyPluginAsync } from 'fastify';
import { authentication, requireAdmin } from './auth.js';
import type { Services } from './services.js';

export const BULL_BOARD_PATH = '/admin/queues';

// bull-board's page links Google Fonts; offline (or behind a firewall) that stylesheet never loads and the
// page stays on "Loading". Its own CSS and the system fonts are enough: external stylesheets are dropped.
const EXTERNAL_STYLESHEET = /<link\b[^>]*\bhref="https?:\/\/[^"]*"[^>]*>\s*/gi;
export const withoutExternalStylesheets = (html: string): string => html.replace(EXTERNAL_STYLESHEET, '');

export const bullBoard: FastifyPluginAsync<{ services: Services }> = async (app, { services: s }) => {
  await app.register(authentication, {
    prisma: s.prisma,
    adminKey: s.adminKey,
    guard: s.authGuard,
    basicRealm: 'rlhf admin',
  });
  app.addHook('onRequest', requireAdmin);
  app.addHook('onSend', async (_request, reply, payload) => {
    const type = String(reply.getHeader('content-type') ?? '');
    return typeof payload === 'string' && type.startsWith('text/html')
      ? withoutExternalStylesheets(payload)
      : payload;
  });
  const adapter = new FastifyAdapter();
  adapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({ queues: [new BullMQAdapter(s.queue, { readOnlyMode: true })], serverAdapter: adapter });
  await app.register(adapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
};
