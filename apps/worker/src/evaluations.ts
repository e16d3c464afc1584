// The evaluation consumer: takes evaluation jobs (packages/queue evaluations.ts), has every model answer the same
// prompts with the same seeded sampling, judges every pair (@rlhf/eval compareModels) and writes the result to
// the artifact store. Generation batches and judge answers are cached as they are made (evaluation-caches.ts):
// a killed worker's job, taken up again, redoes none of them. Runs in the worker process beside the stage worker.
import { type ArtifactStore, createArtifactStore } from '@rlhf/artifacts';
import type { Logger } from '@rlhf/config';
import {
  type EvaluationAgreement,
  type EvaluationJobData,
  type EvaluationPair,
  type EvaluationPositionBias,
  type EvaluationResult,
  formatJsonlError,
  type PromptRow,
  validateJsonl,
} from '@rlhf/contracts';
import { type CompareModelsResult, compareModels, countedSampleCache, judgeAgreement } from '@rlhf/eval';
import { createRedis, DEFAULT_PREFIX, EVALUATION_QUEUE, type EvaluationJobResult } from '@rlhf/queue';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { framedPromptText, framingOf } from '@rlhf/stage-kit';
import { UnrecoverableError, Worker } from 'bullmq';
import { artifactJudgmentCache, artifactSampleCache } from './evaluation-caches.js';
import { buildJudge } from './evaluation-judges.js';
import { startLockKeeper } from './lock-keeper.js';
import { loadModelAt, tokenizerAt } from './model-files.js';
import { type GroundTruth, groundTruthOf, type Tasks } from './tasks.js';

/** Prompts per generation batch: the unit an interrupted evaluation resumes at and evaluations share. */
export const EVALUATION_GENERATION_BATCH = 16;

export interface EvaluationWorkerOptions {
  redisUrl: string;
  artifactDir: string;
  device: string;
  tasks?: Tasks;
  logger: Logger;
  prefix?: string;
  /** BullMQ lock and stalled-check periods (ms): how soon a killed worker's evaluation is taken up again. */
  lockDuration?: number;
  stalledInterval?: number;
}

export interface RunningEvaluationWorker {
  close(): Promise<void>;
}

/** The job's cache directory: its own, or (jobs queued before caching) one per team. */
export const evaluationCacheKey = (data: EvaluationJobData): string =>
  data.cacheKey ?? `evaluations/${data.teamId}/cache`;

/** One evaluation: generate (reusing cached batches), judge, and return the result. */
export async function runEvaluation(
  data: EvaluationJobData,
  deps: { runtime: Runtime; artifacts: ArtifactStore; tasks: Tasks; cache?: boolean },
): Promise<EvaluationResult> {
  const { runtime, artifacts } = deps;
  const parsed = await validateJsonl('prompt', await artifacts.getText(data.promptsKey));
  if (!parsed.ok) throw new UnrecoverableError(`prompts: ${parsed.errors.map(formatJsonlError).join('; ')}`);
  const rows = (parsed.rows as PromptRow[]).slice(0, data.maxPrompts);
  const models = await Promise.all(
    data.models.map(async (m) => ({
      name: m.name,
      // The cache's identity of the weights: the key, and the digest of a model that can change under it.
      key: m.version === undefined ? m.key : `${m.key}#${m.version}`,
      model: await loadModelAt(artifacts, m.key),
    })),
  );
  const tokenizer = await tokenizerAt(artifacts, data.models[0].key);
  // `messages` prompts in the models' own chat template when they have one (parsed once), as their stages saw them.
  const framing = framingOf(tokenizer);
  const cacheAt = evaluationCacheKey(data);
  const samples = countedSampleCache(artifactSampleCache(artifacts, cacheAt));
  const judge = await buildJudge(data.judge, {
    runtime,
    artifacts,
    tasks: deps.tasks,
    rows,
    tokenizer,
    judgments: deps.cache === false ? noJudgmentCache : artifactJudgmentCache(artifacts, cacheAt),
  });
  try {
    const compared = await compareModels({
      runtime,
      models,
      prompts: rows.map((row) => framedPromptText(row, framing)),
      seeds: data.seeds,
      sampling: data.sampling,
      judge: judge.judge,
      tokenizer,
      generationBatch: EVALUATION_GENERATION_BATCH,
      ...(deps.cache === false ? {} : { cache: samples.cache }),
    });
    const result = resultOf(compared);
    if (data.groundTruth) {
      const truth = groundTruthOf(deps.tasks, data.groundTruth)!;
      for (const pair of result.pairs) pair.groundTruthAgreement = agreementOf(data.groundTruth, truth, pair);
    }
    return { ...result, work: { generations: samples.counts, judgments: judge.counts } };
  } finally {
    await judge.release();
  }
}

const noJudgmentCache = { get: async () => undefined, set: async () => {} };

