// A resumable, de-duplicated evaluation over REST: the evaluation worker (its own process) is killed with SIGKILL
// mid-job; another takes the job up and finishes it without regenerating or re-judging what the first stored,
// the result identical to an uninterrupted evaluation computed here without any cache; a second evaluation of
// the same models, prompts, seeds and sampling reuses every generation and every judge answer.
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

test('kill -9 mid-evaluation: resumed without redoing stored work, identical to an uninterrupted run', async () => {
  const post = (url: string, payload: Record<string, unknown>) =>
    api.app.inject({ method: 'POST', url, headers: team.headers, payload });
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

  const worker = spawnEvaluationWorker();
  doomed = worker.child;
  const created = await post('/v1/evaluations', spec);
  expect(created.statusCode, created.body).toBe(201);
  const row = await api.app.services.prisma.evaluation.findUniqueOrThrow({
    where: { id: created.json().id },
  });
  const job = (row.spec as unknown as { job: EvaluationJobData }).job;
  const cacheDir = join(api.artifactDir, ...(job.cacheKey as string).split('/'));
  const artifacts = createArtifactStore(api.artifactDir);
  // Killed once some generation batches are stored and before the result is.
  const deadline = Date.now() + 120_000;
  while ((await filesIn(join(cacheDir, 'samples'))) < GENERATION_BATCHES / 4) {
    if (Date.now() > deadline) throw new Error('the evaluation worker stored no generation batch');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  worker.child.kill('SIGKILL');
  await worker.exited;
  doomed = undefined;
  expect(await artifacts.exists(job.resultKey), 'the job finished before the kill').toBe(false);
  const storedBatches = await filesIn(join(cacheDir, 'samples'));
  const storedJudgments = await filesIn(join(cacheDir, 'judgments'));
  console.info(`killed after ${storedBatches}/${GENERATION_BATCHES} batches, ${storedJudgments} judgments`);
  expect(storedBatches).toBeLessThan(GENERATION_BATCHES);

  rescuer = await startTestEvaluationWorker(api, FAST_LOCKS);
  const done = await finishedEvaluation(api, team.headers, row.id);
  expect(done.error).toBeNull();
  expect(done.status).toBe('succeeded');
  const resumed = JSON.parse(await artifacts.getText(job.resultKey)) as EvaluationResult;
  // What the first worker stored was reused, and only the rest made.
  expect(resumed.work?.generations).toEqual({
    reused: storedBatches,
    generated: GENERATION_BATCHES - storedBatches,
  });
  // Judge answers: the stored ones reused, requests asked twice (two models answering alike) judged once.
  const judgments = resumed.work?.judgments as { reused: number; judged: number };
  expect(judgments.reused + judgments.judged).toBe(JUDGE_REQUESTS);
  expect(judgments.reused).toBeGreaterThanOrEqual(storedJudgments);
  expect(judgments.judged).toBe((await filesIn(join(cacheDir, 'judgments'))) - storedJudgments);
  expect(resumed.pairs).toHaveLength(3);
  for (const pair of resumed.pairs) expect(pair.rows).toHaveLength(PROMPTS * SEEDS.length);

  // The same job uninterrupted and without any cache, here: the same result.
  const runtime = await createRuntime({ device: 'cpu' });
  try {
    const reference = await runEvaluation(job, { runtime, artifacts, tasks, cache: false });
    const { work: _work, ...expected } = JSON.parse(JSON.stringify(reference)) as EvaluationResult;
    const { work: _resumedWork, ...actual } = resumed;
    expect(actual).toEqual(expected);
  } finally {
    await runtime.close();
  }

  // De-duplicated: the same models, prompts, seeds and sampling again generate and judge nothing.
  const again = await post('/v1/evaluations', spec);
  expect(again.statusCode, again.body).toBe(201);
  const second = await finishedEvaluation(api, team.headers, again.json().id);
  expect(second.status).toBe('succeeded');
  expect(second.result.work).toEqual({
    generations: { reused: GENERATION_BATCHES, generated: 0 },
    judgments: { reused: JUDGE_REQUESTS, judged: 0 },
  });
  expect(second.result.comparisons).toEqual(done.result.comparisons);
  expect(second.result.pairs).toEqual(done.result.pairs);
}, 400_000);
