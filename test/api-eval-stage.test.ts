// The `eval` stage over REST with a real worker on sort-digits (issue 15): a run trains GRPO from the fixture SFT
// policy (a registered model) and ends with an eval stage against that SFT policy — the trained policy wins with a
// 95 % interval above 1/2 by the ground truth, and by the fixture reward model in a run that evaluates the GRPO
// policy again; SFT against itself with other seeds gives an interval around 1/2; a reachable gate passes, an
// impossible one fails; the comparisons join the leaderboard; bad eval configs are 400 naming the field.
import { generatePreferenceRows, generatePromptRows, generateSftRows } from '@rlhf/examples';
import { ByteTokenizer, hfModelFiles } from '@rlhf/model';
import { ppoPrompts, rewardModel, sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime } from '@rlhf/runtime';
import type { ModelWeights } from '@rlhf/stage-kit';
import type { RunningWorker } from '@rlhf/worker';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  createTestTeam,
  registerModel,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

let api: TestApi;
let worker: RunningWorker;
let team: TestTeam;
let sftId: string;
let rmId: string;
let evalPrompts: string;
let grpoPrompts: string;

// The fixtures as a team would upload them: Hugging Face directories (config, weights, byte tokenizer).
const hfFiles = (model: ModelWeights) => {
  const { 'README.md': _readme, ...files } = hfModelFiles(model, { tokenizer: new ByteTokenizer() });
  return files;
};

beforeAll(async () => {
  api = await startApi();
  worker = await startTestWorker(api, 'eval-stage-worker');
  team = await createTestTeam(api.app);
  const runtime = await createRuntime({ device: 'cpu' });
  try {
    sftId = (await registerModel(api.app, team.headers, 'sort-sft', hfFiles(await sftPolicy(runtime)))).id;
    rmId = (await registerModel(api.app, team.headers, 'sort-rm', hfFiles(await rewardModel(runtime)))).id;
  } finally {
    await runtime.close();
  }
  evalPrompts = await uploadDataset(api.app, team.headers, 'prompt', generatePromptRows(96, { seed: 901 }));
  grpoPrompts = await uploadDataset(api.app, team.headers, 'prompt', ppoPrompts(512));
}, 900_000);
afterAll(async () => {
  await worker?.close();
  await api?.close();
});

const post = (url: string, payload: unknown) =>
  api.app.inject({ method: 'POST', url, headers: team.headers, payload: payload as Record<string, unknown> });
const get = (url: string) => api.app.inject({ method: 'GET', url, headers: team.headers });

async function finishedRun(id: string) {
  for (let i = 0; i < 3000; i++) {
    const view = (await get(`/v1/runs/${id}`)).json();
    if (['succeeded', 'failed', 'cancelled'].includes(view.status)) return view;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`run ${id} did not finish`);
}

async function evaluated(spec: object) {
  const created = await post('/v1/runs', spec);
  expect(created.statusCode, created.body).toBe(201);
  const run = await finishedRun(created.json().id);
  expect(run.error).toBeNull();
  expect(run.status).toBe('succeeded');
  const stage = run.stages.find((st: { kind: string }) => st.kind === 'eval');
  const metrics = (await get(`/v1/runs/${run.id}/metrics?stageId=${stage.id}`)).json().items as {
    name: string;
    value: number;
  }[];
  const metric = (name: string) => metrics.find((m) => m.name === name)?.value;
  const verdict = {
    winRate: metric('eval/win_rate') as number,
    lower: metric('eval/win_rate_lower') as number,
    upper: metric('eval/win_rate_upper') as number,
  };
  return { run, stage, verdict };
}

const SAMPLING = { maxNewTokens: 12, temperature: 1, seeds: [1, 2] };

