// The dashboard in real headless Chromium (Debian's chromium, driven by playwright-core) against a real API
// and an in-process worker training the tiny model on the CPU: log in, watch a run train live (hover, zoom,
// smoothing), read its samples, download an artifact, cancel a second run from the page and compare the two,
// a failed run's long error wrapping on a narrow screen, the workers page; a wrong key, a key revoked while
// the page is open, and another team's run id. The screenshot of the finished run is test-results/dashboard.png.
import { mkdir, readFile } from 'node:fs/promises';
import { sortDigitsFiles, tasks } from '@rlhf/examples';
import { type RunningWorker, runners, startWorker } from '@rlhf/worker';
import { createLogger } from '@rlhf/config';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './browser-helpers.js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createApiKey } from '@rlhf/api';
import { ADMIN_KEY, baseUrl, createTestTeam, startApi, type TestApi, type TestTeam } from './api-helpers.js';

const SCREENSHOT = 'test-results/dashboard.png';
const WORKER_ID = 'browser-worker';
const logger = createLogger('browser-test', process.env.TEST_LOG_LEVEL ?? 'silent');

let api: TestApi;
let url: string;
let worker: RunningWorker;
let browser: Browser;
let team: TestTeam;
let otherTeamsRun: string;

async function rest<T>(
  path: string,
  key: string,
  init: { method?: string; body?: unknown; raw?: string } = {},
) {
  const response = await fetch(`${url}${path}`, {
    method: init.method ?? (init.body || init.raw ? 'POST' : 'GET'),
    headers: {
      authorization: `Bearer ${key}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...(init.raw ? { 'content-type': 'application/jsonl' } : {}),
    },
    body: init.raw ?? (init.body ? JSON.stringify(init.body) : undefined),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return (response.status === 204 ? undefined : await response.json()) as T;
}
const upload = async (key: string, kind: string, file: string) =>
  (
    await rest<{ id: string }>(`/v1/datasets?name=browser-${kind}&kind=${kind}`, key, {
      raw: await readFile(file, 'utf8'),
    })
  ).id;
const submit = (key: string, spec: object) => rest<{ id: string }>('/v1/runs', key, { body: spec });
const sftOnly = (datasetId: string, config: object) => ({
  name: 'long sft',
  model: { preset: 'tiny' },
  stages: [{ kind: 'sft', datasetId, config }],
});

beforeAll(async () => {
  api = await startApi();
  url = await baseUrl(api.app);
  team = await createTestTeam(api.app);
  // Another team's run, cancelled before any worker exists: only its id matters here.
  const other = await createTestTeam(api.app);
  const otherSft = await upload(other.key, 'sft', sortDigitsFiles.sft);
  otherTeamsRun = (await submit(other.key, sftOnly(otherSft, { maxSteps: 10 }))).id;
  await rest(`/v1/runs/${otherTeamsRun}/cancel`, other.key, { method: 'POST' });
  worker = await startWorker({
    redisUrl: api.options.redisUrl,
    artifactDir: api.artifactDir,
    device: 'cpu',
    workerId: WORKER_ID,
    runners,
    tasks,
    logger,
    prefix: api.prefix,
    heartbeatIntervalMs: 500,
    progressIntervalMs: 300, // the stage table moves while the test watches
  });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await worker?.close();
  await api?.close();
});

/** The number of points a chart of `stage` draws for `metric` (0 while it has none). */
const chartPoints = (page: Page, stage: string, metric: string) =>
  page
    .locator(`[data-stage-charts="${stage}"] figure[data-metric="${metric}"]`)
    .getAttribute('data-points', { timeout: 60_000 })
    .then(Number);

test('log in, watch a run train live, samples, downloads, cancel from the page, wrong key, not found', async () => {
  const sft = await upload(team.key, 'sft', sortDigitsFiles.sft);
  const prompts = await upload(team.key, 'prompt', sortDigitsFiles.prompt);
  // SFT with a metric point every 10 steps, then GRPO on the task's programmatic reward (samples every iteration).
  const run = await submit(team.key, {
    name: 'browser run',
    model: { preset: 'tiny' },
    stages: [
      { kind: 'sft', datasetId: sft, config: { maxSteps: 150, stepsPerCall: 10, evalEvery: 50, lr: 3e-3 } },
      {
        kind: 'grpo',
        datasetId: prompts,
        config: {
          reward: 'sort-digits',
          iterations: 3,
          promptsPerIteration: 4,
          groupSize: 4,
          maxNewTokens: 10,
          sampleEvery: 1,
          sampleCount: 4,
        },
      },
    ],
  });

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  // CSP violations and script errors; refused requests (the wrong key's 401, the 404) are expected.
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      pageErrors.push(message.text());
    }
  });
  // Offline: nothing is fetched from anywhere but the API itself (downloads are blob: URLs of the page).
  const requested: string[] = [];
  page.on('request', (request) => void requested.push(request.url()));
  page.on('dialog', (dialog) => void dialog.accept()); // the cancel confirmation

  // A wrong key is refused with a message, and the login form stays.
  await page.goto(`${url}/dashboard`);
  await page.fill('#key', 'rlhf_000000000000_not-a-real-key-at-all');
  await page.click('#login button[type=submit]');
  await expect.poll(() => page.textContent('#login-message')).toMatch(/key was not accepted/);
  expect(await page.isVisible('#page')).toBe(false);

  // The right key: the runs list links to the run's own page.
  await page.fill('#key', team.key);
  await page.click('#login button[type=submit]');
  await page.click(`#runs tr[data-run-id="${run.id}"] a`);
  expect(new URL(page.url()).pathname).toBe(`/dashboard/runs/${run.id}`);

  // Live: the SFT chart gains points and the stage's step moves while the worker trains.
  const first = await waitUntil(
    () => chartPoints(page, 'sft', 'train/loss'),
    (n) => n >= 2,
  );
  const later = await waitUntil(
    () => chartPoints(page, 'sft', 'train/loss'),
    (n) => n > first,
  );
  expect(later).toBeGreaterThan(first);
  expect(await page.textContent('#run-mode')).toBe('live');
  const sftStep = () =>
    page.getAttribute('#stage-table tr[data-stage-kind="sft"]', 'data-step').then((step) => Number(step));
  const stepSeen = await sftStep();
  await waitUntil(sftStep, (step) => step > stepSeen);

  // Hover shows the value at a step.
  const lossChart = page.locator('[data-stage-charts="sft"] figure[data-metric="train/loss"]');
  await lossChart.locator('svg').hover({ position: { x: 200, y: 50 } });
  expect(await lossChart.locator('.tip').textContent()).toMatch(/^step \d+: /);

  // A drag zooms into a step range; a double-click shows every step again.
  const box = (await lossChart.locator('svg').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 4 });
  await page.mouse.up();
  expect(await lossChart.locator('svg').textContent()).toContain('zoomed');
  await lossChart.locator('svg').dblclick();
  expect(await lossChart.locator('svg').textContent()).not.toContain('zoomed');

  // Smoothing draws the raw series faintly under the smoothed one, and hover tells both.
  await page.fill('#smoothing', '0.8');
  expect(await lossChart.locator('polyline.raw').count()).toBe(1);
  await lossChart.locator('svg').hover({ position: { x: 150, y: 50 } });
  expect(await lossChart.locator('.tip').textContent()).toContain('smoothed');
  await page.fill('#smoothing', '0');

  // GRPO's samples appear; the text filter narrows them.
  await page.waitForSelector('#sample-table tr.sample', { timeout: 120_000 });
  const rows = page.locator('#sample-table tr.sample');
  expect(await rows.count()).toBeGreaterThan(0);
  const firstPrompt = (await rows.first().locator('td').nth(2).textContent()) ?? '';
  expect(firstPrompt).toMatch(/^sort /);
  await page.fill('#sample-filter', firstPrompt);
  for (const text of await rows.locator('td:nth-child(3)').allTextContents()) expect(text).toBe(firstPrompt);
  await page.fill('#sample-filter', 'no sample says this');
  await expect.poll(() => page.textContent('#samples')).toMatch(/No loaded sample matches/);
  await page.fill('#sample-filter', '');

  // The run finishes: resolved settings per stage, GRPO charts, artifacts to download.
  await page.waitForSelector('#run-status.succeeded', { timeout: 120_000 });
  await expect.poll(() => page.textContent('#run-mode'), { timeout: 10_000 }).toBe('finished');
  expect(await page.textContent('[data-hyperparameters="sft"]')).toContain('maxSeqLen');
  expect(await chartPoints(page, 'grpo', 'reward')).toBe(3);
  const finalModel = page.locator('#artifact-table tr[data-artifact-kind="model"] a.download').first();
  const [download] = await Promise.all([page.waitForEvent('download'), finalModel.click()]);
  expect(download.suggestedFilename()).toMatch(/\.(safetensors|json)$/);
  await mkdir('test-results', { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // A long run, cancelled from its page while its stage runs.
  const long = await submit(
    team.key,
    sftOnly(sft, { maxSteps: 5000, stepsPerCall: 10, checkpointEvery: 1000 }),
  );
  await page.goto(`${url}/dashboard/runs/${long.id}`);
  await page.waitForSelector('#stage-table tr[data-stage-kind="sft"][data-status="running"]', {
    timeout: 60_000,
  });
  await page.click('#cancel-run');
  await page.waitForSelector('#run-status.cancelled', { timeout: 15_000 });
  await expect.poll(() => page.textContent('#run-mode'), { timeout: 20_000 }).toBe('finished');
  expect(await page.getAttribute('#stage-table tr[data-stage-kind="sft"]', 'data-status')).toBe('cancelled');
  expect((await rest<{ status: string }>(`/v1/runs/${long.id}`, team.key)).status).toBe('cancelled');

  // Its charts compare with the first run: that run's loss is drawn over this one's.
  await page.selectOption('#compare', run.id);
  await page.waitForSelector('[data-stage-charts="sft"] figure[data-metric="train/loss"] .line.compare');
  expect(await page.textContent('#legend')).toContain('browser run');

  // A stage that fails: its error (one unbroken 60-character word) wraps inside the page, even a narrow one.
  const task = 'no-such-task-'.padEnd(60, 'x');
  const failing = await submit(team.key, {
    name: 'failing',
    model: { fromRun: run.id },
    stages: [{ kind: 'grpo', datasetId: prompts, config: { reward: task, iterations: 1 } }],
  });
  await page.setViewportSize({ width: 420, height: 900 });
  await page.goto(`${url}/dashboard/runs/${failing.id}`);
  await page.waitForSelector('#run-status.failed', { timeout: 60_000 });
  expect(await page.textContent('#run-error')).toContain(task);
  // Wrapped: several lines, nothing past its box (1 px for rounding of fractional widths).
  const boxOf = (selector: string) =>
    page.$eval(selector, (e) => ({
      overflow: e.scrollWidth - e.clientWidth,
      height: e.clientHeight,
      width: e.clientWidth,
      text: e.textContent,
    }));
  for (const selector of ['#run-error', '#stages .stage-error']) {
    // The page re-renders when a poll brings news (a box can be caught at 0×0 in between): judge a laid-out box.
    let found = await boxOf(selector);
    await expect
      .poll(
        async () => {
          found = await boxOf(selector);
          return found.height;
        },
        { timeout: 10_000 },
      )
      .toBeGreaterThan(30);
    expect(found.overflow, JSON.stringify(found)).toBeLessThanOrEqual(1);
  }
  // In the viewport, and wide tables scroll in their own box: the page does not scroll sideways.
  // (Expressions as strings: they run in the page, and this project's TypeScript has no DOM types.)
  expect(
    await page.evaluate("document.querySelector('#run-error').getBoundingClientRect().right <= innerWidth"),
  ).toBe(true);
  expect(await page.evaluate('document.documentElement.scrollWidth <= innerWidth')).toBe(true);
  await page.setViewportSize({ width: 1280, height: 900 });

  // The workers page lists the test's worker.
  await page.click('#nav a[href="/dashboard/workers"]');
  await page.waitForSelector(`#workers tr[data-worker-id="${WORKER_ID}"]`);
  expect(await page.textContent(`#workers tr[data-worker-id="${WORKER_ID}"]`)).toContain('cpu');

  // Another team's run id is not found (the API answers 404, the page says so).
  await page.goto(`${url}/dashboard/runs/${otherTeamsRun}`);
  await page.waitForSelector('#not-found');
  expect(await page.textContent('#not-found')).toContain(otherTeamsRun);

  // A key revoked while the page is open: the next refresh brings back the key form, saying why.
  const second = await createApiKey(api.app.services.prisma, { teamId: team.team.id, name: 'revoked later' });
  await page.click('#forget');
  await page.fill('#key', second.key);
  await page.click('#login button[type=submit]');
  await page.click('#nav a[href="/dashboard/workers"]');
  await page.waitForSelector(`#workers tr[data-worker-id="${WORKER_ID}"]`);
  await rest(`/v1/admin/keys/${second.id}`, ADMIN_KEY, { method: 'DELETE' });
  await page.waitForSelector('#login-message:not([hidden])', { timeout: 15_000 });
  expect(await page.textContent('#login-message')).toMatch(/key was not accepted/);
  expect(await page.isVisible('#page')).toBe(false);

  expect(pageErrors).toEqual([]);
  expect(requested.filter((u) => !u.startsWith(`${url}/`) && !u.startsWith('blob:'))).toEqual([]);
  // The live stream is an EventSource opened with a stream token; the key itself is never in a URL.
  expect(requested.some((u) => /\/v1\/runs\/[^/]+\/events\?token=/.test(u))).toBe(true);
  expect(requested.filter((u) => u.includes(team.key))).toEqual([]);
  await context.close();
}, 300_000);

/** Reads until `done` holds, every 200 ms for at most 120 s. */
async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`still ${String(value)} after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
