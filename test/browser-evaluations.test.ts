// The dashboard's evaluation pages in real headless Chromium (Debian's chromium, driven by playwright-core)
// against a real API, a worker training a short SFT run and an evaluation worker: an SFT policy against an
// untrained registered model on sort-digits, judged by the task's ground truth. A wrong key is refused; the
// evaluation page shows its models, judge, the win-rate bar with its interval and the ½ line, W/T/L, mean
// scores and the verdict table, whose filter narrows it; the leaderboard ranks both models with their
// intervals; another team's evaluation id is not found. The leaderboard's screenshot is
// test-results/leaderboard.png (the evaluation page's test-results/evaluation.png).
import { mkdir, readFile } from 'node:fs/promises';
import { createApiClient, waitForRun } from '@rlhf/demo';
import { sortDigitsFiles } from '@rlhf/examples';
import type { RunningEvaluationWorker, RunningWorker } from '@rlhf/worker';
import type { Browser, Locator } from 'playwright-core';
import { launchChromium } from './browser-helpers.js';
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

const SCREENSHOT = 'test-results/leaderboard.png';

let api: TestApi;
let url: string;
let worker: RunningWorker;
let evaluator: RunningEvaluationWorker;
let browser: Browser;
let team: TestTeam;

beforeAll(async () => {
  api = await startApi();
  url = await baseUrl(api.app);
  worker = await startTestWorker(api, 'browser-eval-worker');
  evaluator = await startTestEvaluationWorker(api);
  team = await createTestTeam(api.app);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await evaluator?.close();
  await worker?.close();
  await api?.close();
});

interface Pair {
  a: string;
  b: string;
  wins: number;
  ties: number;
  losses: number;
  winRate: number;
  interval: { lower: number; upper: number; level: number };
  rows: { prompt: string; responseA: string; responseB: string }[];
}
interface Board {
  rows: { model: string; rating: number; rank: number; interval: { lower: number; upper: number } }[];
}