test('a GRPO stage then an eval stage: the trained policy beats SFT by the ground truth, and its gate passes', async () => {
  const { run, stage, verdict } = await evaluated({
    name: 'grpo then eval',
    model: { modelId: sftId },
    stages: [
      {
        kind: 'grpo',
        datasetId: grpoPrompts,
        config: {
          iterations: 12,
          promptsPerIteration: 16,
          groupSize: 8,
          minibatches: 2,
          lr: 1e-4,
          maxNewTokens: 12,
          reward: 'sort-digits',
          checkpointEvery: 4,
        },
      },
      {
        kind: 'eval',
        datasetId: evalPrompts,
        config: {
          against: { modelId: sftId },
          judge: { type: 'task', name: 'sort-digits' },
          ...SAMPLING,
          // Also every 4 iterations of the GRPO stage, on its checkpoints.
          checkpoints: { every: 4, maxPrompts: 32 },
        },
      },
    ],
    gate: { minWinRate: 0.5 },
  });
  console.info(`GRPO vs SFT by the ground truth over REST: ${JSON.stringify(verdict)}`);
  expect(verdict.lower).toBeGreaterThan(0.5);
  expect(run.gate).toMatchObject({ stageId: stage.id, passed: true, minWinRate: 0.5, rule: 'lower' });
  expect(run.gate.winRate).toBeCloseTo(verdict.winRate, 12);
  expect(run.gate.interval.lower).toBeCloseTo(verdict.lower, 12);

  // The GRPO stage's checkpoints were compared too: eval/win_rate (and its interval) at steps 4, 8 and 12.
  const grpo = run.stages.find((st: { kind: string }) => st.kind === 'grpo');
  const points = (await get(`/v1/runs/${run.id}/metrics?stageId=${grpo.id}&name=eval/win_rate`)).json()
    .items as { step: number; value: number }[];
  console.info(`GRPO checkpoints vs SFT: ${JSON.stringify(points.map((p) => [p.step, p.value]))}`);
  expect(points.map((p) => p.step)).toEqual([4, 8, 12]);
  for (const p of points) expect(p.value).toBeGreaterThanOrEqual(0);
  const lowers = (await get(`/v1/runs/${run.id}/metrics?stageId=${grpo.id}&name=eval/win_rate_lower`)).json()
    .items;
  expect(lowers.map((p: { step: number }) => p.step)).toEqual([4, 8, 12]);

  // The verdicts and the gate are files of the stage's final directory.
  const listed = (await get(`/v1/runs/${run.id}/artifacts?stageId=${stage.id}`)).json();
  const artifacts = (Array.isArray(listed) ? listed : listed.items) as { id: string; key: string }[];
  const download = async (file: string) => {
    const artifact = artifacts.find((a) => a.key.endsWith(`/final/${file}`));
    expect(artifact, `${file} in ${JSON.stringify(artifacts.map((a) => a.key))}`).toBeDefined();
    const response = await get(`/v1/runs/${run.id}/artifacts/${artifact?.id}/download`);
    expect(response.statusCode).toBe(200);
    return JSON.parse(response.body);
  };
  const gateFile = await download('gate.json');
  expect(gateFile).toMatchObject({ passed: true, policy: `run:${run.id}:grpo`, against: 'model:sort-sft' });
  const result = await download('evaluation.json');
  expect(result.pairs[0].rows).toHaveLength(192);
  expect(result.pairs[0].wins + result.pairs[0].ties + result.pairs[0].losses).toBe(192);

  // The comparison is one of the team's evaluations: the leaderboard rates GRPO above SFT.
  const board = (await get('/v1/leaderboard')).json();
  expect(board.rows.map((r: { model: string }) => r.model)).toEqual([`run:${run.id}:grpo`, 'model:sort-sft']);

  // The same GRPO policy (model.fromRun) judged by the fixture reward model, with a gate it cannot reach.
  const byRm = await evaluated({
    model: { fromRun: run.id, stage: 'grpo' },
    stages: [
      {
        kind: 'eval',
        datasetId: evalPrompts,
        config: {
          against: { modelId: sftId },
          judge: { type: 'reward_model', modelId: rmId },
          ...SAMPLING,
          gate: { minWinRate: 0.95, rule: 'point' },
        },
      },
    ],
  });
  console.info(`GRPO vs SFT by the reward model over REST: ${JSON.stringify(byRm.verdict)}`);
  expect(byRm.verdict.lower).toBeGreaterThan(0.5);
  expect(byRm.run.gate).toMatchObject({ passed: false, minWinRate: 0.95, rule: 'point' });
  expect(byRm.run.gate.winRate).toBeLessThan(0.95);
}, 1_800_000);

test('SFT against itself with other seeds: an interval around 1/2', async () => {
  const { run, verdict } = await evaluated({
    model: { modelId: sftId },
    stages: [
      {
        kind: 'eval',
        datasetId: evalPrompts,
        config: {
          against: { modelId: sftId },
          judge: { type: 'task', name: 'sort-digits' },
          ...SAMPLING,
          againstSeeds: [3, 4],
        },
      },
    ],
  });
  console.info(`SFT vs SFT (other seeds) by the ground truth over REST: ${JSON.stringify(verdict)}`);
  expect(verdict.lower).toBeLessThan(0.5);
  expect(verdict.upper).toBeGreaterThan(0.5);
  expect(run.gate).toBeNull();
}, 900_000);

