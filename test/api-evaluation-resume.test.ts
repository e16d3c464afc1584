// A resumable, de-duplicated evaluation over REST: the evaluation worker (its own process) is killed with SIGKILL
// mid-generation, and in a second evaluation mid-judging; another worker takes each job up and finishes it without
// regenerating or re-judging what the first stored, the result identical to the same job computed here without
// any cache; an evaluation of the same models, prompts, seeds and sampling reuses every generation and answer.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createArtifactStore } from '@rlhf/artifacts';
import type { EvaluationJobData, EvaluationResult } from '@rlhf/contracts';
import { sortDigitsFiles, tasks } from '@rlhf/examples';
import { createRuntime } from '@rlhf/runtime';
import { type RunningEvaluationWorker, runEvaluation } from '@rlhf/worker';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestTeam, registerModel, startApi, type TestApi, type TestTeam } from './api-helpers.js';
import { finishedEvaluation, firstPreferringJudgeFiles, untrainedModelFiles } from './evaluation-helpers.js';
import { startTestEvaluationWorker } from './worker-helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const WORKER_MAIN = fileURLToPath(new URL('../apps/worker/src/main.ts', import.meta.url));
// A killed worker's job is taken up again in seconds instead of half a minute.
const FAST_LOCKS = { lockDuration: 1500, stalledInterval: 1000 };
const MODELS = 3;
const PROMPTS = 48;
const SEEDS = [1, 2, 3, 4];
const BATCH = 16; // apps/worker EVALUATION_GENERATION_BATCH
const GENERATION_BATCHES = MODELS * SEEDS.length * (PROMPTS / BATCH);
const JUDGE_REQUESTS = ((MODELS * (MODELS - 1)) / 2) * PROMPTS * SEEDS.length * 2;

let api: TestApi;
let team: TestTeam;
let rescuer: RunningEvaluationWorker | undefined;
let doomed: ChildProcess | undefined;
beforeAll(async () => {
  api = await startApi();
  team = await createTestTeam(api.app);
});
afterAll(async () => {
  doomed?.kill('SIGKILL');
  await rescuer?.close();
  await api?.close();
});

function spawnEvaluationWorker(): { child: ChildProcess; exited: Promise<unknown> } {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      WORKER_MAIN,
      '--evaluations',
      '--device',
      'cpu',
      '--prefix',
      api.prefix,
      '--lock-duration',
      String(FAST_LOCKS.lockDuration),
      '--stalled-interval',
      String(FAST_LOCKS.stalledInterval),
    ],
    {
      env: {
        ...process.env,
        REDIS_URL,
        ARTIFACT_DIR: api.artifactDir,
        WORKER_ID: 'doomed',
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    },
  );
  return { child, exited: new Promise((resolve) => child.once('exit', resolve)) };
}

/** Entries stored under `dir` (the store's hidden sidecars and temporary files left out). */
const filesIn = async (dir: string) =>
  (await readdir(dir).catch(() => [] as string[])).filter((name) => !name.startsWith('.')).length;

const post = (payload: Record<string, unknown>) =>
  api.app.inject({ method: 'POST', url: '/v1/evaluations', headers: team.headers, payload });

/**
 * Submits `spec` to a worker process and kills it with SIGKILL once `cache` ('samples' or 'judgments') holds
 * `more` entries beyond what it held before; returns the job and what was stored when it died.
 */
