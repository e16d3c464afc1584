// POST /v1/graders/validate and /v1/graders/run on the real API (Postgres, Redis), and prompt datasets with
// messages and reference fields.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ADMIN_KEY, createTestTeam, jsonl, startApi, type TestApi, type TestTeam } from './api-helpers.js';

let api: TestApi;
let team: TestTeam;
beforeAll(async () => {
  api = await startApi({ consumeEvents: false });
  team = await createTestTeam(api.app);
});
afterAll(() => api?.close());

const post = (url: string, payload: unknown, headers: Record<string, string> = team.headers) =>
  api.app.inject({ method: 'POST', url, headers, payload: payload as Record<string, unknown> });

const exact = { type: 'string_check', name: 'exact', operation: 'eq', reference: '{{item.answer}}' };

describe('POST /v1/graders/validate', () => {
  test('a valid grader: ok and the fields it reads', async () => {
    const grader = {
      type: 'multi',
      combine: 'weighted_sum',
      weights: { exact: 2 },
      graders: [exact, { type: 'numeric', reference: '{{item.value}}', name: 'value' }],
    };
    const response = await post('/v1/graders/validate', { grader, fields: ['answer', 'value'] });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ ok: true, referencedFields: ['answer', 'value'] });
  });

  test('400 naming the field: unsafe regex, bad type, missing dataset field, reward model', async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ grader: { type: 'regex', pattern: '(a+)\\1', mode: 'match' } }, '/grader/pattern', /backreferences/],
      [{ grader: { type: 'regexp' } }, '/grader/type', /must be one of/],
      [
        {
          grader: { type: 'multi', combine: 'min', graders: [{ type: 'length', penaltyPerUnit: 2, max: 1 }] },
        },
        '/grader/graders/0/penaltyPerUnit',
        /<= 1/,
      ],
      [{ grader: exact, fields: ['solution'] }, '/grader/reference', /references field "answer"/],
      [{ grader: { type: 'reward_model' }, rewardModel: false }, '/grader', /needs a reward model/],
      [{ grader: { type: 'json', schema: { type: 'strnig' } } }, '/grader/schema', /invalid JSON Schema/],
      [{ fields: [] }, '/grader', /required/],
      [{ grader: exact, extra: 1 }, '/extra', /unknown field/],
    ];
    for (const [body, field, message] of cases) {
      const response = await post('/v1/graders/validate', body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      const { error } = response.json();
      expect(error.code).toBe('invalid_request');
      expect(error.field, JSON.stringify(body)).toBe(field);
      expect(error.message).toMatch(message);
    }
  });

  test('reward_model graders are valid where a reward model is not ruled out', async () => {
    const response = await post('/v1/graders/validate', { grader: { type: 'reward_model' } });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ ok: true, referencedFields: [] });
  });
});

describe('POST /v1/graders/run', () => {
  test('grades a response against a row: score and per-grader parts', async () => {
    const grader = {
      type: 'multi',
      combine: 'weighted_sum',
      weights: { exact: 0.5 },
      graders: [exact, { type: 'regex', name: 'format', pattern: '^\\d+$', mode: 'full_match' }],
    };
    const response = await post('/v1/graders/run', {
      grader,
      row: { prompt: '6·7?', answer: '42' },
      response: '42',
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ score: 1.5, parts: { exact: 1, format: 1 } });
    const wrong = await post('/v1/graders/run', {
      grader,
      row: { prompt: '6·7?', answer: '42' },
      response: '41',
    });
    expect(wrong.json()).toEqual({ score: 1, parts: { exact: 0, format: 1 } });
  });

  test('messages rows, unicode and hand-computed similarity', async () => {
    const row = { messages: [{ role: 'user', content: 'Übersetze: cat' }], answer: 'die Katze' };
    const grader = { type: 'text_similarity', metric: 'edit_distance', reference: '{{item.answer}}' };
    const response = await post('/v1/graders/run', { grader, row, response: 'die Kätze' });
    expect(response.statusCode).toBe(200);
    // one substitution in 9 code points
    expect(response.json().score).toBeCloseTo(8 / 9, 12);
    expect(response.json().parts).toEqual({ text_similarity: response.json().score });
  });

  test('pathological regexes answer quickly; a response past the limit is a 400', async () => {
    const grader = { type: 'regex', pattern: '(a+)+$', mode: 'match' };
    const started = performance.now();
    const response = await post('/v1/graders/run', {
      grader,
      row: { prompt: 'p' },
      response: `${'a'.repeat(60_000)}!`,
    });
    expect(response.statusCode).toBe(200);
    expect(response.json().score).toBe(0);
    expect(performance.now() - started).toBeLessThan(10_000);
    const long = await post('/v1/graders/run', {
      grader,
      row: { prompt: 'p' },
      response: 'a'.repeat(65_537),
    });
    expect(long.statusCode).toBe(400);
    expect(long.json().error.field).toBe('/response');
  });

  test('400s: a row missing a referenced field, a bad row, reward_model graders', async () => {
    const missing = await post('/v1/graders/run', { grader: exact, row: { prompt: 'p' }, response: 'x' });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error).toMatchObject({
      field: '/row/answer',
      message: expect.stringMatching(/no field "answer"/),
    });

    const badRow = await post('/v1/graders/run', {
      grader: exact,
      row: { messages: [{ role: 'assistant', content: 'hi' }], answer: 'x' },
      response: 'x',
    });
    expect(badRow.statusCode).toBe(400);
    expect(badRow.json().error.field).toBe('/row/messages/0/role');

    const rm = await post('/v1/graders/run', {
      grader: { type: 'multi', combine: 'min', graders: [exact, { type: 'reward_model' }] },
      row: { prompt: 'p', answer: 'x' },
      response: 'x',
    });
    expect(rm.statusCode).toBe(400);
    expect(rm.json().error).toMatchObject({
      field: '/grader',
      message: expect.stringMatching(/reward_model graders cannot be run here/),
    });

    const tokens = await post('/v1/graders/run', {
      grader: { type: 'length', max: 3, unit: 'tokens', penaltyPerUnit: 0.1 },
      row: { prompt: 'p' },
      response: 'x',
    });
    expect(tokens.statusCode).toBe(400);
    expect(tokens.json().error.field).toBe('/grader/unit');
  });
});

