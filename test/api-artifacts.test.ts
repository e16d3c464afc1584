// Artifacts over the real API: every one has the sha256 of its file (recorded when the worker wrote it),
// downloads are checked against it (a damaged file is a 500, never bad bytes), the list filters by kind and
// stage, and an unknown query parameter is a 400 naming it on every route, as unknown body fields are.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { saveCheckpoint } from '@rlhf/artifacts';
import { publishEvent, type StageEvent } from '@rlhf/queue';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestTeam, pipelineSpec, startApi, type TestApi, waitFor } from './api-helpers.js';

interface ArtifactItem {
  id: string;
  kind: string;
  key: string;
  stageId: string;
  sizeBytes: number;
  sha256: string | null;
}

const sha = (content: string) => createHash('sha256').update(content).digest('hex');

let api: TestApi;
let headers: { authorization: string };
let runId: string;
let stageIds: string[];
let datasetId: string;
const contents: Record<string, string> = {};

beforeAll(async () => {
  api = await startApi({ claimIdleMs: 50 });
  ({ headers } = await createTestTeam(api.app));
  const spec = await pipelineSpec(api.app, headers);
  datasetId = spec.stages[0].datasetId;
  const run = (await api.app.inject({ method: 'POST', url: '/v1/runs', headers, payload: spec })).json();
  runId = run.id;
  stageIds = run.stages.map((st: { id: string }) => st.id);
  const { artifacts } = api.app.services;
  const [sft, , ppo] = stageIds;
  const publish = (event: StageEvent) => publishEvent(api.app.services.redis, event, api.prefix);
  // What a worker writes: a checkpoint directory, a final model directory and an ONNX export.
  const checkpoint = await saveCheckpoint(artifacts, { runId, stageId: sft }, 4, {
    'model.safetensors': 'checkpoint weights',
  });
  await publish({
    type: 'artifact',
    runId,
    stageId: sft,
    kind: 'checkpoint',
    key: checkpoint.dir,
    bytes: 18,
    step: 4,
  });
  for (const [stageId, files] of [
    [sft, { 'config.json': '{"n_layer":1}', 'model.safetensors': 'sft final weights' }],
    [ppo, { 'model.safetensors': 'ppo final weights', 'policy.onnx': 'onnx bytes' }],
  ] as const) {
    const dir = `runs/${runId}/${stageId}/final`;
    for (const [name, content] of Object.entries(files)) {
      await artifacts.put(`${dir}/${name}`, content);
      contents[`${dir}/${name}`] = content;
    }
    await publish({ type: 'artifact', runId, stageId, kind: 'final', key: dir, bytes: 0 });
  }
  await waitFor(async () => (await list()).length === 6);
});
afterAll(() => api?.close());

async function list(query = ''): Promise<ArtifactItem[]> {
  const response = await api.app.inject({
    method: 'GET',
    url: `/v1/runs/${runId}/artifacts${query}`,
    headers,
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json().items;
}

describe('artifacts', () => {
  test('every artifact has the sha256 of its file', async () => {
    const items = await list();
    for (const item of items) {
      const content = contents[item.key] ?? (await api.app.services.artifacts.getText(item.key));
      expect(item.sha256, item.key).toBe(sha(content));
    }
    const one = await api.app.inject({
      method: 'GET',
      url: `/v1/runs/${runId}/artifacts/${items[0].id}`,
      headers,
    });
    expect(one.json().sha256).toBe(items[0].sha256);
  });

  test('the list filters by kind and by stage', async () => {
    const onnx = await list('?kind=onnx');
    expect(onnx.map((a) => a.key)).toEqual([`runs/${runId}/${stageIds[2]}/final/policy.onnx`]);
    expect((await list('?kind=checkpoint')).every((a) => a.kind === 'checkpoint')).toBe(true);
    expect((await list('?kind=checkpoint')).length).toBe(2); // model.safetensors + state.json
    const sftModels = await list(`?kind=model&stageId=${stageIds[0]}`);
    expect(sftModels.map((a) => a.key.split('/').pop()).sort()).toEqual(['config.json', 'model.safetensors']);
    const bad = await api.app.inject({
      method: 'GET',
      url: `/v1/runs/${runId}/artifacts?kind=weights`,
      headers,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/querystring \/kind/);
  });

  test('a download sends the checked sha256; a file damaged on disk is a 500 naming the artifact, not its bytes', async () => {
    const items = await list();
    const onnx = items.find((a) => a.key.endsWith('policy.onnx')) as ArtifactItem;
    const url = `/v1/runs/${runId}/artifacts/${onnx.id}/download`;
    const good = await api.app.inject({ method: 'GET', url, headers });
    expect(good.statusCode).toBe(200);
    expect(good.body).toBe('onnx bytes');
    expect(good.headers['x-content-sha256']).toBe(onnx.sha256);

    // Same size, other bytes, in place: what a bad disk does.
    await writeFile(api.app.services.artifacts.path(onnx.key), 'onnx BYTES', { flag: 'r+' });
    const damaged = await api.app.inject({ method: 'GET', url, headers });
    expect(damaged.statusCode).toBe(500);
    expect(damaged.headers['content-type']).toMatch(/application\/json/);
    const { error } = damaged.json();
    expect(error.code).toBe('artifact_corrupt');
    expect(error.message).toContain(onnx.id);
    expect(error.message).toContain(`recorded ${onnx.sha256}`);
    expect(damaged.body).not.toContain('onnx BYTES');
  });
});

describe('unknown query parameters', () => {
  test('are a 400 naming the parameter on routes with and without query parameters of their own', async () => {
    const items = await list();
    const routes: [string, string][] = [
      ['GET', `/v1/runs/${runId}/artifacts?kinds=onnx`],
      ['GET', `/v1/runs/${runId}/artifacts/${items[0].id}?kinds=onnx`],
      ['GET', `/v1/runs/${runId}/artifacts/${items[0].id}/download?kinds=onnx`],
      ['GET', `/v1/runs/${runId}?kinds=onnx`],
      ['GET', `/v1/runs?kinds=onnx`],
      ['GET', `/v1/runs/${runId}/metrics?kinds=onnx`],
      ['GET', `/v1/runs/${runId}/samples?kinds=onnx`],
      ['POST', `/v1/runs/${runId}/cancel?kinds=onnx`],
      ['GET', `/v1/datasets?kinds=onnx`],
      ['GET', `/v1/datasets/${datasetId}?kinds=onnx`],
      ['GET', `/v1/workers?kinds=onnx`],
      ['GET', '/healthz?kinds=onnx'],
      ['GET', '/readyz?kinds=onnx'],
      ['GET', '/metrics?kinds=onnx'],
    ];
    for (const [method, url] of routes) {
      const response = await api.app.inject({ method: method as 'GET', url, headers });
      expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(400);
      const { error } = response.json();
      expect(error.code, url).toBe('invalid_request');
      expect(error.message, url).toMatch(/^querystring \/kinds: /);
    }
    // The run was not cancelled by the refused request.
    const run = await api.app.inject({ method: 'GET', url: `/v1/runs/${runId}`, headers });
    expect(run.json().status).not.toBe('cancelled');
    // Known parameters still work.
    const page = await api.app.inject({ method: 'GET', url: '/v1/runs?limit=1', headers });
    expect(page.statusCode).toBe(200);
  });
});
