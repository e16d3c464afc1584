// The evaluation consumer: takes evaluation jobs (packages/queue evaluations.ts), has every model answer the same
// prompts with the same seeded sampling, judges every pair (@rlhf/eval compareModels) and writes the result to
// the artifact store. Runs in the worker process beside the stage worker.
import { type ArtifactStore, createArtifactStore } from '@rlhf/artifacts';
import type { Logger } from '@rlhf/config';
import {
  type EvaluationJobData,
  type EvaluationResult,
  formatJsonlError,
  type PromptRow,
  validateJsonl,
} from '@rlhf/contracts';
import { compareModels, type EvalJudge } from '@rlhf/eval';
import { createRedis, DEFAULT_PREFIX, EVALUATION_QUEUE, type EvaluationJobResult } from '@rlhf/queue';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { promptText } from '@rlhf/stage-kit';
import { UnrecoverableError, Worker } from 'bullmq';
import { loadModelAt, tokenizerAt } from './model-files.js';
import { groundTruthOf, type Tasks } from './tasks.js';

export interface EvaluationWorkerOptions {
  redisUrl: string;
  artifactDir: string;
  device: string;
  tasks?: Tasks;
  logger: Logger;
  prefix?: string;
}

export interface RunningEvaluationWorker {
  close(): Promise<void>;
}

/** One evaluation: generate, judge, write the result; returns where it is. */
export async function runEvaluation(
  data: EvaluationJobData,
  deps: { runtime: Runtime; artifacts: ArtifactStore; tasks: Tasks },
): Promise<EvaluationResult> {
  const { runtime, artifacts } = deps;
  const parsed = await validateJsonl('prompt', await artifacts.getText(data.promptsKey));
  if (!parsed.ok) throw new UnrecoverableError(`prompts: ${parsed.errors.map(formatJsonlError).join('; ')}`);
  const prompts = (parsed.rows as PromptRow[]).slice(0, data.maxPrompts).map(promptText);
  const models = await Promise.all(
    data.models.map(async (m) => ({ name: m.name, key: m.key, model: await loadModelAt(artifacts, m.key) })),
  );
  const judge: EvalJudge =
    data.judge.type === 'reward_model'
      ? {
          kind: 'reward_model',
          model: await loadModelAt(artifacts, data.judge.key),
          tieMargin: data.judge.tieMargin,
        }
      : {
          kind: 'score',
          score: groundTruthOf(deps.tasks, data.judge.name)!,
          tieMargin: data.judge.tieMargin,
        };
  const compared = await compareModels({
    runtime,
    models,
    prompts,
    seeds: data.seeds,
    sampling: data.sampling,
    judge,
    tokenizer: await tokenizerAt(artifacts, data.models[0].key),
  });
  return {
    pairs: compared.pairs.map((pair) => ({
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
        outcome: row.outcome,
      })),
    })),
    meanScores: compared.meanScores ?? null,
    comparisons: compared.comparisons,
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
  const worker = new Worker<EvaluationJobData, EvaluationJobResult>(
    EVALUATION_QUEUE,
    async (job) => {
      options.logger.info({ evaluationId: job.data.evaluationId }, 'evaluation started');
      const result = await runEvaluation(job.data, { runtime, artifacts, tasks: options.tasks ?? {} });
      await artifacts.put(job.data.resultKey, JSON.stringify(result));
      return { resultKey: job.data.resultKey };
    },
    { connection, prefix: options.prefix ?? DEFAULT_PREFIX, concurrency: 1 },
  );
  options.logger.info({ device: runtime.device, queue: EVALUATION_QUEUE }, 'evaluation worker started');
  worker.on('failed', (job, error) =>
    options.logger.warn({ evaluationId: job?.data.evaluationId, err: error }, 'evaluation failed'),
  );
  return {
    async close() {
      await worker.close();
      await runtime.close();
      connection.disconnect();
    },
  };
}
