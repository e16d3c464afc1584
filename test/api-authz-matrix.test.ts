// Authorization matrix generated from the OpenAPI document: every route it lists × {no key, malformed,
// unknown, revoked, other team, own team, admin}. No key, a bad key and a revoked one are 401; team keys
// on admin routes and admin keys on team routes are 403; another team's ids are 404 and its lists show
// nothing of the owner; nothing is ever a 500. A route added to the API is in the document, so in here.
import { randomBytes } from 'node:crypto';
import { createApiKey } from '@rlhf/api';
import { publishEvent } from '@rlhf/queue';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  ADMIN_KEY,
  createTestTeam,
  jsonl,
  pipelineSpec,
  registerModel,
  SFT_ROWS,
  startApi,
  type TestApi,
  type TestTeam,
  waitFor,
} from './api-helpers.js';

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
type Principal = 'none' | 'malformed' | 'unknown' | 'revoked' | 'other team' | 'own team' | 'admin';
const PRINCIPALS: Principal[] = [
  'none',
  'malformed',
  'unknown',
  'revoked',
  'other team',
  'own team',
  'admin',
];

/** Routes outside /v1/admin that admin keys may use (everything else there needs a team key). */
const ADMIN_ALSO = new Set(['GET /v1/workers']);

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  minimum?: number;
  minItems?: number;
  minLength?: number;
  format?: string;
  default?: unknown;
}
interface Operation {
  parameters?: { name: string; in: string; required?: boolean; schema?: Schema }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}

/** A minimal value satisfying `schema` (required properties only), for bodies no sample is given for. */
function sampleOf(schema: Schema | undefined): unknown {
  if (!schema) return {};
  if (schema.const !== undefined) return schema.const;
  if (schema.default !== undefined) return schema.default;
  if (schema.enum) return schema.enum[0];
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return sampleOf(alternatives[0]);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object':
      return Object.fromEntries(
        (schema.required ?? []).map((name) => [name, sampleOf(schema.properties?.[name])]),
      );
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => sampleOf(schema.items));
    case 'integer':
    case 'number':
      return Math.max(schema.minimum ?? 1, 1);
    case 'boolean':
      return false;
    case 'string':
      return schema.format === 'uuid'
        ? '0190a000-0000-7000-8000-000000000000'
        : 'x'.repeat(schema.minLength ?? 1);
    default:
      return {};
  }
}

let api: TestApi;
let owner: TestTeam;
let other: TestTeam;
let revoked: { authorization: string };
const ids: Record<string, string> = {};
let spec: Awaited<ReturnType<typeof pipelineSpec>>;

beforeAll(async () => {
  // Many refused keys from one address on purpose: the failed-auth limiter is out of the way here.
  api = await startApi({ claimIdleMs: 50, failedAuth: { max: 1_000_000 } });
  owner = await createTestTeam(api.app);
  other = await createTestTeam(api.app);
  const { prisma } = api.app.services;
  const gone = await createApiKey(prisma, { teamId: owner.team.id, name: 'revoked' });
  await prisma.apiKey.update({ where: { id: gone.id }, data: { revokedAt: new Date() } });
  revoked = { authorization: `Bearer ${gone.key}` };

  spec = await pipelineSpec(api.app, owner.headers);
  const created = await api.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: owner.headers,
    payload: spec,
  });
  expect(created.statusCode).toBe(201);
  const run = created.json() as { id: string; stages: { id: string }[] };
  const key = `runs/${run.id}/${run.stages[0].id}/final/model.safetensors`;
  await api.app.services.artifacts.put(key, 'weights');
  await publishEvent(
    api.app.services.redis,
    { type: 'artifact', runId: run.id, stageId: run.stages[0].id, kind: 'safetensors', key, bytes: 7 },
    api.prefix,
  );
  const artifact = await waitFor(() => prisma.artifact.findUnique({ where: { path: key } }));
  // Finished, so that its event stream ends after the snapshot.
  await api.app.inject({ method: 'POST', url: `/v1/runs/${run.id}/cancel`, headers: owner.headers });
  // The owner's registered model, OpenAI-API file and fine-tuning job, and an evaluation.
  const file = await uploadFile();
  const job = await api.app.inject({
    method: 'POST',
    url: '/v1/fine_tuning/jobs',
    headers: owner.headers,
    payload: { model: 'tiny', training_file: file },
  });
  expect(job.statusCode, job.body).toBe(200);
  const evaluation = await prisma.evaluation.create({
    data: { teamId: owner.team.id, name: 'matrix', spec: {}, models: [], resultKey: 'x', status: 'failed' },
  });
  Object.assign(ids, {
    runId: run.id,
    stageId: run.stages[0].id,
    datasetId: spec.stages[0].datasetId,
    artifactId: artifact.id,
    teamId: owner.team.id,
    job_id: job.json().id,
    evaluationId: evaluation.id,
  });
});
afterAll(() => api?.close());

