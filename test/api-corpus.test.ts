// Bad-input corpus: fast-check properties and hand cases over every route that takes input (dataset
// uploads of every kind, run specs of every stage kind, list queries and cursors, generate, admin routes).
// Every refused request is a 4xx with a JSON error body, never a 500; a refused write leaves nothing
// behind (row counts and the artifact store unchanged); the server is ready afterwards.
import { randomUUID } from 'node:crypto';
import { DATASET_KINDS, type DatasetKind } from '@rlhf/contracts';
import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ADMIN_KEY,
  createTestTeam,
  jsonl,
  PREFERENCE_ROWS,
  PROMPT_ROWS,
  SFT_ROWS,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';
import { corpusChecks } from './corpus-helpers.js';

// One seed for every property, so a CI failure reproduces (CORPUS_SEED explores others).
fc.configureGlobal({ seed: Number(process.env.CORPUS_SEED ?? 20261202) });

const admin = { authorization: `Bearer ${ADMIN_KEY}` };
// Bounded so the whole file stays well under 30 s on 2 cores.
const RUNS = Number(process.env.CORPUS_RUNS ?? 40);

let api: TestApi;
let team: TestTeam;
let other: TestTeam;
const ds = {} as Record<DatasetKind | 'other', string>;
let runId: string;
let stageId: string;

beforeAll(async () => {
  api = await startApi();
  team = await createTestTeam(api.app, { requestsPerMinute: 1_000_000 });
  other = await createTestTeam(api.app, { requestsPerMinute: 1_000_000 });
  ds.sft = await uploadDataset(api.app, team.headers, 'sft', SFT_ROWS);
  ds.preference = await uploadDataset(api.app, team.headers, 'preference', PREFERENCE_ROWS);
  ds.ranked = await uploadDataset(api.app, team.headers, 'ranked', [
    { prompt: 'sort: 3 1', responses: ['1 3', '3 1', '31'] },
  ]);
  ds.prompt = await uploadDataset(api.app, team.headers, 'prompt', PROMPT_ROWS);
  ds.other = await uploadDataset(api.app, other.headers, 'sft', SFT_ROWS);
  const run = await api.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: team.headers,
    payload: { model: { preset: 'tiny' }, stages: [{ kind: 'sft', datasetId: ds.sft }] },
  });
  expect(run.statusCode).toBe(201);
  runId = run.json().id;
  stageId = run.json().stages[0].id;
});
afterAll(() => api?.close());

const { statusCounts, snapshot, refused, answered, expectReady } = corpusChecks(() => api);

// --- values ------------------------------------------------------------------------------------

/** JSON values of the wrong type or out of range for any field (never a valid text or count). */
const badScalar = fc.constantFrom<unknown>(
  -1,
  -1e300,
  1.5e308,
  'x',
  '',
  true,
  [],
  {},
  [1, 2],
  { $gt: '' },
  '\u0000',
  'a\u0000b',
);
const badText = fc.oneof(
  fc.constantFrom<unknown>('', 'a\u0000b', '\u0000', 'x'.repeat(16_385), 1, null, true, [], {}, ['a']),
  fc.string({ maxLength: 8 }).map((s) => `${s}\u0000`),
);
const anyJson = fc.jsonValue({ maxDepth: 3 });

// --- datasets ----------------------------------------------------------------------------------

const validRow = (kind: DatasetKind, i: number, chat: boolean): Record<string, unknown> => {
  switch (kind) {
    case 'sft':
      return chat
        ? {
            messages: [
              { role: 'user', content: `q${i}` },
              { role: 'assistant', content: `a${i}` },
            ],
          }
        : { prompt: `p${i}`, response: `r${i}` };
    case 'preference':
      return { prompt: `p${i}`, chosen: `c${i}`, rejected: `r${i}` };
    case 'ranked':
      return { prompt: `p${i}`, responses: [`a${i}`, `b${i}`, `c${i}`] };
    case 'prompt':
      return { prompt: `p${i}` };
  }
};

