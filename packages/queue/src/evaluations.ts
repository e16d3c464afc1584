// The evaluation queue: the API adds one job per evaluation (jobId = evaluation id); a worker's evaluation
// consumer generates, judges and writes the result to the artifact store, returning its key.
import type { EvaluationJobData } from '@rlhf/contracts';
import { type ConnectionOptions, type Job, Queue } from 'bullmq';
import { DEFAULT_PREFIX } from './keys.js';

export const EVALUATION_QUEUE = 'rlhf-evaluations';

export interface EvaluationJobResult {
  resultKey: string;
}

export type EvaluationQueue = Queue<EvaluationJobData, EvaluationJobResult>;
export type EvaluationJob = Job<EvaluationJobData, EvaluationJobResult>;

export function createEvaluationQueue(
  connection: ConnectionOptions,
  prefix: string = DEFAULT_PREFIX,
): EvaluationQueue {
  return new Queue<EvaluationJobData, EvaluationJobResult>(EVALUATION_QUEUE, { connection, prefix });
}

/** Adds the evaluation's job; adding it again (a retry after an API crash) is a no-op. */
export async function addEvaluationJob(queue: EvaluationQueue, data: EvaluationJobData): Promise<void> {
  await queue.add('evaluation', data, {
    jobId: data.evaluationId,
    attempts: 1,
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: { age: 7 * 24 * 3600 },
  });
}
