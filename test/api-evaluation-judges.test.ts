// The grader and language-model judges over REST with a real evaluation worker: a grader scores each response
// against its prompt row's reference (score difference → verdict); a judge model built to prefer the answer
// shown first would hand model A every prompt in one order, and the swapped evaluation turns that into ties
// and reports the bias (every verdict flipped, P(first) = σ(margin)); bad judges are 400 naming the field.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '@rlhf/cli';
import { groundTruthScore } from '@rlhf/examples';
import type { RunningEvaluationWorker } from '@rlhf/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ADMIN_KEY,
  baseUrl,
  createTestTeam,
  registerModel,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';
import {
  finishedEvaluation,
  firstPreferringJudgeFiles,
  untrainedModelFiles,
  withoutChatTemplate,
} from './evaluation-helpers.js';
import { startTestEvaluationWorker } from './worker-helpers.js';

let api: TestApi;
let evaluator: RunningEvaluationWorker;
let team: TestTeam;
let modelA: string;
let modelB: string;
let prompts: string;
const MARGIN = 1.5;
const ROWS = Array.from({ length: 12 }, (_, i) => {
  const digits = [i % 10, (i * 7) % 10, (i * 3 + 1) % 10];
  return { prompt: `sort ${digits.join(' ')}:`, answer: [...digits].sort().join(' ') };
});

let sharedModels: string;
beforeAll(async () => {
  // The judge also as an admin model (MODEL_DIRS): a directory on shared storage every team sees.
  sharedModels = await mkdtemp(join(tmpdir(), 'rlhf-shared-judge-'));
  await mkdir(join(sharedModels, 'shared-judge'));
  // With a Jinja chat template of its own (not the byte tokenizer's copy of the built-in format).
  const ownTemplate =
    '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}';
  for (const [name, data] of Object.entries(firstPreferringJudgeFiles(MARGIN, { chatTemplate: ownTemplate })))
    await writeFile(join(sharedModels, 'shared-judge', name), data);
  api = await startApi({ modelDirs: [join(sharedModels, 'shared-judge')] });
  evaluator = await startTestEvaluationWorker(api);
  team = await createTestTeam(api.app);
  modelA = (await registerModel(api.app, team.headers, 'untrained-a', untrainedModelFiles(1))).id;
  modelB = (await registerModel(api.app, team.headers, 'untrained-b', untrainedModelFiles(2))).id;
  prompts = await uploadDataset(api.app, team.headers, 'prompt', ROWS);
}, 60_000);
afterAll(async () => {
  await evaluator?.close();
  await api?.close();
  await rm(sharedModels, { recursive: true, force: true });
});

const post = (payload: unknown) =>
  api.app.inject({
    method: 'POST',
    url: '/v1/evaluations',
    headers: team.headers,
    payload: payload as Record<string, unknown>,
  });

const base = () => ({
  models: [{ modelId: modelA }, { modelId: modelB }],
  datasetId: prompts,
  seeds: [1, 2],
  sampling: { maxNewTokens: 8, temperature: 1 },
});

/** `rlhf <args>` against the API as the team; what it printed. */
async function runCli(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, {
    env: {
      RLHF_URL: await baseUrl(api.app),
      RLHF_API_KEY: team.key,
      XDG_CONFIG_HOME: await mkdtemp(join(tmpdir(), 'rlhf-cli-')),
    },
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
    cwd: tmpdir(),
  });
  return { code, out, err };
}

/** 1 − Levenshtein / longer length, computed here by the textbook recurrence on code points. */
function editSimilarity(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  if (x.length === 0 && y.length === 0) return 1;
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++)
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1),
      );
    previous = current;
  }
  return 1 - previous[y.length] / Math.max(x.length, y.length);
}