/** A pair's verdicts against the task's own (its score difference, no tie margin) on the same responses. */
function agreementOf(task: string, truth: GroundTruth, pair: EvaluationPair): EvaluationAgreement {
  const truthOutcomes = pair.rows.map((row) => {
    const gap = truth(row.prompt, row.responseA) - truth(row.prompt, row.responseB);
    return gap > 0 ? 'win' : gap < 0 ? 'loss' : 'tie';
  });
  const { n, agreement, decidedAgreement, decided, kappa } = judgeAgreement(
    pair.rows.map((row) => row.outcome),
    truthOutcomes,
  );
  return { task, n, agreement, decidedAgreement: decided === 0 ? null : decidedAgreement, decided, kappa };
}

/** compareModels' result as stored: per pair counts, interval, rows and position bias, and the overall bias. */
function resultOf(compared: CompareModelsResult): Omit<EvaluationResult, 'work'> {
  const pairs = compared.pairs.map(storedPair);
  const biases = pairs.flatMap((p) => (p.positionBias ? [p.positionBias] : []));
  return {
    pairs,
    meanScores: compared.meanScores ?? null,
    comparisons: compared.comparisons,
    ...(biases.length > 0 ? { positionBias: overallPositionBias(biases) } : {}),
  };
}

/** One pair of compareModels' result as stored and shown: counts, interval, every verdict, its position bias. */
export function storedPair(pair: CompareModelsResult['pairs'][number]): EvaluationPair {
  return {
    a: pair.a,
    b: pair.b,
    wins: pair.winRate.wins,
    ties: pair.winRate.ties,
    losses: pair.winRate.losses,
    winRate: pair.winRate.winRate,
    interval: pair.winRate.interval,
    rows: pair.rows.map((row) => ({
      prompt: row.prompt,
      seedIndex: row.seedIndex,
      responseA: row.responseA,
      responseB: row.responseB,
      ...(row.scoreA === undefined ? {} : { scoreA: row.scoreA }),
      ...(row.scoreB === undefined ? {} : { scoreB: row.scoreB }),
      ...(row.pAFirst === undefined ? {} : { pAFirst: row.pAFirst, pBFirst: row.pBFirst }),
      outcome: row.outcome,
    })),
    ...(pair.positionBias ? { positionBias: { judged: pair.rows.length, ...pair.positionBias } } : {}),
  };
}

/** The pairs' position biases pooled: every judged pair of every pair of models counts once. */
export function overallPositionBias(biases: readonly EvaluationPositionBias[]): EvaluationPositionBias {
  const judged = biases.reduce((n, b) => n + b.judged, 0);
  const favouredFirst = biases.reduce((n, b) => n + b.favouredFirst, 0);
  const favouredSecond = biases.reduce((n, b) => n + b.favouredSecond, 0);
  return {
    judged,
    flipRate: (favouredFirst + favouredSecond) / judged,
    favouredFirst,
    favouredSecond,
    meanFirstPreference: biases.reduce((s, b) => s + b.meanFirstPreference * b.judged, 0) / judged,
  };
}

/** Consumes the evaluation queue, one evaluation at a time, on its own runtime. */
export async function startEvaluationWorker(
  options: EvaluationWorkerOptions,
): Promise<RunningEvaluationWorker> {
  const artifacts = createArtifactStore(options.artifactDir);
  const runtime = await createRuntime({
    device: options.device,
    logger: { warn: (message) => options.logger.warn(message) },
  });
  const connection = createRedis(options.redisUrl, { worker: true });
  const lockDuration = options.lockDuration ?? 30_000;
  const worker = new Worker<EvaluationJobData, EvaluationJobResult>(
    EVALUATION_QUEUE,
    async (job, token) => {
      // The lock is renewed off the main thread too: building the generation and judge graphs blocks it.
      if (job.id && token) keeper.hold(job.id, `${worker.toKey(job.id)}:lock`, token);
      try {
        options.logger.info({ evaluationId: job.data.evaluationId }, 'evaluation started');
        const result = await runEvaluation(job.data, { runtime, artifacts, tasks: options.tasks ?? {} });
        options.logger.info(
          { evaluationId: job.data.evaluationId, work: result.work },
          'evaluation judged (generation batches and judge answers reused from the cache)',
        );
        await artifacts.put(job.data.resultKey, JSON.stringify(result));
        return { resultKey: job.data.resultKey };
      } finally {
        if (job.id) keeper.release(job.id);
      }
    },
    {
      connection,
      prefix: options.prefix ?? DEFAULT_PREFIX,
      concurrency: 1,
      lockDuration,
      ...(options.stalledInterval === undefined ? {} : { stalledInterval: options.stalledInterval }),
    },
  );
  const keeper = startLockKeeper({
    redisUrl: options.redisUrl,
    stalledKey: worker.keys.stalled,
    lockDurationMs: lockDuration,
  });
  options.logger.info({ device: runtime.device, queue: EVALUATION_QUEUE }, 'evaluation worker started');
  worker.on('failed', (job, error) =>
    options.logger.warn({ evaluationId: job?.data.evaluationId, err: error }, 'evaluation failed'),
  );
  return {
    async close() {
      await worker.close();
      await keeper.close();
      await runtime.close();
      connection.disconnect();
    },
  };
}