describe('OpenAPI', () => {
  test('documents both routes with their response schemas', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(
      doc.paths['/v1/graders/validate'].post.responses['200'].content['application/json'].schema.required,
    ).toEqual(['ok', 'referencedFields']);
    expect(
      Object.keys(
        doc.paths['/v1/graders/run'].post.responses['200'].content['application/json'].schema.properties,
      ),
    ).toEqual(['score', 'parts']);
  });
});

describe('auth', () => {
  test('no key or an unknown key: 401; an admin key: 403; every team may use graders', async () => {
    const body = { grader: exact };
    const none = await api.app.inject({ method: 'POST', url: '/v1/graders/validate', payload: body });
    expect(none.statusCode).toBe(401);
    const unknown = await post(
      '/v1/graders/run',
      { ...body, row: { prompt: 'p', answer: 'x' }, response: 'x' },
      {
        authorization: 'Bearer not-a-key-0123456789abcdef',
      },
    );
    expect(unknown.statusCode).toBe(401);
    const admin = await post('/v1/graders/validate', body, { authorization: `Bearer ${ADMIN_KEY}` });
    expect(admin.statusCode).toBe(403);
    const other = await createTestTeam(api.app);
    expect((await post('/v1/graders/validate', body, other.headers)).statusCode).toBe(200);
  });
});

describe('prompt datasets with messages and reference fields', () => {
  const upload = (rows: unknown[]) =>
    api.app.inject({
      method: 'POST',
      url: '/v1/datasets?name=graded&kind=prompt',
      headers: { ...team.headers, 'content-type': 'application/jsonl' },
      payload: jsonl(rows),
    });

  test('accepts {prompt, ...fields}, {messages, ...fields} and plain {prompt}', async () => {
    const response = await upload([
      { prompt: 'sort 3 1:', answer: ' 1 3' },
      {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'sort 2 1:' },
        ],
        answer: ' 1 2',
        meta: { n: 2 },
      },
      { prompt: 'sort 9 8:' },
    ]);
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({ kind: 'prompt', rowCount: 3 });
  });

  test('refuses a conversation ending with the assistant and a bad field name, naming them', async () => {
    const ending = await upload([
      {
        messages: [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: 'b' },
        ],
      },
    ]);
    expect(ending.statusCode).toBe(400);
    expect(ending.json().error.message).toMatch(
      /\/messages\/1\/role: the last message must be the user turn/,
    );
    const badName = await upload([{ prompt: 'p', 'my-field': 1 }]);
    expect(badName.statusCode).toBe(400);
    expect(badName.json().error.message).toMatch(/\/my-field: a field name/);
    const both = await upload([{ prompt: 'p', messages: [{ role: 'user', content: 'a' }] }]);
    expect(both.statusCode).toBe(400);
    expect(both.json().error.message).toMatch(/either prompt or messages/);
  });
});