describe('grader judge', () => {
  test('each response graded against its row; the score difference is the verdict', async () => {
    const created = await post({
      ...base(),
      judge: {
        type: 'grader',
        grader: { type: 'text_similarity', metric: 'edit_distance', reference: '{{item.answer}}' },
        tieMargin: 0.05,
      },
      groundTruth: 'sort-digits',
    });
    expect(created.statusCode, created.body).toBe(201);
    const done = await finishedEvaluation(api, team.headers, created.json().id);
    expect(done.error).toBeNull();
    const [pair] = done.result.pairs;
    expect(pair.rows).toHaveLength(24);
    // The grader's agreement with the task's ground truth, counted here: same verdict share and Cohen's κ.
    const truth = pair.rows.map((row: { prompt: string; responseA: string; responseB: string }) => {
      const gap = groundTruthScore(row.prompt, row.responseA) - groundTruthScore(row.prompt, row.responseB);
      return gap > 0 ? 'win' : gap < 0 ? 'loss' : 'tie';
    });
    const verdicts = pair.rows.map((row: { outcome: string }) => row.outcome);
    const same = verdicts.filter((v: string, i: number) => v === truth[i]).length / 24;
    const share = (xs: string[], k: string) => xs.filter((x) => x === k).length / 24;
    const chance = ['win', 'tie', 'loss'].reduce((s, k) => s + share(verdicts, k) * share(truth, k), 0);
    expect(pair.groundTruthAgreement).toMatchObject({ task: 'sort-digits', n: 24 });
    expect(pair.groundTruthAgreement.agreement).toBeCloseTo(same, 12);
    expect(pair.groundTruthAgreement.kappa).toBeCloseTo(
      chance === 1 ? 1 : (same - chance) / (1 - chance),
      12,
    );
    expect(pair.groundTruthAgreement.decided).toBe(truth.filter((t: string) => t !== 'tie').length);
    const answerOf = new Map(ROWS.map((r) => [r.prompt, r.answer]));
    let wins = 0;
    let losses = 0;
    for (const row of pair.rows) {
      const answer = answerOf.get(row.prompt) as string;
      expect(row.scoreA).toBeCloseTo(editSimilarity(row.responseA, answer), 12);
      expect(row.scoreB).toBeCloseTo(editSimilarity(row.responseB, answer), 12);
      const gap = row.scoreA - row.scoreB;
      const expected = gap > 0.05 ? 'win' : gap < -0.05 ? 'loss' : 'tie';
      expect(row.outcome).toBe(expected);
      if (expected === 'win') wins++;
      if (expected === 'loss') losses++;
    }
    expect([pair.wins, pair.losses, pair.ties]).toEqual([wins, losses, 24 - wins - losses]);
    expect(done.result.positionBias).toBeUndefined();
  }, 300_000);
});

describe('language-model judge', () => {
  test('a judge preferring the first answer: swapping both orders removes the bias and reports its rate', async () => {
    const judge = await registerModel(
      api.app,
      team.headers,
      'first-preferring-judge',
      firstPreferringJudgeFiles(MARGIN),
    );
    const pFirst = 1 / (1 + Math.exp(-MARGIN));
    const evaluate = async (models: unknown[], extra: Record<string, unknown> = {}) => {
      const created = await post({
        ...base(),
        models,
        judge: { type: 'language_model', modelId: judge.id, ...extra },
      });
      expect(created.statusCode, created.body).toBe(201);
      const done = await finishedEvaluation(api, team.headers, created.json().id);
      expect(done.error).toBeNull();
      expect(done.status).toBe('succeeded');
      return done;
    };
    const done = await evaluate([{ modelId: modelA }, { modelId: modelB }]);
    const [pair] = done.result.pairs;
    expect(pair.rows).toHaveLength(24);
    for (const row of pair.rows) {
      // One order alone would call A better every time (and B, were B shown first): the bias, measured exactly.
      expect(row.pAFirst).toBeCloseTo(pFirst, 5);
      expect(row.pBFirst).toBeCloseTo(pFirst, 5);
      expect(row.outcome).toBe('tie');
    }
    expect(pair).toMatchObject({ wins: 0, ties: 24, losses: 0, winRate: 0.5 });
    expect(pair.positionBias).toMatchObject({
      judged: 24,
      flipRate: 1,
      favouredFirst: 24,
      favouredSecond: 0,
    });
    expect(pair.positionBias.meanFirstPreference).toBeCloseTo(pFirst, 5);
    expect(done.result.positionBias).toMatchObject({ judged: 24, flipRate: 1, favouredFirst: 24 });
    console.info(
      `first-preferring judge: P(first) ${pair.positionBias.meanFirstPreference.toFixed(4)} (σ(${MARGIN}) = ${pFirst.toFixed(4)}), flip rate ${pair.positionBias.flipRate}, swapped win rate ${pair.winRate}`,
    );
    // The CLI shows the bias with the verdict.
    const cli = await runCli(['evaluation', done.id]);
    expect(cli.code, cli.err).toBe(0);
    expect(cli.out).toContain(
      'position bias model:untrained-a vs model:untrained-b: 100.0% of 24 verdicts flipped',
    );
    // Averaging both orders cancels the same preference; listing the models the other way round changes nothing.
    const averaged = await evaluate([{ modelId: modelB }, { modelId: modelA }], { combine: 'averaged' });
    expect(averaged.result.pairs[0]).toMatchObject({ wins: 0, ties: 24, losses: 0 });
    expect(averaged.result.positionBias.flipRate).toBe(1);
    // The same judge requests again: answered from the judgment cache, generations from the sample cache.
    expect(averaged.result.work.judgments).toEqual({ judged: 0, reused: 48 });
    expect(averaged.result.work.generations.generated).toBe(0);
  }, 300_000);
});