/** A fresh fine-tuning file of the owner (DELETE removes the one it is given). */
async function uploadFile(): Promise<string> {
  const boundary = 'matrix-boundary';
  const line = JSON.stringify({
    messages: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'yo' },
    ],
  });
  const file = await api.app.inject({
    method: 'POST',
    url: '/v1/files',
    headers: { ...owner.headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
    payload: [
      `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n`,
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="t.jsonl"\r\n`,
      `Content-Type: application/jsonl\r\n\r\n${line}\n\r\n--${boundary}--\r\n`,
    ].join(''),
  });
  expect(file.statusCode, file.body).toBe(200);
  return file.json().id;
}

const headersOf = (principal: Principal): Record<string, string> => {
  switch (principal) {
    case 'none':
      return {};
    case 'malformed':
      return { authorization: 'Bearer rlhf_not-a-key' };
    case 'unknown':
      return {
        authorization: `Bearer rlhf_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`,
      };
    case 'revoked':
      return revoked;
    case 'other team':
      return other.headers;
    case 'own team':
      return owner.headers;
    case 'admin':
      return { authorization: `Bearer ${ADMIN_KEY}` };
  }
};

/** Path parameters by name: the owner's resources; a key id is a fresh key each time (DELETE revokes it). */
async function paramValue(name: string): Promise<string> {
  if (name === 'keyId')
    return (await createApiKey(api.app.services.prisma, { teamId: owner.team.id, name: 'matrix' })).id;
  // Fresh ones too: DELETE removes them.
  if (name === 'file_id') return uploadFile();
  if (name === 'modelId')
    return (await registerModel(api.app, owner.headers, `matrix-${randomBytes(4).toString('hex')}`)).id;
  const value = ids[name];
  if (value === undefined)
    throw new Error(`authorization matrix: no sample for path parameter ${name}; add one`);
  return value;
}

const QUERY_SAMPLES: Record<string, string> = { name: 'matrix-data', kind: 'sft' };

/** Request bodies by route where a schema's minimum is not a request that works. */
const BODY_SAMPLES: Record<string, () => { payload: string | object; contentType: string }> = {
  'POST /v1/datasets': () => ({ payload: jsonl(SFT_ROWS), contentType: 'application/jsonl' }),
  'POST /v1/runs': () => ({
    payload: { ...spec, name: `matrix-${randomBytes(3).toString('hex')}` },
    contentType: 'application/json',
  }),
  'POST /v1/runs/{runId}/generate': () => ({ payload: { prompts: ['hi'] }, contentType: 'application/json' }),
  'POST /v1/admin/teams': () => ({
    payload: { name: `matrix-${randomBytes(4).toString('hex')}` },
    contentType: 'application/json',
  }),
  'PATCH /v1/admin/teams/{teamId}': () => ({
    payload: { requestsPerMinute: 600 },
    contentType: 'application/json',
  }),
};

test('every route of the OpenAPI document × every kind of caller', async () => {
  const docs = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json() as {
    paths: Record<string, Record<string, Operation>>;
  };
  const routes = Object.entries(docs.paths).flatMap(([path, operations]) =>
    Object.entries(operations)
      .filter(([method]) => ['get', 'post', 'patch', 'put', 'delete'].includes(method))
      .map(([method, operation]) => ({ method: method.toUpperCase() as Method, path, operation })),
  );
  expect(routes.length).toBeGreaterThanOrEqual(21); // 21 documented when this was written
  const failures: string[] = [];
  const seen = new Map<string, number>();

  for (const { method, path, operation } of routes) {
    const route = `${method} ${path}`;
    const adminRoute = path.startsWith('/v1/admin');
    const hasIds = /\{[^}]+\}/.test(path);
    for (const principal of PRINCIPALS) {
      let url = path;
      for (const name of [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]))
        url = url.replace(`{${name}}`, encodeURIComponent(await paramValue(name)));
      const query = (operation.parameters ?? [])
        .filter((p) => p.in === 'query' && p.required)
        .map((p) => `${p.name}=${encodeURIComponent(QUERY_SAMPLES[p.name] ?? String(sampleOf(p.schema)))}`);
      if (query.length > 0) url += `?${query.join('&')}`;
      const body =
        BODY_SAMPLES[route]?.() ??
        (operation.requestBody
          ? {
              payload: sampleOf(operation.requestBody.content['application/json']?.schema) as object,
              contentType: 'application/json',
            }
          : undefined);
      const response = await api.app.inject({
        method,
        url,
        headers: { ...headersOf(principal), ...(body ? { 'content-type': body.contentType } : {}) },
        ...(body ? { payload: body.payload } : {}),
      });
      const status = response.statusCode;
      if (process.env.MATRIX_DEBUG) console.log(`${route} ${principal} ${status}`);
      seen.set(route, (seen.get(route) ?? 0) + 1);
      const json = /^application\/json/.test(String(response.headers['content-type']))
        ? response.json()
        : null;
      const cell = `${route} as ${principal}: ${status} ${response.body.slice(0, 200)}`;
      let expected: (s: number) => boolean;
      let code: string | undefined;
      if (['none', 'malformed', 'unknown', 'revoked'].includes(principal)) {
        expected = (s) => s === 401;
        code = 'unauthorized';
      } else if (principal === 'admin') {
        if (adminRoute || ADMIN_ALSO.has(route)) expected = (s) => s >= 200 && s < 300;
        else {
          expected = (s) => s === 403;
          code = 'forbidden';
        }
      } else if (adminRoute) {
        expected = (s) => s === 403;
        code = 'forbidden';
      } else if (principal === 'other team') {
        if (hasIds) {
          expected = (s) => s === 404;
          code = 'not_found';
        } else {
          // Its own lists and creations: nothing of the owner's in a success, a spec naming the owner's
          // datasets is a 400 naming them as unknown.
          expected = (s) => (s >= 200 && s < 300) || s === 400;
          if (status < 300)
            for (const id of Object.values(ids))
              if (response.body.includes(id)) failures.push(`${cell}: shows the owner's ${id}`);
        }
      } else {
        // own team: anything but an authorization refusal or a failure
        expected = (s) => s < 500 && ![401, 403, 404].includes(s);
      }
      if (status >= 500 || !expected(status)) failures.push(cell);
      else if (code !== undefined && json?.error?.code !== code)
        failures.push(`${cell}: error code is not ${code}`);
      if (status >= 400 && !json?.error?.message) failures.push(`${cell}: no JSON error body`);
    }
  }
  expect(failures).toEqual([]);
  // Every documented route was tried by every kind of caller.
  expect([...seen.values()].every((n) => n === PRINCIPALS.length)).toBe(true);
  // The owner's run and dataset are as they were.
  const run = await api.app.inject({ method: 'GET', url: `/v1/runs/${ids.runId}`, headers: owner.headers });
  expect(run.json().status).toBe('cancelled');
  const dataset = await api.app.inject({
    method: 'GET',
    url: `/v1/datasets/${ids.datasetId}`,
    headers: owner.headers,
  });
  expect(dataset.statusCode).toBe(200);
});

test('the sample generator covers the schemas of the document (new bodies get a value)', () => {
  expect(
    sampleOf({
      type: 'object',
      required: ['a', 'b', 'c'],
      properties: {
        a: { type: 'string', minLength: 3 },
        b: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 5 } },
        c: { enum: ['x', 'y'] },
      },
    }),
  ).toEqual({ a: 'xxx', b: [5], c: 'x' });
});
