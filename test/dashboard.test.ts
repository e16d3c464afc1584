// GET /dashboard: a static page anyone may load, locked down by its Content-Security-Policy; its data
// comes from /v1 with the key the user enters, so the page itself carries no secret.
import { readdirSync } from 'node:fs';
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

// Every script of the page (the entry app.js and the modules it imports) and the styles.
const SCRIPTS = readdirSync(new URL('../apps/api/src/dashboard/', import.meta.url)).filter((name) =>
  name.endsWith('.js'),
);
const FILES = [...SCRIPTS.map((name) => `/dashboard/static/${name}`), '/dashboard/static/app.css'];

test('every dashboard route is the one HTML shell, which runs only scripts of its own origin', async () => {
  const shells = new Set<string>();
  for (const url of [
    '/dashboard',
    '/dashboard/',
    '/dashboard/runs/0000-any-id',
    '/dashboard/workers',
    '/dashboard/leaderboard',
    '/dashboard/evaluations',
    '/dashboard/evaluations/0000-any-id',
  ]) {
    const response = await api.app.inject({ method: 'GET', url });
    expect(response.statusCode, url).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body).toMatch(/^<!doctype html>/);
    shells.add(response.body);

    const csp = String(response.headers['content-security-policy']);
    expect(directive(csp, 'default-src')).toEqual(["'none'"]);
    expect(directive(csp, 'connect-src')).toEqual(["'self'"]);
    // Only this origin's files: no hosts, schemes, wildcards, 'unsafe-inline' or 'unsafe-eval'.
    expect(directive(csp, 'script-src')).toEqual(["'self'"]);
    expect(directive(csp, 'style-src')).toEqual(["'self'"]);
  }
  expect(shells.size).toBe(1);
  const [html] = shells;
  // No inline script or style (the CSP would refuse them) and nothing from another host: it works offline.
  expect(html).not.toMatch(/<script>|<style>|\sstyle=|\son[a-z]+=/i);
  expect(html).toContain('src="/dashboard/static/app.js"');
  expect(html).toContain('href="/dashboard/static/app.css"');
  for (const url of FILES) {
    const file = await api.app.inject({ method: 'GET', url });
    expect(file.statusCode, url).toBe(200);
    expect(file.headers['content-type']).toMatch(url.endsWith('.css') ? /^text\/css/ : /^text\/javascript/);
    expect(file.headers['x-content-type-options']).toBe('nosniff');
    expect(file.body).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  }
  expect(SCRIPTS).toContain('app.js');
  const scripts = await Promise.all(
    SCRIPTS.map(
      async (name) => (await api.app.inject({ method: 'GET', url: `/dashboard/static/${name}` })).body,
    ),
  );
  for (const route of ['/v1/runs', '/v1/evaluations', '/v1/leaderboard'])
    expect(scripts.join('\n')).toContain(route);
  // Every module a script imports is one of the served files.
  for (const script of scripts)
    for (const [, name] of script.matchAll(/^import [^;]+ from '\.\/([\w-]+\.js)';$/gm))
      expect(SCRIPTS).toContain(name);
  // The navigation links every page.
  for (const page of [
    '/dashboard',
    '/dashboard/evaluations',
    '/dashboard/leaderboard',
    '/dashboard/workers',
  ]) {
    expect(html).toContain(`href="${page}" data-route`);
  }
});

test('only the listed files are served: other names, and paths out of the directory, are 404', async () => {
  for (const url of [
    '/dashboard/static/index.html',
    '/dashboard/static/..%2F..%2Fdashboard.ts',
    '/dashboard/static/%2e%2e%2fapp.js',
    '/dashboard/static/missing.js',
  ]) {
    const response = await api.app.inject({ method: 'GET', url });
    expect(response.statusCode, url).toBe(404);
    expect(response.body).not.toContain('import');
  }
});

test('the page contains no key or secret, and the API behind it still needs one', async () => {
  const { key } = await createTestTeam(api.app);
  for (const url of ['/dashboard', ...FILES]) {
    const page = (await api.app.inject({ method: 'GET', url })).body;
    expect(page).not.toContain(key);
    expect(page).not.toContain(ADMIN_KEY);
    expect(page).not.toMatch(/rlhf_[0-9a-f]{12}_/);
    expect(page).not.toMatch(/Bearer [A-Za-z0-9]/);
  }
  const runs = await api.app.inject({ method: 'GET', url: '/v1/runs' });
  expect(runs.statusCode).toBe(401);
});