describe('an admin model as the judge', () => {
  test('a shared judge model of MODEL_DIRS judges any team’s evaluation', async () => {
    // Registered at start-up by the API's main; the scan route does it here.
    const scan = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/models/scan',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(scan.statusCode, scan.body).toBe(200);
    const [{ modelId }] = scan.json().data;
    const created = await post({
      ...base(),
      seeds: [3],
      judge: { type: 'language_model', modelId },
    });
    expect(created.statusCode, created.body).toBe(201);
    const done = await finishedEvaluation(api, team.headers, created.json().id);
    expect(done.error).toBeNull();
    expect(done.result.positionBias).toMatchObject({ judged: 12, flipRate: 1, favouredFirst: 12 });
    expect(done.result.pairs[0].ties).toBe(12);
  }, 120_000);
});

describe('a judge model’s own chat template', () => {
  test('frames the judge prompt: a template that raises fails the evaluation with its message', async () => {
    const raising = firstPreferringJudgeFiles(MARGIN, {
      chatTemplate: "{{ raise_exception('this judge template refuses every conversation') }}",
    });
    const judge = await registerModel(api.app, team.headers, 'raising-judge', raising);
    const created = await post({
      ...base(),
      seeds: [4],
      judge: { type: 'language_model', modelId: judge.id },
    });
    expect(created.statusCode, created.body).toBe(201);
    const done = await finishedEvaluation(api, team.headers, created.json().id);
    expect(done.status).toBe('failed');
    expect(done.error).toContain('this judge template refuses every conversation');
  }, 120_000);
});

describe('bad judges', () => {
  test('400 naming the field, nothing stored', async () => {
    const baseModel = await registerModel(
      api.app,
      team.headers,
      'base-model',
      withoutChatTemplate(untrainedModelFiles(3)),
    );
    const before = await api.app.services.prisma.evaluation.count();
    const cases: [unknown, string][] = [
      [{ ...base(), judge: { type: 'language_model', modelId: baseModel.id } }, '/judge/modelId'],
      [{ ...base(), judge: { type: 'language_model', modelId: 'no-such-model' } }, '/judge/modelId'],
      [
        { ...base(), judge: { type: 'language_model', modelId: modelA, template: 'Which? {first}' } },
        '/judge/template',
      ],
      [
        { ...base(), judge: { type: 'grader', grader: { type: 'regex', pattern: '(a)\\1', mode: 'match' } } },
        '/judge/grader/pattern',
      ],
      [
        {
          ...base(),
          judge: {
            type: 'grader',
            grader: { type: 'string_check', operation: 'eq', reference: '{{item.missing}}' },
          },
        },
        '/datasetId',
      ],
      [{ ...base(), judge: { type: 'grader', grader: { type: 'reward_model' } } }, '/judge/grader'],
      [
        {
          ...base(),
          models: [{ modelId: modelA }, { modelId: 'no-such-model' }],
          judge: { type: 'task', name: 'sort-digits' },
        },
        '/models/1/modelId',
      ],
      [{ ...base(), maxPrompts: 0, judge: { type: 'task', name: 'sort-digits' } }, '/maxPrompts'],
    ];
    for (const [body, field] of cases) {
      const response = await post(body);
      expect(response.statusCode, `${field}: ${response.body}`).toBe(400);
      expect(response.json().error.field, response.body).toBe(field);
    }
    expect(await api.app.services.prisma.evaluation.count()).toBe(before);
  }, 60_000);
});

describe('leaderboard', () => {
  test('filters by the grader and language-model judges', async () => {
    const board = async (judge: string) =>
      (
        await api.app.inject({ method: 'GET', url: `/v1/leaderboard?judge=${judge}`, headers: team.headers })
      ).json();
    // The grader evaluation above (2 seeds × 12 prompts); the judge-model ones (24 + 24 + 12; the failed one none).
    expect((await board('grader')).comparisons).toBe(24);
    expect((await board('language_model')).comparisons).toBe(60);
    expect((await board('language_model')).rows.map((r: { model: string }) => r.model).sort()).toEqual([
      'model:untrained-a',
      'model:untrained-b',
    ]);
  });
});
