// GET /dashboard: a live page of the team's runs. The page is static and public; everything it shows comes
// from /v1 with the key the user types in (kept in the browser's localStorage, sent as a Bearer header).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

const PAGE = new URL('./dashboard/index.html', import.meta.url);

/** CSP hashes of the page's inline `<script>` or `<style>` blocks: only they run, nothing remote or injected. */
function inlineHashes(html: string, tag: 'script' | 'style'): string[] {
  const blocks = html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'));
  return [...blocks].map((m) => `'sha256-${createHash('sha256').update(m[1]).digest('base64')}'`);
}

export async function dashboard(app: FastifyInstance): Promise<void> {
  const html = await readFile(PAGE, 'utf8');
  const csp = [
    "default-src 'none'",
    `script-src ${inlineHashes(html, 'script').join(' ')}`,
    `style-src ${inlineHashes(html, 'style').join(' ')}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');

  app.get('/dashboard', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .header('content-security-policy', csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .type('text/html; charset=utf-8')
      .send(html),
  );
}
