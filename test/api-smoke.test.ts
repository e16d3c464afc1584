import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestTeam, pipelineSpec, startApi, type TestApi } from './api-helpers.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api?.close());

test('smoke', async () => {
  const { headers } = await createTestTeam(api.app);
  const spec = await pipelineSpec(api.app, headers);
  const r = await api.app.inject({ method: 'POST', url: '/v1/runs', headers, payload: spec });
  console.log(r.statusCode, r.body.slice(0, 3000));
  const l = await api.app.inject({ method: 'GET', url: '/v1/runs', headers });
  console.log(l.statusCode, l.body.slice(0, 300));
  const d = await api.app.inject({ method: 'GET', url: '/docs/json' });
  console.log(d.statusCode, d.body.slice(0, 300));
  expect(r.statusCode).toBe(201);
});