async function killedMidway(spec: Record<string, unknown>, cache: 'samples' | 'judgments', more: number) {
  const worker = spawnEvaluationWorker();
  doomed = worker.child;
  const created = await post(spec);
  expect(created.statusCode, created.body).toBe(201);
  const row = await api.app.services.prisma.evaluation.findUniqueOrThrow({
    where: { id: created.json().id },
  });
  const job = (row.spec as unknown as { job: EvaluationJobData }).job;
  const cacheDir = join(api.artifactDir, ...(job.cacheKey as string).split('/'));
  const count = (name: string) => filesIn(join(cacheDir, name));
  const before = { samples: await count('samples'), judgments: await count('judgments') };
  const deadline = Date.now() + 180_000;
  while ((await count(cache)) < before[cache] + more) {
    if (Date.now() > deadline) throw new Error(`the evaluation worker stored no ${cache}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  worker.child.kill('SIGKILL');
  await worker.exited;
  doomed = undefined;
  const stored = { samples: await count('samples'), judgments: await count('judgments') };
  const killed = { samples: stored.samples - before.samples, judgments: stored.judgments - before.judgments };
  console.info(`killed after ${killed.samples}/${GENERATION_BATCHES} batches, ${killed.judgments} judgments`);
  return { id: row.id, job, before, killed, count };
}

/** The evaluation finished by an in-process worker: its result as the worker wrote it. */
async function rescued(id: string, job: EvaluationJobData): Promise<EvaluationResult> {
  const artifacts = createArtifactStore(api.artifactDir);
  expect(await artifacts.exists(job.resultKey), 'the job finished before the kill').toBe(false);
  rescuer = await startTestEvaluationWorker(api, FAST_LOCKS);
  const done = await finishedEvaluation(api, team.headers, id);
  await rescuer.close();
  rescuer = undefined;
  expect(done.error).toBeNull();
  expect(done.status).toBe('succeeded');
  const result = JSON.parse(await artifacts.getText(job.resultKey)) as EvaluationResult;
  expect(result.pairs).toHaveLength(3);
  for (const pair of result.pairs) expect(pair.rows).toHaveLength(PROMPTS * SEEDS.length);
  return result;
}

/** The same job run here, uninterrupted and without any cache: the same result (its work counts aside). */
async function expectSameAsUncached(job: EvaluationJobData, result: EvaluationResult) {
  const runtime = await createRuntime({ device: 'cpu' });
  try {
    const artifacts = createArtifactStore(api.artifactDir);
    const reference = await runEvaluation(job, { runtime, artifacts, tasks, cache: false });
    const { work: _work, ...expected } = JSON.parse(JSON.stringify(reference)) as EvaluationResult;
    const { work: _resumedWork, ...actual } = result;
    expect(actual).toEqual(expected);
  } finally {
    await runtime.close();
  }
}

test('kill -9 mid-evaluation: resumed without redoing stored work, identical to an uninterrupted run', async () => {
  const prompts = await api.app.inject({
    method: 'POST',
    url: '/v1/datasets?name=sort-prompts&kind=prompt',
    headers: { ...team.headers, 'content-type': 'application/jsonl' },
    payload: await readFile(sortDigitsFiles.prompt, 'utf8'),
  });
  expect(prompts.statusCode, prompts.body).toBe(201);
  const models = [];
  for (let i = 0; i < MODELS; i++)
    models.push({
      modelId: (await registerModel(api.app, team.headers, `m${i}`, untrainedModelFiles(i + 1))).id,
    });
  const judge = await registerModel(api.app, team.headers, 'judge', firstPreferringJudgeFiles(1));
  const spec = {
    models,
    datasetId: prompts.json().id,
    maxPrompts: PROMPTS,
    seeds: SEEDS,
    sampling: { maxNewTokens: 16, temperature: 1 },
    judge: { type: 'language_model', modelId: judge.id },
  };

  // Killed while generating: the stored batches are reused, the rest generated.
  const first = await killedMidway(spec, 'samples', GENERATION_BATCHES / 4);
  expect(first.killed.samples).toBeLessThan(GENERATION_BATCHES);
  const resumed = await rescued(first.id, first.job);
  expect(resumed.work?.generations).toEqual({
    reused: first.killed.samples,
    generated: GENERATION_BATCHES - first.killed.samples,
  });
  // Judge answers: the stored ones reused, requests asked twice (two models answering alike) judged once.
  const judgments = resumed.work?.judgments as { reused: number; judged: number };
  expect(judgments.reused + judgments.judged).toBe(JUDGE_REQUESTS);
  expect(judgments.reused).toBeGreaterThanOrEqual(first.killed.judgments);
  expect(judgments.judged).toBe(
    (await first.count('judgments')) - first.before.judgments - first.killed.judgments,
  );
  await expectSameAsUncached(first.job, resumed);

  // Killed while judging (another template: the same generations, new judge requests).
  const template = 'Question: {prompt}\nAnswer A: {first}\nAnswer B: {second}\nThe better answer (A or B):';
  const reworded = { ...spec, judge: { ...spec.judge, template } };
  const second = await killedMidway(reworded, 'judgments', 96);
  const rejudged = await rescued(second.id, second.job);
  expect(rejudged.work?.generations).toEqual({ reused: GENERATION_BATCHES, generated: 0 });
  const answers = rejudged.work?.judgments as { reused: number; judged: number };
  expect(answers.reused + answers.judged).toBe(JUDGE_REQUESTS);
  expect(answers.reused).toBeGreaterThanOrEqual(second.killed.judgments);
  expect(answers.judged).toBe(
    (await second.count('judgments')) - second.before.judgments - second.killed.judgments,
  );
  await expectSameAsUncached(second.job, rejudged);

  // De-duplicated: the same models, prompts, seeds and sampling again generate and judge nothing.
  rescuer = await startTestEvaluationWorker(api, FAST_LOCKS);
  const again = await post(spec);
  expect(again.statusCode, again.body).toBe(201);
  const repeated = await finishedEvaluation(api, team.headers, again.json().id);
  expect(repeated.status).toBe('succeeded');
  expect(repeated.result.work).toEqual({
    generations: { reused: GENERATION_BATCHES, generated: 0 },
    judgments: { reused: JUDGE_REQUESTS, judged: 0 },
  });
  const raw = await createArtifactStore(api.artifactDir).getText(
    (await api.app.services.prisma.evaluation.findUniqueOrThrow({ where: { id: repeated.id } })).resultKey,
  );
  const { work: _work, ...sameResult } = JSON.parse(raw) as EvaluationResult;
  const { work: _resumedWork, ...resumedResult } = resumed;
  expect(sameResult).toEqual(resumedResult);
}, 600_000);
