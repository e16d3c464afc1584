// A run whose grader would fail never starts: POST /v1/runs checks a GRPO or PPO grader as the worker will run
// it (unsafe regex, reward_model graders without a reward model, prompt rows lacking a referenced field) and
// answers 400 naming the field, with nothing stored.
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  createTestTeam,
  PREFERENCE_ROWS,
  SFT_ROWS,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';

let api: TestApi;
let team: TestTeam;
let sft: string;
let preferences: string;
let plain: string;
let withAnswers: string;
beforeAll(async () => {
  api = await startApi({ consumeEvents: false });
  team = await createTestTeam(api.app);
  sft = await uploadDataset(api.app, team.headers, 'sft', SFT_ROWS);
  preferences = await uploadDataset(api.app, team.headers, 'preference', PREFERENCE_ROWS);
  plain = await uploadDataset(api.app, team.headers, 'prompt', [
    { prompt: 'sort 2 1:' },
    { prompt: 'sort 3 1:' },
  ]);
  withAnswers = await uploadDataset(api.app, team.headers, 'prompt', [
    { prompt: 'sort 2 1:', answer: ' 1 2' },
    { messages: [{ role: 'user', content: 'sort 3 1:' }], answer: ' 1 3' },
  ]);
});
afterAll(() => api?.close());

const exact = { type: 'string_check', name: 'exact', operation: 'eq', reference: '{{item.answer}}' };
const grpo = (datasetId: string, reward: unknown) => ({
  model: { preset: 'tiny' },
  stages: [
    { kind: 'sft', datasetId: sft },
    { kind: 'grpo', datasetId, config: { reward } },
  ],
});
const submit = (spec: unknown) =>
  api.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: team.headers,
    payload: spec as Record<string, unknown>,
  });

test('bad graders are 400 naming the field, and no run is stored', async () => {
  const cases: [unknown, string, RegExp][] = [
    [
      grpo(withAnswers, { type: 'regex', pattern: '(?<=a)b', mode: 'match' }),
      '/stages/1/config/reward/pattern',
      /lookbehind|lookaround/i,
    ],
    [grpo(withAnswers, { type: 'regexp' }), '/stages/1/config/reward/type', /must be one of/],
    [grpo(plain, exact), '/stages/1/datasetId', /line 1 of dataset .* has no field "answer"/],
    [
      grpo(withAnswers, {
        type: 'multi',
        combine: 'min',
        graders: [exact, { type: 'reward_model', name: 'rm' }],
      }),
      '/stages/1/config/reward/graders/1',
      /reward model/,
    ],
    [
      {
        model: { preset: 'tiny' },
        stages: [
          { kind: 'sft', datasetId: sft },
          { kind: 'reward_model', datasetId: preferences },
          { kind: 'ppo', datasetId: withAnswers, config: { grader: { type: 'reward_model' } } },
        ],
      },
      '/stages/2/config/grader',
      /reward model/,
    ],
  ];
  for (const [spec, field, message] of cases) {
    const response = await submit(spec);
    expect(response.statusCode, field).toBe(400);
    expect(response.json().error.field, response.body).toBe(field);
    expect(response.json().error.message).toMatch(message);
  }
  expect(await api.app.services.prisma.run.count({ where: { teamId: team.team.id } })).toBe(0);
});

test('a valid grader on rows that have its fields is accepted, with the grader in the resolved config', async () => {
  const response = await submit(grpo(withAnswers, exact));
  expect(response.statusCode, response.body).toBe(201);
  const stage = response.json().stages[1];
  expect(stage.config.reward).toEqual(exact);
});
