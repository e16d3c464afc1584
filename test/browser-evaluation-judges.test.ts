// The dashboard's evaluation page for a language-model judge, in real headless Chromium (Debian's chromium, driven
// by playwright-core) against a real API and evaluation worker: a judge model built to prefer the answer shown
// first compares two untrained models; the page names the judge (both orders, consistent), shows the measured
// position bias overall and per pair, both orders' P(better) per verdict, and the work reused from earlier.
import type { RunningEvaluationWorker } from '@rlhf/worker';
import type { Browser } from 'playwright-core';
import { launchChromium } from './browser-helpers.js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  registerModel,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';
import { finishedEvaluation, firstPreferringJudgeFiles, untrainedModelFiles } from './evaluation-helpers.js';
import { startTestEvaluationWorker } from './worker-helpers.js';

const MARGIN = 2;

let api: TestApi;
let url: string;
let evaluator: RunningEvaluationWorker;
let browser: Browser;
let team: TestTeam;

beforeAll(async () => {
  api = await startApi();
  url = await baseUrl(api.app);
  evaluator = await startTestEvaluationWorker(api);
  team = await createTestTeam(api.app);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await evaluator?.close();
  await api?.close();
});

test('evaluation page of a language-model judge: position bias overall and per pair, both orders per verdict', async () => {
  const models = [];
  for (const seed of [1, 2])
    models.push({
      modelId: (await registerModel(api.app, team.headers, `m${seed}`, untrainedModelFiles(seed))).id,
    });
  const judge = await registerModel(api.app, team.headers, 'judge', firstPreferringJudgeFiles(MARGIN));
  const prompts = await uploadDataset(
    api.app,
    team.headers,
    'prompt',
    Array.from({ length: 6 }, (_, i) => ({ prompt: `sort ${i} ${(i * 7) % 10}:` })),
  );
  const created = await api.app.inject({
    method: 'POST',
    url: '/v1/evaluations',
    headers: team.headers,
    payload: {
      name: 'biased judge',
      models,
      datasetId: prompts,
      seeds: [1, 2],
      sampling: { maxNewTokens: 6 },
      judge: { type: 'language_model', modelId: judge.id },
      groundTruth: 'sort-digits',
    },
  });
  expect(created.statusCode, created.body).toBe(201);
  const id = created.json().id;
  const done = await finishedEvaluation(api, team.headers, id);
  expect(done.status).toBe('succeeded');
  const [pair] = done.result.pairs;

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  await page.goto(`${url}/dashboard/evaluations/${id}`);
  await page.fill('#key', team.key);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#evaluation-status.succeeded');

  expect(await page.textContent('#evaluation-judge')).toContain(
    `judge model ${judge.id} · both orders, consistent`,
  );
  const bias = `100.0 % of 12 verdicts changed when the answers swapped (12 favoured the answer shown first, 0 the second`;
  expect(await page.textContent('#evaluation-position-bias')).toContain(bias);
  expect(await page.textContent('#pairs .pair[data-pair="0"] .pair-position-bias')).toContain(bias);
  expect(await page.textContent('#evaluation-position-bias')).toContain(
    `mean P(first better) ${Number(pair.positionBias.meanFirstPreference.toPrecision(4))}`,
  );
  // The judge's agreement with the task's ground truth (every verdict a tie here: the bias was all it had).
  const agreement = pair.groundTruthAgreement;
  expect(agreement).toMatchObject({ task: 'sort-digits', n: 12 });
  expect(await page.textContent('#pairs .pair[data-pair="0"] .pair-agreement')).toContain(
    `agrees with the sort-digits ground truth on ${(agreement.agreement * 100).toFixed(1)} % of 12 verdicts`,
  );
  // Nothing earlier to reuse: 2 models × 2 seeds × 1 batch generated, every distinct judge request asked.
  const { generations, judgments } = done.result.work;
  expect(generations).toEqual({ generated: 4, reused: 0 });
  expect(await page.textContent('#evaluation-work')).toBe(
    `0 of 4 generation batches · ${judgments.reused} of 24 judge answers from earlier work`,
  );
  // Both orders' P(better) per verdict, every one a tie.
  const headers = await page.locator('#verdict-table th').allTextContents();
  expect(headers).toContain('P(A better), A first');
  expect(headers).toContain('P(B better), B first');
  const first = page.locator('#verdict-table tr.verdict').first();
  const cells = await first.locator('td.num').allTextContents();
  expect(cells).toContain(String(Number(pair.rows[0].pAFirst.toPrecision(4))));
  expect(await page.locator('#verdict-table tr.verdict[data-outcome="tie"]').count()).toBe(12);
  expect(pageErrors).toEqual([]);
  await context.close();
}, 180_000);
