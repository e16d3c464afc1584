// A real worker in the test process for tests that train over the API (kept apart from api-helpers: it loads
// the trainers).
import { createLogger } from '@rlhf/config';
import { tasks } from '@rlhf/examples';
import {
  type RunningEvaluationWorker,
  type RunningWorker,
  runners,
  startEvaluationWorker,
  startWorker,
} from '@rlhf/worker';
import type { TestApi } from './api-helpers.js';

/** A real worker in this process on the API's Redis namespace and artifact directory (the example tasks known). */
export function startTestWorker(api: TestApi, workerId: string): Promise<RunningWorker> {
  return startWorker({
    redisUrl: api.options.redisUrl,
    artifactDir: api.artifactDir,
    device: 'cpu',
    workerId,
    runners,
    tasks,
    logger: createLogger(workerId, process.env.TEST_LOG_LEVEL ?? 'silent'),
    prefix: api.prefix,
  });
}

/** The evaluation consumer (worker --evaluations) in this process, on the API's namespace and artifacts. */
export function startTestEvaluationWorker(
  api: TestApi,
  locks: { lockDuration?: number; stalledInterval?: number } = {},
): Promise<RunningEvaluationWorker> {
  return startEvaluationWorker({
    redisUrl: api.options.redisUrl,
    artifactDir: api.artifactDir,
    device: 'cpu',
    tasks,
    logger: createLogger('evaluator', process.env.TEST_LOG_LEVEL ?? 'silent'),
    prefix: api.prefix,
    ...locks,
  });
}
