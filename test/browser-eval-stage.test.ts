// A run's gate on the dashboard's run page, in real headless Chromium against a real API and worker: two short runs
// (an SFT stage, then an eval stage against that SFT stage with other seeds, judged by the sort-digits ground
// truth) with a gate every win rate reaches and one none can; the run page shows "gate passed" and "gate failed"
// with the measured win rate and interval, and charts the eval stage's eval/win_rate.
import { generatePromptRows, generateSftRows } from '@rlhf/examples';
import type { RunningWorker } from '@rlhf/worker';
import type { Browser } from 'playwright-core';
import { launchChromium } from './browser-helpers.js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

let api: TestApi;
let url: string;
let worker: RunningWorker;
let browser: Browser;
let team: TestTeam;

beforeAll(async () => {
  api = await startApi();
  url = await baseUrl(api.app);
  worker = await startTestWorker(api, 'browser-eval-stage-worker');
  team = await createTestTeam(api.app);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await worker?.close();
  await api?.close();
});

async function finishedRun(spec: object) {
  const created = await api.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: team.headers,
    payload: spec as Record<string, unknown>,
  });
  expect(created.statusCode, created.body).toBe(201);
  for (let i = 0; i < 2000; i++) {
    const run = (
      await api.app.inject({ method: 'GET', url: `/v1/runs/${created.json().id}`, headers: team.headers })
    ).json();
    if (['succeeded', 'failed', 'cancelled'].includes(run.status)) return run;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error('the run did not finish');
}

test('the run page shows the gate: passed, failed, with the win rate and its interval', async () => {
  const sft = await uploadDataset(api.app, team.headers, 'sft', generateSftRows(32, { seed: 5 }));
  const prompts = await uploadDataset(api.app, team.headers, 'prompt', generatePromptRows(8, { seed: 6 }));
  const spec = (gate: object) => ({
    model: { preset: 'tiny' },
    stages: [
      { kind: 'sft', datasetId: sft, config: { maxSteps: 4, batchSize: 8, stepsPerCall: 4 } },
      {
        kind: 'eval',
        datasetId: prompts,
        config: {
          against: { stage: 'sft' },
          judge: { type: 'task', name: 'sort-digits' },
          seeds: [1],
          againstSeeds: [2],
          maxNewTokens: 6,
        },
      },
    ],
    gate,
  });
  // Every win rate is >= 0; no interval of 8 comparisons of a model with itself has its lower bound at 1.
  const passing = await finishedRun(spec({ minWinRate: 0, rule: 'point' }));
  const failing = await finishedRun(spec({ minWinRate: 1 }));
  expect(passing.status).toBe('succeeded');
  expect(failing.status).toBe('succeeded');
  expect(passing.gate.passed).toBe(true);
  expect(failing.gate.passed).toBe(false);

  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${url}/dashboard/runs/${passing.id}`);
  await page.fill('#key', team.key);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#run-gate');
  expect(await page.textContent('#run-gate .badge')).toBe('gate passed');
  expect(await page.getAttribute('#run-gate .badge', 'class')).toContain('succeeded');
  const numbers = (gate: { winRate: number; interval: { lower: number; upper: number } }) =>
    `win rate ${gate.winRate.toFixed(3)} [${gate.interval.lower.toFixed(3)}, ${gate.interval.upper.toFixed(3)}]`;
  expect(await page.textContent('#run-gate')).toContain(numbers(passing.gate));
  expect(await page.textContent('#run-gate')).toContain('win rate ≥ 0');
  // The eval stage's metrics are charted like any stage's.
  await expect.poll(() => page.textContent('#charts'), { timeout: 30_000 }).toContain('eval/win_rate');

  await page.goto(`${url}/dashboard/runs/${failing.id}`);
  await page.waitForSelector('#run-gate');
  expect(await page.textContent('#run-gate .badge')).toBe('gate failed');
  expect(await page.getAttribute('#run-gate .badge', 'class')).toContain('failed');
  expect(await page.textContent('#run-gate')).toContain('interval lower bound ≥ 1');
  expect(await page.textContent('#run-gate')).toContain(numbers(failing.gate));
  expect(pageErrors).toEqual([]);
  await page.close();
}, 600_000);
