// GET /dashboard: a static page anyone may load, locked down by its Content-Security-Policy; its data
// comes from /v1 with the key the user enters, so the page itself carries no secret.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ADMIN_KEY, createTestTeam, startApi, type TestApi } from './api-helpers.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ consumeEvents: false });
});
afterAll(() => api?.close());

const directive = (csp: string, name: string): string[] =>
  csp
    .split(';')
    .map((part) => part.trim().split(/\s+/))
    .find(([first]) => first === name)
    ?.slice(1) ?? [];

test('the page is served without a key as HTML that runs only its own inline script', async () => {
  const response = await api.app.inject({ method: 'GET', url: '/dashboard' });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(response.body).toMatch(/^<!doctype html>/);

  const csp = String(response.headers['content-security-policy']);
  expect(directive(csp, 'default-src')).toEqual(["'none'"]);
  expect(directive(csp, 'connect-src')).toEqual(["'self'"]);
  // Scripts: only the page's inline block, by its hash; no hosts, schemes, wildcards or 'unsafe-inline'.
  const script = /<script>([\s\S]*?)<\/script>/.exec(response.body)?.[1] ?? '';
  expect(script).toContain('/v1/runs');
  const hash = `'sha256-${createHash('sha256').update(script).digest('base64')}'`;
  expect(directive(csp, 'script-src')).toEqual([hash]);
  expect(response.body).not.toMatch(/<script[^>]*\ssrc=/i);
  expect(response.body).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
});

test('the page contains no key or secret, and the API behind it still needs one', async () => {
  const { key } = await createTestTeam(api.app);
  const page = (await api.app.inject({ method: 'GET', url: '/dashboard' })).body;
  expect(page).not.toContain(key);
  expect(page).not.toContain(ADMIN_KEY);
  expect(page).not.toMatch(/rlhf_[0-9a-f]{12}_/);
  expect(page).not.toMatch(/Bearer [A-Za-z0-9]/);
  const runs = await api.app.inject({ method: 'GET', url: '/v1/runs' });
  expect(runs.statusCode).toBe(401);
});
