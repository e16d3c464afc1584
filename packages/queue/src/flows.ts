import type { StageJobData, StageJobResult } from '@rlhf/contracts';
import { FlowProducer, type FlowJob, type Job, Queue, type ConnectionOptions } from 'bullmq';
import { DEFAULT_PREFIX, STAGE_QUEUE } from './keys.js';

export type StageQueue = Queue<StageJobData, StageJobResult>;
export type StageJob = Job<StageJobData, StageJobResult>;

/** The stage queue (API: add/remove/inspect jobs, bull-board; worker: read upstream jobs). */
export function createStageQueue(connection: ConnectionOptions, prefix: string = DEFAULT_PREFIX): StageQueue {
  return new Queue<StageJobData, StageJobResult>(STAGE_QUEUE, { connection, prefix });
}

export function createFlowProducer(
  connection: ConnectionOptions,
  prefix: string = DEFAULT_PREFIX,
): FlowProducer {
  return new FlowProducer({ connection, prefix });
}

export interface RunFlow {
  runId: string;
  /** In run order (e.g. sft, reward_model, ppo); each runs after the one before it finished. */
  stages: StageJobData[];
  /** BullMQ priority, 1 (soonest) .. 2_097_152; every job gets one (jobs without one would jump the queue). */
  priority: number;
  /** Tries per stage for errors thrown by a runner (default 1: trainer errors are rarely transient). A crashed
   *  worker is handled separately: the stalled job is retried once (worker maxStalledCount). */
  attempts?: number;
}

/**
 * Adds a run as one BullMQ flow: the last stage is the root, earlier stages nest as children, so children run
 * first. jobId = stageId (adding the same run twice is a no-op for existing ids). Every child has
 * failParentOnFailure, so a failed or cancelled stage fails the stages after it instead of leaving them in
 * waiting-children forever.
 */
export async function addRunFlow(flows: FlowProducer, run: RunFlow): Promise<void> {
  if (run.stages.length === 0) throw new Error(`run ${run.runId}: no stages`);
  let flow: FlowJob | undefined;
  run.stages.forEach((stage, index) => {
    if (stage.runId !== run.runId) throw new Error(`stage ${stage.stageId} belongs to run ${stage.runId}`);
    const isRoot = index === run.stages.length - 1;
    flow = {
      name: stage.kind,
      queueName: STAGE_QUEUE,
      data: stage,
      opts: {
        jobId: stage.stageId,
        priority: run.priority,
        attempts: run.attempts ?? 1,
        backoff: { type: 'exponential', delay: 5000 },
        ...(isRoot ? {} : { failParentOnFailure: true }),
      },
      ...(flow ? { children: [flow] } : {}),
    };
  });
  await flows.add(flow as FlowJob);
}

const REMOVABLE = new Set(['waiting', 'prioritized', 'delayed', 'waiting-children', 'paused']);

/**
 * Removes the stages' jobs that are not running (waiting, prioritized, delayed, waiting-children), last stage
 * first. An active job is left to its worker (requestCancel stops it); finished jobs are kept for inspection.
 * Returns the removed stage ids.
 */
export async function removeRunJobs(queue: StageQueue, stageIds: string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const id of [...stageIds].reverse()) {
    const job = await queue.getJob(id);
    if (!job || !REMOVABLE.has(await job.getState())) continue;
    try {
      await job.remove({ removeChildren: false });
      removed.push(id);
    } catch {
      // taken by a worker meanwhile (locked): cancellation stops it
    }
  }
  return removed;
}

export interface StageJobState {
  /** BullMQ state; 'unknown' = no such job (never added, or removed). */
  state: string;
  attemptsMade: number;
  failedReason?: string;
  result?: StageJobResult;
}

/**
 * BullMQ's view of stages, for reconciling Postgres after an API restart and for failures no worker reports:
 * a stage failed because a stage before it failed (failParentOnFailure), or a job whose worker died twice.
 */