test("an eval stage reads this run's stages: against its SFT stage, judged by its own reward model", async () => {
  const sftData = await uploadDataset(api.app, team.headers, 'sft', generateSftRows(64, { seed: 3 }));
  const pairs = await uploadDataset(
    api.app,
    team.headers,
    'preference',
    generatePreferenceRows(64, { seed: 4 }),
  );
  const { run, stage, verdict } = await evaluated({
    model: { preset: 'tiny' },
    stages: [
      { kind: 'sft', datasetId: sftData, config: { maxSteps: 10, batchSize: 8, stepsPerCall: 5 } },
      { kind: 'reward_model', datasetId: pairs, config: { maxSteps: 5, batchSize: 8, stepsPerCall: 5 } },
      {
        kind: 'eval',
        datasetId: evalPrompts,
        config: {
          against: { stage: 'sft' },
          judge: { type: 'reward_model' },
          maxPrompts: 16,
          seeds: [1],
          againstSeeds: [2],
          maxNewTokens: 8,
        },
      },
    ],
  });
  // The policy is the SFT stage itself (the run's last policy): scored by the run's reward model on both sides.
  const evaluation = (await get(`/v1/evaluations/${stage.id}`)).json();
  expect(evaluation.status).toBe('succeeded');
  const [pair] = evaluation.result.pairs;
  expect(pair).toMatchObject({ a: `run:${run.id}:sft`, b: `run:${run.id}:sft`, winRate: verdict.winRate });
  expect(pair.rows).toHaveLength(16);
  for (const row of pair.rows) {
    expect(Number.isFinite(row.scoreA) && Number.isFinite(row.scoreB)).toBe(true);
    const expected = row.scoreA > row.scoreB ? 'win' : row.scoreA < row.scoreB ? 'loss' : 'tie';
    expect(row.outcome).toBe(expected);
  }
  // A model against itself rates nothing on the leaderboard.
  expect(evaluation.result.comparisons).toEqual([]);
}, 900_000);

test('bad eval configs are 400 naming the field; nothing is stored', async () => {
  const before = (await get('/v1/runs')).json().items.length;
  const evalStage = (config: object) => ({
    model: { modelId: sftId },
    stages: [{ kind: 'eval', datasetId: evalPrompts, config }],
  });
  const task = { type: 'task', name: 'sort-digits' };
  const cases: [object, string][] = [
    [evalStage({ against: { runId: 'no-such-run' }, judge: task }), '/stages/0/config/against/runId'],
    [evalStage({ against: { modelId: 'no-such-model' }, judge: task }), '/stages/0/config/against/modelId'],
    [evalStage({ against: { stage: 'sft' }, judge: task }), '/stages/0/config/against/stage'],
    [evalStage({ judge: task }), '/stages/0/config/against'],
    [evalStage({ against: { modelId: sftId }, judge: { type: 'reward_model' } }), '/stages/0/config/judge'],
    [
      evalStage({ against: { modelId: sftId }, judge: { type: 'reward_model', modelId: sftId } }),
      '/stages/0/config/judge/modelId',
    ],
    [
      evalStage({ against: { modelId: sftId }, judge: task, gate: { minWinRate: 2 } }),
      '/stages/0/config/gate',
    ],
    // A grader judge has no reward model to serve a reward_model grader.
    [
      evalStage({
        against: { modelId: sftId },
        judge: { type: 'grader', grader: { type: 'reward_model', name: 'rm' } },
      }),
      '/stages/0/config/judge/grader',
    ],
    [
      {
        model: { modelId: sftId },
        stages: [{ kind: 'grpo', datasetId: grpoPrompts, config: { reward: 'sort-digits' } }],
        gate: { minWinRate: 0.6 },
      },
      '/gate',
    ],
  ];
  for (const [spec, path] of cases) {
    const response = await post('/v1/runs', spec);
    expect(response.statusCode, `${path}: ${response.body}`).toBe(400);
    const paths = JSON.stringify(response.json());
    expect(paths, response.body).toContain(`"${path}`);
  }
  expect((await get('/v1/runs')).json().items).toHaveLength(before);
});