async function createEvaluation(headers: TestTeam['headers'], spec: object): Promise<string> {
  const response = await api.app.inject({
    method: 'POST',
    url: '/v1/evaluations',
    headers,
    payload: spec as Record<string, unknown>,
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().id;
}
const get = async <T>(path: string, headers = team.headers): Promise<T> =>
  (await api.app.inject({ method: 'GET', url: path, headers })).json();
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

test('leaderboard and evaluation pages: ranks with intervals, the win-rate bar, verdicts filtered, not found', async () => {
  const client = createApiClient(url, team.key);
  const upload = async (kind: 'sft' | 'prompt', file: string) =>
    (await client.uploadDataset(`sort-digits-${kind}`, kind, await readFile(file, 'utf8'))).id;
  const sft = await upload('sft', sortDigitsFiles.sft);
  const prompts = await upload('prompt', sortDigitsFiles.prompt);
  const submitted = await client.createRun({
    name: 'short sft',
    model: { preset: 'tiny' },
    stages: [
      { kind: 'sft', datasetId: sft, config: { maxSteps: 100, batchSize: 32, lr: 3e-3, stepsPerCall: 20 } },
    ],
  });
  const run = await waitForRun(client, submitted.id);
  expect(run.status).toBe('succeeded');
  const untrained = await registerModel(api.app, team.headers, 'untrained');
  const id = await createEvaluation(team.headers, {
    name: 'sft vs untrained',
    models: [{ runId: run.id }, { modelId: untrained.id }],
    datasetId: prompts,
    maxPrompts: 16,
    seeds: [1, 2],
    sampling: { maxNewTokens: 12, temperature: 1 },
    judge: { type: 'task', name: 'sort-digits' },
  });
  // Another team's evaluation (tiny: only its id matters here), queued after this one.
  const other = await createTestTeam(api.app);
  const otherPrompts = (
    await createApiClient(url, other.key).uploadDataset(
      'other-prompts',
      'prompt',
      await readFile(sortDigitsFiles.prompt, 'utf8'),
    )
  ).id;
  const otherModels = [
    await registerModel(api.app, other.headers, 'other-a'),
    await registerModel(api.app, other.headers, 'other-b'),
  ];
  const otherId = await createEvaluation(other.headers, {
    models: otherModels.map((m) => ({ modelId: m.id })),
    datasetId: otherPrompts,
    maxPrompts: 1,
    sampling: { maxNewTokens: 2 },
    judge: { type: 'task', name: 'sort-digits' },
  });

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      pageErrors.push(message.text()); // CSP violations, script errors (the 401 and 404 are expected)
    }
  });
  const requested: string[] = [];
  page.on('request', (request) => void requested.push(request.url()));

  // A wrong key is refused with a message; the right one opens the evaluations list.
  await page.goto(`${url}/dashboard/evaluations`);
  await page.fill('#key', 'rlhf_000000000000_not-a-real-key-at-all');
  await page.click('#login button[type=submit]');
  await expect.poll(() => page.textContent('#login-message')).toMatch(/key was not accepted/);
  expect(await page.isVisible('#page')).toBe(false);
  await page.fill('#key', team.key);
  await page.click('#login button[type=submit]');

  // The list links to the evaluation's page, which follows it until it has finished.
  await page.click(`#evaluation-table tr[data-evaluation-id="${id}"] a`);
  expect(new URL(page.url()).pathname).toBe(`/dashboard/evaluations/${id}`);
  await page.waitForSelector('#evaluation-status.succeeded', { timeout: 120_000 });
  const done = await get<{ status: string; result: { pairs: Pair[]; meanScores: Record<string, number> } }>(
    `/v1/evaluations/${id}`,
  );
  const [pair] = done.result.pairs;
  const sftModel = `run:${run.id}:sft`;
  expect(pair).toMatchObject({ a: sftModel, b: 'model:untrained' });
  console.info(
    `sft vs untrained: win rate ${pair.winRate} [${pair.interval.lower}, ${pair.interval.upper}] over ${pair.rows.length}`,
  );

  // Status, models (A links to its run), judge.
  expect(await page.textContent('#evaluation-head h2')).toContain('sft vs untrained');
  const models = page.locator('#evaluation-models [data-model]');
  expect(await attributes(models, 'data-model')).toEqual([sftModel, 'model:untrained']);
  expect(await models.first().locator('a').textContent()).toBe('short sft');
  expect(await page.textContent('#evaluation-judge')).toContain('task grader sort-digits');

  // The win rate as a number and a bar: the interval band where the API puts it, the ½ line in the middle.
  const card = page.locator('#pairs .pair[data-pair="0"]');
  expect(await card.locator('.winrate').textContent()).toBe(pct(pair.winRate));
  expect(await card.locator('.winrate-interval').textContent()).toBe(
    `95 %: ${pct(pair.interval.lower)} – ${pct(pair.interval.upper)}`,
  );
  const bar = card.locator('.winrate-bar');
  expect(Number(await bar.getAttribute('data-lower'))).toBeCloseTo(pair.interval.lower * 100, 1);
  expect(Number(await bar.getAttribute('data-upper'))).toBeCloseTo(pair.interval.upper * 100, 1);
  expect(Number(await bar.getAttribute('data-value'))).toBeCloseTo(pair.winRate * 100, 1);
  const track = (await bar.locator('.ci-track').boundingBox())!;
  const band = (await bar.locator('.ci-band').boundingBox())!;
  const half = (await bar.locator('.ci-ref').boundingBox())!;
  expect(band.width).toBeGreaterThan(1);
  expect(Math.abs(band.x - (track.x + track.width * pair.interval.lower))).toBeLessThan(3);
  expect(Math.abs(half.x - (track.x + track.width / 2))).toBeLessThan(3);
  const wtl = await card.locator('.wtl').textContent();
  expect(wtl).toContain(`A wins ${pair.wins}`);
  expect(wtl).toContain(`ties ${pair.ties}`);
  expect(wtl).toContain(`B wins ${pair.losses}`);
  // Mean scores, best first.
  const scoreRows = page.locator('#mean-score-table tbody tr');
  expect(await scoreRows.count()).toBe(2);
  const byScore = Object.entries(done.result.meanScores)
    .sort(([, x], [, y]) => y - x)
    .map(([model]) => model);
  expect(await attributes(scoreRows, 'data-model')).toEqual(byScore);

  // Every verdict with both responses; the text filter narrows them to one prompt's rows.
  const verdicts = page.locator('#verdict-table tr.verdict');
  expect(await verdicts.count()).toBe(pair.rows.length);
  expect(await page.textContent('#verdict-count')).toBe(`${pair.rows.length} verdicts`);
  const prompt = (await verdicts.first().locator('td.prompt').textContent()) ?? '';
  expect(prompt).toBe(pair.rows[0].prompt);
  await page.fill('#verdict-filter', prompt);
  const needle = prompt.toLowerCase();
  const matching = pair.rows.filter((r) =>
    `${r.prompt}\n${r.responseA}\n${r.responseB}`.toLowerCase().includes(needle),
  );
  expect(matching.length).toBeGreaterThanOrEqual(2); // its two seeds at least
  expect(matching.length).toBeLessThan(pair.rows.length);
  await expect.poll(() => verdicts.count()).toBe(matching.length);
  for (const text of await verdicts.allTextContents()) expect(text.toLowerCase()).toContain(needle);
  expect(await page.textContent('#verdict-count')).toMatch(new RegExp(`^\\d+ of ${pair.rows.length} match$`));
  await page.fill('#verdict-filter', 'no verdict says this');
  await expect.poll(() => page.textContent('#verdicts')).toMatch(/No verdict matches/);
  await page.fill('#verdict-filter', '');
  await page.selectOption('#verdict-outcome', 'win');
  await expect.poll(() => verdicts.count()).toBe(pair.wins);
  await page.selectOption('#verdict-outcome', '');
  await mkdir('test-results', { recursive: true });
  await page.screenshot({ path: 'test-results/evaluation.png', fullPage: true });

  // Long texts wrap: on a narrow screen no response cell is wider than its box, and the page does not scroll
  // sideways (the table scrolls in its own box). Strings: this project's TypeScript has no DOM types.
  await page.setViewportSize({ width: 420, height: 900 });
  expect(
    await page.evaluate(
      "[...document.querySelectorAll('#verdict-table td.text')].every((td) => td.scrollWidth <= td.clientWidth + 1)",
    ),
  ).toBe(true);
  expect(await page.evaluate('document.documentElement.scrollWidth <= innerWidth')).toBe(true);
  await page.setViewportSize({ width: 1280, height: 900 });

  // The leaderboard, from the navigation: both models best first, with their ratings and intervals.
  await page.click('#nav a[href="/dashboard/leaderboard"]');
  await page.waitForSelector('#leaderboard-table tr.rating');
  const board = await get<Board>('/v1/leaderboard');
  expect(board.rows.map((r) => r.model).sort()).toEqual([sftModel, 'model:untrained'].sort());
  const ratings = page.locator('#leaderboard-table tr.rating');
  expect(await attributes(ratings, 'data-model')).toEqual(board.rows.map((r) => r.model));
  expect((await attributes(ratings, 'data-rank')).map(Number)).toEqual(board.rows.map((r) => r.rank));
  expect(board.rows[0].rating).toBeGreaterThanOrEqual(board.rows[1].rating);
  for (const [i, row] of board.rows.entries()) {
    const tr = ratings.nth(i);
    expect(await tr.locator('.rating-value').textContent()).toBe(String(Math.round(row.rating)));
    expect(await tr.locator('.rating-interval').textContent()).toBe(
      `${Math.round(row.interval.lower)} – ${Math.round(row.interval.upper)}`,
    );
    const ci = tr.locator('.ci');
    const [lower, value, upper] = await Promise.all(
      ['data-lower', 'data-value', 'data-upper'].map(async (a) => Number(await ci.getAttribute(a))),
    );
    expect(lower).toBeLessThanOrEqual(value);
    expect(value).toBeLessThanOrEqual(upper);
    expect((await ci.locator('.ci-band').boundingBox())!.width).toBeGreaterThan(1);
    expect(await tr.locator('.wtl').textContent()).toMatch(/^\d+ \/ \d+ \/ \d+$/);
  }
  expect(await page.textContent('#leaderboard-summary')).toContain(`${pair.rows.length} comparisons`);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // Another team's evaluation id is not found (the API answers 404, the page says so).
  await page.goto(`${url}/dashboard/evaluations/${otherId}`);
  await page.waitForSelector('#not-found');
  expect(await page.textContent('#not-found')).toContain('Evaluation not found');
  expect(await page.textContent('#not-found')).toContain(otherId);

  expect(pageErrors).toEqual([]);
  expect(requested.filter((u) => !u.startsWith(`${url}/`))).toEqual([]);
  expect(requested.filter((u) => u.includes(team.key))).toEqual([]);
  await context.close();
}, 240_000);

/** One attribute of every element a locator matches, in document order. */
async function attributes(locator: Locator, name: string): Promise<(string | null)[]> {
  const values: (string | null)[] = [];
  for (let i = 0; i < (await locator.count()); i++) values.push(await locator.nth(i).getAttribute(name));
  return values;
}
