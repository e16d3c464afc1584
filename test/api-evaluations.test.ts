// Evaluations over REST with real workers: a trained SFT policy against an untrained model on sort-digits, judged
// by the task's ground truth — the trained one wins with a 95 % interval above 1/2, the leaderboard ranks it first;
// bad specs are 400 naming the field; another team sees nothing.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '@rlhf/cli';
import { createApiClient, waitForRun } from '@rlhf/demo';
import { sortDigitsFiles } from '@rlhf/examples';
import type { RunningEvaluationWorker, RunningWorker } from '@rlhf/worker';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  registerModel,
  startApi,
  type TestApi,
  type TestTeam,
} from './api-helpers.js';
import { startTestEvaluationWorker, startTestWorker } from './worker-helpers.js';

let api: TestApi;
let worker: RunningWorker;
let evaluator: RunningEvaluationWorker;
let team: TestTeam;
beforeAll(async () => {
  api = await startApi();
  worker = await startTestWorker(api, 'eval-stage-worker');
  evaluator = await startTestEvaluationWorker(api);
  team = await createTestTeam(api.app);
});
afterAll(async () => {
  await evaluator?.close();
  await worker?.close();
  await api?.close();
});

const post = (url: string, payload: unknown, headers = team.headers) =>
  api.app.inject({ method: 'POST', url, headers, payload: payload as Record<string, unknown> });
const get = (url: string, headers = team.headers) => api.app.inject({ method: 'GET', url, headers });

async function finished(id: string) {
  for (let i = 0; i < 900; i++) {
    const view = (await get(`/v1/evaluations/${id}`)).json();
    if (view.status === 'succeeded' || view.status === 'failed') return view;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`evaluation ${id} did not finish`);
}

test('a trained policy beats an untrained model by the ground truth; the leaderboard ranks it first', async () => {
  const client = createApiClient(await baseUrl(api.app), team.key);
  const upload = async (kind: 'sft' | 'prompt', file: string) =>
    (await client.uploadDataset(`sort-digits-${kind}`, kind, await readFile(file, 'utf8'))).id;
  const sft = await upload('sft', sortDigitsFiles.sft);
  const prompts = await upload('prompt', sortDigitsFiles.prompt);
  const submitted = await client.createRun({
    model: { preset: 'tiny' },
    stages: [
      { kind: 'sft', datasetId: sft, config: { maxSteps: 200, batchSize: 32, lr: 3e-3, stepsPerCall: 20 } },
    ],
  });
  const run = await waitForRun(client, submitted.id);
  expect(run.status).toBe('succeeded');
  const untrained = await registerModel(api.app, team.headers, 'untrained');

  const spec = {
    models: [{ runId: run.id }, { modelId: untrained.id }],
    datasetId: prompts,
    maxPrompts: 48,
    seeds: [1, 2],
    sampling: { maxNewTokens: 12, temperature: 1 },
    judge: { type: 'task', name: 'sort-digits' },
  };
  const created = await post('/v1/evaluations', spec);
  expect(created.statusCode, created.body).toBe(201);
  const done = await finished(created.json().id);
  expect(done.error).toBeNull();
  expect(done.status).toBe('succeeded');
  const [pair] = done.result.pairs;
  expect(pair).toMatchObject({ a: `run:${run.id}:sft`, b: 'model:untrained' });
  expect(pair.wins + pair.ties + pair.losses).toBe(96);
  expect(pair.rows).toHaveLength(96);
  console.info(
    `trained vs untrained: win rate ${pair.winRate} [${pair.interval.lower}, ${pair.interval.upper}]`,
  );
  expect(pair.interval.lower).toBeGreaterThan(0.5);
  expect(done.result.meanScores[`run:${run.id}:sft`]).toBeGreaterThan(
    done.result.meanScores['model:untrained'],
  );

  const board = (await get('/v1/leaderboard')).json();
  expect(board.rows.map((r: { model: string }) => r.model)).toEqual([`run:${run.id}:sft`, 'model:untrained']);
  expect(board.rows[0].interval.lower).toBeGreaterThan(board.rows[1].rating);
  expect(board.comparisons).toBe(96);

  // The CLI: `rlhf eval spec.yaml --watch` prints the verdict, `rlhf leaderboard` the ranking.
  const work = await mkdtemp(join(tmpdir(), 'rlhf-eval-cli-'));
  await writeFile(join(work, 'eval.json'), JSON.stringify({ ...spec, seeds: [3] }));
  const cli = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await main(args, {
      env: { RLHF_URL: await baseUrl(api.app), RLHF_API_KEY: team.key, XDG_CONFIG_HOME: work },
      stdout: {
        write: (text: string) => {
          out += text;
        },
      },
      stderr: {
        write: (text: string) => {
          err += text;
        },
      },
      cwd: work,
    });
    return { code, out, err };
  };
  const watched = await cli(['eval', 'eval.json', '--watch']);
  expect(watched.code, watched.err).toBe(0);
  expect(watched.out).toMatch(/succeeded/);
  expect(watched.out).toContain(`run:${run.id}:sft`);
  expect(watched.out).toMatch(/95% INTERVAL/);
  const ranking = await cli(['leaderboard']);
  expect(ranking.code).toBe(0);
  expect(ranking.out.split('\n')[1]).toContain(`run:${run.id}:sft`);
  const missing = await cli(['evaluation', 'no-such-evaluation']);
  expect(missing.code).toBe(1);
  expect(missing.err.trim().split('\n')).toHaveLength(1);

  // Another team sees neither the evaluation nor a leaderboard.
  const other = await createTestTeam(api.app);
  expect((await get(`/v1/evaluations/${done.id}`, other.headers)).statusCode).toBe(404);
  expect((await get('/v1/leaderboard', other.headers)).json().rows).toEqual([]);
  // Bad specs: 400 naming the field, nothing stored.
  const before = await api.app.services.prisma.evaluation.count();
  const cases: [unknown, string][] = [
    [{ ...spec, models: [{ runId: run.id }] }, '/models'],
    [{ ...spec, models: [{ runId: run.id }, { modelId: 'no-such-model' }] }, '/models/1/modelId'],
    [{ ...spec, models: [{ runId: run.id }, { runId: run.id }] }, '/models/1'],
    [{ ...spec, datasetId: sft }, '/datasetId'],
    [{ ...spec, judge: { type: 'reward_model', runId: run.id } }, '/judge/runId'],
    [
      { ...spec, models: [{ runId: run.id }, { modelId: untrained.id }], datasetId: prompts, maxPrompts: 0 },
      '/maxPrompts',
    ],
  ];
  for (const [body, field] of cases) {
    const response = await post('/v1/evaluations', body);
    expect(response.statusCode, field).toBe(400);
    expect(response.json().error.field, response.body).toBe(field);
  }
  expect(await api.app.services.prisma.evaluation.count()).toBe(before);
}, 300_000);
