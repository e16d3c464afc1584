// bull-board served for offline use: its page links no stylesheet or font on the internet (it used to pull
// Google Fonts and stay on "Loading" without a network), and what it does link is served by the API.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ADMIN_KEY, startApi, type TestApi } from './api-helpers.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api?.close());

const admin = { authorization: `Bearer ${ADMIN_KEY}` };

test('the page and its stylesheets reference nothing on the internet, and its own assets load', async () => {
  const page = await api.app.inject({ method: 'GET', url: '/admin/queues', headers: admin });
  expect(page.statusCode).toBe(200);
  expect(page.headers['content-type']).toMatch(/^text\/html/);
  const html = page.body;
  expect(html).toContain('<div id="root">');
  expect(html).not.toMatch(/https?:\/\//);
  expect(html).not.toMatch(/fonts\.googleapis|fonts\.gstatic/);

  const stylesheets = [...html.matchAll(/<link\b[^>]*href="([^"]+\.css)"/g)].map((m) => m[1]);
  const scripts = [...html.matchAll(/<script\b[^>]*src="([^"]+)"/g)].map((m) => m[1]);
  expect(stylesheets.length).toBeGreaterThan(0);
  expect(scripts.length).toBeGreaterThan(0);
  for (const asset of [...stylesheets, ...scripts]) {
    const response = await api.app.inject({ method: 'GET', url: `/admin/queues/${asset}`, headers: admin });
    expect(response.statusCode, asset).toBe(200);
    if (asset.endsWith('.css')) {
      expect(response.body, asset).not.toMatch(/@import|url\(\s*["']?https?:/);
    }
  }
});