export async function getStageStates(
  queue: StageQueue,
  stageIds: string[],
): Promise<Record<string, StageJobState>> {
  const out: Record<string, StageJobState> = {};
  for (const id of stageIds) {
    // State first, job second: a job seen 'completed' then has its return value (the reverse order races).
    const state = await queue.getJobState(id);
    const job = state === 'unknown' ? undefined : await queue.getJob(id);
    out[id] = job
      ? {
          state,
          attemptsMade: job.attemptsMade,
          ...(job.failedReason ? { failedReason: job.failedReason } : {}),
          ...(job.returnvalue ? { result: job.returnvalue } : {}),
        }
      : { state: 'unknown', attemptsMade: 0 };
  }
  return out;
}

/** Results of every stage this job waited for (direct and nested children), nearest first. */
export async function upstreamResults(queue: StageQueue, job: StageJob): Promise<StageJobResult[]> {
  const out: StageJobResult[] = [];
  const values = await job.getChildrenValues<StageJobResult>();
  for (const [childKey, result] of Object.entries(values)) {
    out.push(result);
    const child = await queue.getJob(childKey.slice(childKey.lastIndexOf(':') + 1));
    if (child) out.push(...(await upstreamResults(queue, child)));
  }
  return out;
}

/** Stages whose result is a policy a later stage starts from. */
const POLICY_KINDS = new Set<StageJobResult['kind']>(['sft', 'dpo', 'pro', 'raft', 'grpo']);
/** Stages whose result an eval stage evaluates: every policy. */
const EVALUATED_KINDS = new Set<StageJobResult['kind']>([...POLICY_KINDS, 'ppo']);
/** Stages that also read a reward model. */
const READS_REWARD_MODEL = new Set<StageJobData['kind']>(['raft', 'grpo', 'ppo']);

/**
 * Fills the inputs a job left out with the models of the stages before it in the same run: `policy` from the
 * nearest policy stage, `rewardModel` (PPO, RAFT, GRPO) from the reward-model stage. Inputs the API set (fromRun)
 * are kept.
 */
export function resolveInputs(data: StageJobData, upstream: StageJobResult[]): StageJobData {
  const resolved = resolveStageInputs(data, upstream);
  const check = data.checkpointEval;
  if (!check) return resolved;
  // A checkpoint evaluation's other side and judge, from this run's stages like an eval stage's.
  const model = (kind: StageJobResult['kind']) => upstream.find((r) => r.kind === kind)?.modelKey;
  const { against, judge } = check.config;
  const inputs = {
    against:
      check.inputs.against ??
      ('stage' in against && !('runId' in against) ? model(against.stage) : undefined),
    rewardModel:
      check.inputs.rewardModel ?? (judge.type === 'reward_model' ? model('reward_model') : undefined),
  };
  return {
    ...resolved,
    checkpointEval: {
      ...check,
      inputs: Object.fromEntries(Object.entries(inputs).filter(([, key]) => key !== undefined)),
    },
  };
}

function resolveStageInputs(data: StageJobData, upstream: StageJobResult[]): StageJobData {
  const model = (kind: StageJobResult['kind']) => upstream.find((r) => r.kind === kind)?.modelKey;
  if (data.kind === 'eval') {
    // The run's last policy (PPO's too), the stage it is compared with, the run's reward model as a judge.
    const { against, judge } = data.config;
    const inputs = {
      policy: data.inputs.policy ?? upstream.find((r) => EVALUATED_KINDS.has(r.kind))?.modelKey,
      against:
        data.inputs.against ??
        ('stage' in against && !('runId' in against) ? model(against.stage) : undefined),
      rewardModel:
        data.inputs.rewardModel ?? (judge.type === 'reward_model' ? model('reward_model') : undefined),
    };
    return {
      ...data,
      inputs: Object.fromEntries(Object.entries(inputs).filter(([, key]) => key !== undefined)),
    };
  }
  // The nearest earlier policy stage (upstream is nearest first).
  const policy = data.inputs.policy ?? upstream.find((r) => POLICY_KINDS.has(r.kind))?.modelKey;
  if (READS_REWARD_MODEL.has(data.kind)) {
    const given = 'rewardModel' in data.inputs ? data.inputs.rewardModel : undefined;
    const rewardModel = given ?? model('reward_model');
    return {
      ...data,
      inputs: { ...(policy ? { policy } : {}), ...(rewardModel ? { rewardModel } : {}) },
    };
  }
  return { ...data, inputs: policy ? { policy } : {} };
}