/** A line that no dataset kind accepts, made from a valid row of `kind` by one change. */
const badLine = (kind: DatasetKind, row: Record<string, unknown>): fc.Arbitrary<string | Buffer> => {
  const fields = Object.keys(row);
  const field = fc.constantFrom(...fields);
  const mutations: fc.Arbitrary<string | Buffer>[] = [
    // not JSON, or JSON that is not an object
    fc.constantFrom('{', '{"prompt": "x"', 'nul', '[', '"x"', '1', 'null', '[]', 'true', '{}', '{"a":1}'),
    fc.string({ minLength: 1, maxLength: 12 }).map((s) => `{${s}`),
    // a field missing, of the wrong type, empty, with a NUL, too long
    field.map((f) => JSON.stringify(Object.fromEntries(Object.entries(row).filter(([k]) => k !== f)))),
    fc.tuple(field, badText).map(([f, v]) => JSON.stringify({ ...row, [f]: v })),
    // an unknown field (prompt rows take reference fields: only a name that is no identifier is unknown there)
    fc
      .string({ minLength: 1, maxLength: 8 })
      .filter((k) => !fields.includes(k) && k !== '__proto__')
      .filter((k) => kind !== 'prompt' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      .map((k) => JSON.stringify({ ...row, [k]: 'x' })),
    // bytes that are not UTF-8 inside a string
    fc
      .constantFrom([0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf])
      .map((bytes) => {
        const [head, tail] = JSON.stringify(row).split(/(?<=^\{"[a-z]+":"?)/);
        return Buffer.concat([Buffer.from(head ?? ''), Buffer.from(bytes), Buffer.from(tail ?? '')]);
      }),
  ];
  if (kind === 'preference') mutations.push(fc.constant(JSON.stringify({ ...row, rejected: row.chosen })));
  if (kind === 'ranked') {
    mutations.push(
      fc.constantFrom(
        JSON.stringify({ ...row, responses: ['same', 'same'] }),
        JSON.stringify({ ...row, responses: ['only one'] }),
        JSON.stringify({ ...row, responses: [] }),
        JSON.stringify({ ...row, responses: Array.from({ length: 17 }, (_, j) => `r${j}`) }),
        JSON.stringify({ ...row, responses: ['a', 2] }),
      ),
    );
  }
  if (kind === 'sft' && 'messages' in row) {
    mutations.push(
      fc.constantFrom(
        JSON.stringify({ messages: [] }),
        JSON.stringify({ messages: [{ role: 'robot', content: 'x' }] }),
        JSON.stringify({ messages: [{ role: 'user' }] }),
        JSON.stringify({ messages: [{ role: 'user', content: 'x', extra: 1 }] }),
        JSON.stringify({ messages: Array.from({ length: 257 }, () => ({ role: 'user', content: 'x' })) }),
        JSON.stringify({ messages: [{ role: 'user', content: 'x' }], prompt: 'x' }),
        JSON.stringify({ messages: 'hello' }),
      ),
    );
  }
  return fc.oneof(...mutations);
};

const upload = (kind: string, payload: string | Buffer, headers = team.headers, name = `${kind}-corpus`) => ({
  method: 'POST' as const,
  url: `/v1/datasets?name=${encodeURIComponent(name)}&kind=${encodeURIComponent(kind)}`,
  headers: { ...headers, 'content-type': 'application/jsonl' },
  payload,
});

describe('dataset uploads', () => {
  test('property: valid rows of any kind (sft prompt/response or messages, preference, ranked, prompt) with one bad line are refused naming that line', async () => {
    const shapes: { kind: DatasetKind; chat: boolean }[] = DATASET_KINDS.flatMap(
      (kind): { kind: DatasetKind; chat: boolean }[] =>
        kind === 'sft'
          ? [
              { kind, chat: false },
              { kind, chat: true },
            ]
          : [{ kind, chat: false }],
    );
    const cases = fc
      .record({
        shape: fc.constantFrom(...shapes),
        good: fc.integer({ min: 0, max: 5 }),
        seed: fc.integer({ min: 0, max: 1e6 }),
      })
      .chain(({ shape, good, seed }) =>
        fc.record({
          shape: fc.constant(shape),
          before: fc.constant(
            Array.from({ length: good }, (_, i) => validRow(shape.kind, seed + i, shape.chat)),
          ),
          bad: badLine(shape.kind, validRow(shape.kind, seed + good, shape.chat)),
          after: fc.integer({ min: 0, max: 3 }),
        }),
      );
    await fc.assert(
      fc.asyncProperty(cases, async ({ shape, before, bad, after }) => {
        const tail = Array.from({ length: after }, (_, i) => validRow(shape.kind, 1e7 + i, shape.chat));
        const payload = Buffer.concat([
          Buffer.from(before.length > 0 ? jsonl(before) : ''),
          typeof bad === 'string' ? Buffer.from(bad) : bad,
          Buffer.from('\n'),
          Buffer.from(tail.length > 0 ? jsonl(tail) : ''),
        ]);
        const error = await refused(upload(shape.kind, payload), 400);
        expect(error.message).toContain(`line ${before.length + 1}`);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  test('property: arbitrary bytes are never a 5xx; a refusal stores nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...DATASET_KINDS),
        fc.oneof(
          fc.uint8Array({ maxLength: 256 }),
          fc.string({ maxLength: 64 }).map((s) => Buffer.from(s)),
        ),
        async (kind, bytes) => {
          const before = await snapshot();
          const response = await answered(upload(kind, Buffer.from(bytes)));
          if (response.statusCode >= 400) expect(await snapshot()).toEqual(before);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('property: a bad name or kind in the query is a 400 before anything is stored', async () => {
    const badQuery = fc.oneof(
      fc.record({
        name: fc.constantFrom('', 'x'.repeat(129), 'a\u0000b', 'tab\there', 'line\nbreak'),
        kind: fc.constantFrom(...DATASET_KINDS),
      }),
      fc.record({
        name: fc.constant('ok'),
        kind: fc.oneof(
          fc.constantFrom('', 'SFT', 'dpo', 'ranked ', 'prompt\u0000'),
          fc.string({ maxLength: 6 }),
        ),
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        badQuery.filter(({ kind }) => !DATASET_KINDS.includes(kind as DatasetKind)).map((q) => q),
        async ({ name, kind }) => {
          await refused(upload(kind, jsonl(SFT_ROWS), team.headers, name), 400);
        },
      ),
      { numRuns: RUNS / 2 },
    );
    for (const name of ['', 'x'.repeat(129), 'a\u0000b', 'tab\there']) {
      await refused(upload('sft', jsonl(SFT_ROWS), team.headers, name), 400);
    }
  });

  test('hand cases: empty body, blank lines only, a JSON array, a BOM mid-file, an upload over the team limit', async () => {
    await refused(upload('sft', ''), 400);
    await refused(upload('sft', '\n\n\n'), 400);
    await refused(upload('sft', JSON.stringify(SFT_ROWS)), 400);
    await refused(upload('prompt', `${jsonl(PROMPT_ROWS)}\ufeff{"prompt":"x"}\n`));
    await refused({ ...upload('sft', jsonl(SFT_ROWS)), query: { extra: '1' } }, 400);
    await refused(
      { method: 'POST', url: '/v1/datasets', headers: team.headers, payload: jsonl(SFT_ROWS) },
      400,
    );
    const small = await createTestTeam(api.app, { maxUploadBytes: 64 });
    const big = jsonl(Array.from({ length: 20 }, (_, i) => ({ prompt: `p${i}`, response: `r${i}` })));
    await refused(upload('sft', big, small.headers));
    await expectReady();
  });
});

// --- runs --------------------------------------------------------------------------------------

type Stage = { kind: string; datasetId: string; config?: Record<string, unknown> };
const PIPELINES: (() => Stage[])[] = [
  () => [{ kind: 'sft', datasetId: ds.sft }],
  () => [
    { kind: 'sft', datasetId: ds.sft },
    { kind: 'reward_model', datasetId: ds.preference },
    { kind: 'ppo', datasetId: ds.prompt },
  ],
  () => [
    { kind: 'sft', datasetId: ds.sft },
    { kind: 'dpo', datasetId: ds.ranked },
  ],
  () => [
    { kind: 'sft', datasetId: ds.sft },
    { kind: 'pro', datasetId: ds.ranked },
  ],
  () => [
    { kind: 'sft', datasetId: ds.sft },
    { kind: 'reward_model', datasetId: ds.ranked },
    { kind: 'dpo', datasetId: ds.preference },
    { kind: 'pro', datasetId: ds.ranked },
    { kind: 'ppo', datasetId: ds.prompt },
  ],
];
// Fields each stage kind's config has, with values none of them accept.
const CONFIG_FIELDS: Record<string, string[]> = {
  sft: ['maxSteps', 'batchSize', 'lr', 'epochs', 'warmupSteps', 'schedule', 'completionOnlyLoss'],
  reward_model: ['maxSteps', 'batchSize', 'lr', 'margin', 'init'],
  dpo: ['maxSteps', 'batchSize', 'lr', 'beta', 'lossType', 'labelSmoothing', 'simpoGamma', 'rpoAlpha'],
  pro: ['maxSteps', 'batchSize', 'lr', 'objective', 'sftWeight'],
  ppo: [
    'iterations',
    'rolloutBatchSize',
    'minibatches',
    'ppoEpochs',
    'maxNewTokens',
    'temperature',
    'topP',
    'kl',
  ],
};
const badBoolean = fc.constantFrom<unknown>(1, 'yes', [], {});
const badKl = fc.constantFrom<unknown>({ coef: -1 }, { type: 'x' }, { coef: 'x' }, { unknown: 1 }, 5, 'x');

type SpecMutation = (spec: { stages: Stage[] } & Record<string, unknown>) => unknown;
const specMutation: fc.Arbitrary<SpecMutation> = fc.oneof(
  // a stage's config: a bad value, an unknown field, not an object
  fc.tuple(fc.nat(), fc.nat(), badScalar, badBoolean, badKl).map(
    ([s, f, scalar, boolean, kl]): SpecMutation =>
      (spec) => {
        const stage = spec.stages[s % spec.stages.length];
        const fields = CONFIG_FIELDS[stage.kind];
        const field = fields[f % fields.length];
        const bad = field === 'completionOnlyLoss' ? boolean : field === 'kl' ? kl : scalar;
        stage.config = { ...stage.config, [field]: bad };
        return spec;
      },
  ),
  fc.tuple(fc.nat(), fc.constantFrom('bogus', 'maxsteps', '__proto__x', 'constructor')).map(
    ([s, key]): SpecMutation =>
      (spec) => {
        spec.stages[s % spec.stages.length].config = { [key]: 1 };
        return spec;
      },
  ),
  fc.tuple(fc.nat(), fc.constantFrom<unknown>(1, 'x', [], null, true)).map(
    ([s, config]): SpecMutation =>
      (spec) => {
        (spec.stages[s % spec.stages.length] as Record<string, unknown>).config = config;
        return spec;
      },
  ),
  // a stage's dataset: unknown, another team's, the wrong kind, not an id
  fc.tuple(fc.nat(), fc.constantFrom('unknown', 'other', 'wrongKind', 'notId', 'number', 'nul')).map(
    ([s, how]): SpecMutation =>
      (spec) => {
        const stage = spec.stages[s % spec.stages.length];
        const wrong = stage.kind === 'sft' ? ds.prompt : stage.kind === 'ppo' ? ds.sft : ds.prompt;
        const value: unknown = {
          unknown: randomUUID(),
          other: ds.other,
          wrongKind: wrong,
          notId: 'not-a-uuid',
          number: 7,
          nul: `${ds.sft}\u0000`,
        }[how];
        (stage as Record<string, unknown>).datasetId = value;
        return spec;
      },
  ),
  // a stage's kind or shape
  fc.tuple(fc.nat(), fc.constantFrom<unknown>('rlhf', 'SFT', '', 1, null, 'reward-model')).map(
    ([s, kind]): SpecMutation =>
      (spec) => {
        (spec.stages[s % spec.stages.length] as Record<string, unknown>).kind = kind;
        return spec;
      },
  ),
  fc.nat().map(
    (s): SpecMutation =>
      (spec) => {
        (spec.stages[s % spec.stages.length] as Record<string, unknown>).extra = true;
        return spec;
      },
  ),
  // the pipeline: empty, too long, duplicated, out of order, not an array
  fc.constantFrom<SpecMutation>(
    (spec) => ({ ...spec, stages: [] }),
    (spec) => ({ ...spec, stages: [...spec.stages, ...spec.stages, ...spec.stages] }),
    (spec) => ({ ...spec, stages: [spec.stages[0], spec.stages[0]] }),
    (spec) =>
      spec.stages.length > 1 ? { ...spec, stages: [...spec.stages].reverse() } : { ...spec, stages: 'sft' },
    (spec) => ({ ...spec, stages: { 0: spec.stages[0] } }),
    (spec) => ({ ...spec, stages: [{ kind: 'ppo', datasetId: ds.prompt }] }),
    (spec) => ({ ...spec, stages: [{ kind: 'dpo', datasetId: ds.preference }] }),
    (spec) => ({ ...spec, stages: [{ kind: 'pro', datasetId: ds.ranked }] }),
  ),
  // the model and the run's own fields
  fc.constantFrom<SpecMutation>(
    (spec) => ({ ...spec, model: { preset: 'gpt-9' } }),
    (spec) => ({ ...spec, model: {} }),
    (spec) => ({ ...spec, model: { preset: 'tiny', fromRun: runId } }),
    (spec) => ({ ...spec, model: { fromRun: randomUUID() } }),
    (spec) => ({ ...spec, model: { fromRun: runId, stage: 'ppo' } }),
    (spec) => ({ ...spec, model: { fromRun: 'x' } }),
    (spec) => ({ ...spec, model: 'tiny' }),
    (spec) => ({ stages: spec.stages }),
    (spec) => ({ ...spec, name: '' }),
    (spec) => ({ ...spec, name: 'x'.repeat(129) }),
    (spec) => ({ ...spec, name: 'a\u0000b' }),
    (spec) => ({ ...spec, owner: 'someone' }),
    (spec) => ({ ...spec, teamId: other.team.id }),
  ),
  // not a spec at all
  anyJson
    .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v) || !('stages' in v))
    .map(
      (value): SpecMutation =>
        () =>
          value,
    ),
);

const postRun = (payload: unknown, headers: Record<string, string> = team.headers): InjectOptions => ({
  method: 'POST',
  url: '/v1/runs',
  headers: { ...headers, 'content-type': 'application/json' },
  payload: JSON.stringify(payload),
});

describe('run creation', () => {
  test('property: a spec of any pipeline (sft, reward_model, dpo, pro, ppo) with one bad part is a 400 and creates nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(PIPELINES.length - 1), specMutation, async (p, mutate) => {
        const spec = { model: { preset: 'tiny' }, stages: PIPELINES[p]() };
        const payload = mutate(structuredClone(spec) as never);
        await refused(postRun(payload));
      }),
      { numRuns: RUNS * 3 },
    );
  });

  test('property: bad Idempotency-Key headers are refused', async () => {
    const spec = { model: { preset: 'tiny' }, stages: PIPELINES[0]() };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom('x'.repeat(256), 'has space', 'tab\tkey', 'é'),
          fc.string({ minLength: 1, maxLength: 8 }).map((s) => `k ${s}`),
        ),
        async (key) => {
          const request = postRun(spec);
          await refused({ ...request, headers: { ...request.headers, 'idempotency-key': key } }, 400);
        },
      ),
      { numRuns: RUNS / 4 },
    );
  });

  test('hand cases: limits derived from the model, malformed JSON, wrong content type, huge numbers', async () => {
    const sft = (config: Record<string, unknown>) => ({
      model: { preset: 'tiny' },
      stages: [{ kind: 'sft', datasetId: ds.sft, config }],
    });
    await refused(postRun(sft({ maxSteps: 3e9 })), 400);
    await refused(postRun(sft({ maxSteps: 1e300 })), 400);
    // Issue 18 item 7: 4096 rows × 64 positions × 128 fused steps is one call past what a worker takes.
    const fused = await refused(postRun(sft({ batchSize: 4096, stepsPerCall: 128 })), 400);
    expect(JSON.stringify(fused)).toContain('/stages/0/config/stepsPerCall');
    await refused(postRun(sft({ lr: -0 - 1 })), 400);
    await refused(
      {
        method: 'POST',
        url: '/v1/runs',
        headers: { ...team.headers, 'content-type': 'application/json' },
        payload: '{"model":',
      },
      400,
    );
    await refused(
      {
        method: 'POST',
        url: '/v1/runs',
        headers: { ...team.headers, 'content-type': 'application/json' },
        payload: '',
      },
      400,
    );
    await refused({
      method: 'POST',
      url: '/v1/runs',
      headers: { ...team.headers, 'content-type': 'text/plain' },
      payload: 'hi',
    });
    await refused(
      {
        method: 'POST',
        url: '/v1/runs',
        headers: { ...team.headers, 'content-type': 'application/json' },
        payload: `{"model":{"preset":"tiny"},"stages":[{"kind":"sft","datasetId":"${ds.sft}","config":{"maxSteps":1e999}}]}`,
      },
      400,
    );
    await refused(postRun({ ...sft({}), model: { fromRun: ds.other } }));
    await expectReady();
  });
});

// --- lists, cursors and ids --------------------------------------------------------------------

const queryValue = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom(
    '',
    '\u0000',
    'a\u0000b',
    '-1',
    '0',
    '1e300',
    '2147483648',
    '-2147483649',
    'NaN',
    'Infinity',
    'null',
    '[]',
    '{}',
    "'; DROP TABLE runs; --",
    '%00',
    'x'.repeat(600),
  ),
  // cursors that look like ours: base64url JSON with hostile contents
  fc
    .constantFrom<unknown>(
      { stageId: 'a\u0000', step: 1, name: 'loss' },
      { stageId: randomUUID(), step: 1e300, name: 'loss' },
      { stageId: randomUUID(), step: 2 ** 31, name: 'loss' },
      { stageId: randomUUID(), step: -1, name: '\u0000' },
      { createdAt: 'not a date', id: 'x' },
      { createdAt: '2026-01-01T00:00:00Z', id: 'a\u0000' },
      { createdAt: 1e300, id: randomUUID() },
      [],
      null,
      'cursor',
    )
    .map((value) => Buffer.from(JSON.stringify(value)).toString('base64url')),
  anyJson.map((value) => Buffer.from(JSON.stringify(value) ?? '').toString('base64url')),
);

describe('list queries and path ids', () => {
  test('property: any query on every list route is never a 5xx', async () => {
    const routes: { url: () => string; params: string[]; headers?: Record<string, string> }[] = [
      { url: () => '/v1/datasets', params: ['kind', 'limit', 'cursor'] },
      { url: () => '/v1/runs', params: ['status', 'limit', 'cursor'] },
      { url: () => `/v1/runs/${runId}/metrics`, params: ['stageId', 'name', 'afterStep', 'limit', 'cursor'] },
      { url: () => `/v1/runs/${runId}/samples`, params: ['stageId', 'limit', 'cursor'] },
      { url: () => '/v1/admin/dead-events', params: ['limit'], headers: admin },
      { url: () => '/v1/admin/teams', params: ['limit'], headers: admin },
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.nat(routes.length - 1),
        fc.dictionary(
          fc.constantFrom('kind', 'status', 'limit', 'cursor', 'stageId', 'name', 'afterStep', 'x'),
          queryValue,
          {
            maxKeys: 3,
          },
        ),
        async (r, query) => {
          const route = routes[r];
          const search = new URLSearchParams(query).toString();
          await answered({
            method: 'GET',
            url: `${route.url()}${search ? `?${search}` : ''}`,
            headers: route.headers ?? team.headers,
          });
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });

  test('hand cases of issue 18 item 8 are 400s', async () => {
    const metric = (q: string) => ({
      method: 'GET' as const,
      url: `/v1/runs/${runId}/metrics?${q}`,
      headers: team.headers,
    });
    const cursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    await refused(metric('name=a%00b'), 400);
    await refused(metric('afterStep=2147483648'), 400);
    await refused(metric(`cursor=${cursor({ stageId, step: 1e300, name: 'loss' })}`), 400);
    await refused(metric(`cursor=${cursor({ stageId: 'a\u0000', step: 1, name: 'loss' })}`), 400);
    await refused({ method: 'GET', url: '/v1/runs?cursor=a%00b', headers: team.headers }, 400);
    await refused({ method: 'GET', url: '/v1/datasets?cursor=a%00b', headers: team.headers }, 400);
    await refused({ method: 'GET', url: '/v1/runs?limit=0', headers: team.headers }, 400);
    await refused({ method: 'GET', url: '/v1/runs?limit=101', headers: team.headers }, 400);
    await refused({ method: 'GET', url: '/v1/runs?status=exploded', headers: team.headers }, 400);
  });

  test('property: any id in a path is a 4xx, never a 5xx (400 for non-ids, 404 for unknown ones)', async () => {
    const paths = [
      (id: string) => ({ method: 'GET' as const, url: `/v1/runs/${id}` }),
      (id: string) => ({ method: 'GET' as const, url: `/v1/datasets/${id}` }),
      (id: string) => ({ method: 'POST' as const, url: `/v1/runs/${id}/cancel` }),
      (id: string) => ({ method: 'GET' as const, url: `/v1/runs/${id}/metrics` }),
      (id: string) => ({ method: 'GET' as const, url: `/v1/runs/${id}/samples` }),
      (id: string) => ({ method: 'GET' as const, url: `/v1/runs/${id}/artifacts` }),
      (id: string) => ({ method: 'GET' as const, url: `/v1/runs/${runId}/artifacts/${id}` }),
      (id: string) => ({ method: 'GET' as const, url: `/v1/runs/${runId}/artifacts/${id}/download` }),
      (id: string) => ({ method: 'GET' as const, url: `/v1/runs/${id}/events` }),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.nat(paths.length - 1),
        fc.oneof(
          fc.uuid(),
          fc.constant(ds.other),
          fc.string({ minLength: 1, maxLength: 40 }).map(encodeURIComponent),
          fc.constantFrom(
            '%00',
            '..',
            '%2e%2e%2f',
            'x'.repeat(300),
            '00000000-0000-0000-0000-00000000000g',
            '%zz',
            '%E0%A4%A',
          ),
        ),
        async (p, id) => {
          await refused({ ...paths[p](id), headers: team.headers });
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });
});

// --- generate ----------------------------------------------------------------------------------

describe('generate', () => {
  test('property: any body on an unfinished or unknown run is a 4xx, never a 5xx', async () => {
    const body = fc.oneof(
      anyJson,
      fc.record(
        {
          prompts: fc.oneof(
            fc.array(fc.string({ maxLength: 10 }), { maxLength: 40 }),
            fc.constantFrom<unknown>([], ['x'.repeat(16_385)], 'x', [1], null),
          ),
          stage: fc.constantFrom<unknown>('sft', 'dpo', 'pro', 'ppo', 'reward_model', 'x', 1),
          maxNewTokens: fc.oneof(fc.integer({ min: -5, max: 5000 }), badScalar),
          temperature: fc.oneof(fc.double({ noNaN: true }), badScalar),
          topK: fc.oneof(fc.integer(), badScalar),
          topP: fc.oneof(fc.double({ noNaN: true }), badScalar),
          seed: fc.oneof(fc.integer({ min: -1, max: 2 ** 33 }), badScalar),
        },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.boolean(), body, async (known, payload) => {
        await refused({
          method: 'POST',
          url: `/v1/runs/${known ? runId : randomUUID()}/generate`,
          headers: { ...team.headers, 'content-type': 'application/json' },
          payload: JSON.stringify(payload) ?? 'null',
        });
      }),
      { numRuns: RUNS },
    );
    // another team's run is not found
    await refused(
      {
        method: 'POST',
        url: `/v1/runs/${runId}/generate`,
        headers: other.headers,
        payload: { prompts: ['hi'] },
      },
      404,
    );
  });
});

// --- admin -------------------------------------------------------------------------------------

describe('admin routes', () => {
  // Values no limit field accepts (per-field maxima are in the hand cases).
  const limitValue = fc.oneof(badScalar, fc.constantFrom<unknown>(-1, 0.5, null));
  test('property: bad team bodies, limits and key bodies are 400s and store nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({
            kind: fc.constant('team' as const),
            body: fc.oneof(
              fc
                .constantFrom<unknown>('', '-x', 'a b', 'a\u0000', 'x'.repeat(65), 'ü', 1, null)
                .map((name) => ({ name })),
              fc
                .tuple(
                  fc.constantFrom('maxActiveStages', 'maxUploadBytes', 'requestsPerMinute', 'bogus'),
                  limitValue,
                )
                .map(([k, v]) => ({ name: 'ok-team', [k]: v })),
              anyJson.filter(
                (v) => typeof v !== 'object' || v === null || Array.isArray(v) || !('name' in v),
              ),
            ),
          }),
          fc.record({
            kind: fc.constant('limits' as const),
            body: fc
              .tuple(
                fc.constantFrom('maxActiveStages', 'maxUploadBytes', 'requestsPerMinute', 'name', 'id'),
                limitValue,
              )
              .map(([k, v]) => ({ [k]: v })),
          }),
          fc.record({
            kind: fc.constant('key' as const),
            body: fc.constantFrom<unknown>(
              { name: '' },
              { name: 'x'.repeat(129) },
              { name: 1 },
              { teamId: other.team.id },
              [],
            ),
          }),
        ),
        async ({ kind, body }) => {
          const url =
            kind === 'team'
              ? '/v1/admin/teams'
              : kind === 'limits'
                ? `/v1/admin/teams/${team.team.id}`
                : `/v1/admin/teams/${team.team.id}/keys`;
          await refused(
            {
              method: kind === 'limits' ? 'PATCH' : 'POST',
              url,
              headers: { ...admin, 'content-type': 'application/json' },
              payload: JSON.stringify(body) ?? 'null',
            },
            400,
          );
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('hand cases: unknown and malformed ids, a team name taken, dead-events limits, a team key on admin routes', async () => {
    const json = { ...admin, 'content-type': 'application/json' };
    await refused(
      {
        method: 'PATCH',
        url: `/v1/admin/teams/${randomUUID()}`,
        headers: json,
        payload: { maxActiveStages: 1 },
      },
      404,
    );
    await refused({
      method: 'PATCH',
      url: '/v1/admin/teams/nope',
      headers: json,
      payload: { maxActiveStages: 1 },
    });
    await refused(
      { method: 'POST', url: `/v1/admin/teams/${randomUUID()}/keys`, headers: json, payload: {} },
      404,
    );
    await refused({ method: 'DELETE', url: `/v1/admin/keys/${randomUUID()}`, headers: admin }, 404);
    await refused({ method: 'DELETE', url: '/v1/admin/keys/%00', headers: admin }, 400);
    await refused({
      method: 'POST',
      url: '/v1/admin/teams',
      headers: json,
      payload: { name: team.team.name },
    });
    await refused({ method: 'GET', url: '/v1/admin/dead-events?limit=0', headers: admin }, 400);
    await refused({ method: 'GET', url: '/v1/admin/dead-events?limit=1001', headers: admin }, 400);
    await refused(
      {
        method: 'POST',
        url: '/v1/admin/teams',
        headers: { ...team.headers, 'content-type': 'application/json' },
        payload: { name: 'sneaky' },
      },
      403,
    );
    await refused({ method: 'POST', url: '/v1/admin/teams', headers: json, payload: '{"name":' }, 400);
  });
});

describe('afterwards', () => {
  test('the server is healthy, the seeded data intact, and no request was a 5xx', async () => {
    await expectReady();
    const health = await api.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    const runs = await api.app.inject({ method: 'GET', url: '/v1/runs', headers: team.headers });
    expect(runs.statusCode).toBe(200);
    expect(runs.json().items.map((r: { id: string }) => r.id)).toEqual([runId]);
    const datasets = await api.app.inject({ method: 'GET', url: '/v1/datasets', headers: team.headers });
    expect(datasets.json().items).toHaveLength(4);
    const fiveHundreds = [...statusCounts].filter(([status]) => status >= 500);
    console.log(`corpus: ${JSON.stringify(Object.fromEntries(statusCounts))}`);
    expect(fiveHundreds).toEqual([]);
  });
});
