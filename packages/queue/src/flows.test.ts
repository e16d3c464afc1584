import { resolveRaftConfig, type StageJobData, type StageJobResult } from '@rlhf/contracts';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRedis } from './connection.js';
import {
  addRunFlow,
  createFlowProducer,
  createStageQueue,
  getStageStates,
  removeRunJobs,
  resolveInputs,
  type StageQueue,
  upstreamResults,
} from './flows.js';
import { deletePrefix, keys, STAGE_QUEUE } from './keys.js';
import { runStages, testPrefix } from './test-fixtures.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = testPrefix('flows');
let redis: Redis;
let queue: StageQueue;
const flows = () => createFlowProducer(redis, prefix);

beforeAll(() => {
  redis = createRedis(REDIS_URL, { worker: true });
  queue = createStageQueue(redis, prefix);
});
afterAll(async () => {
  await queue.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const resultOf = (data: StageJobData, step = 7): StageJobResult => ({
  stageId: data.stageId,
  kind: data.kind,
  modelKey: keys.finalDir(data.runId, data.stageId),
  step,
});

describe('run flows', () => {
  test('a run is one flow: stages run in order and each sees the models of the stages before it', async () => {
    const stages = runStages();
    const producer = flows();
    await addRunFlow(producer, { runId: stages[0].runId, stages, priority: 5 });
    await producer.close();

    const ids = stages.map((s) => s.stageId);
    const before = await getStageStates(queue, ids);
    expect(ids.map((id) => before[id].state)).toEqual([
      'prioritized',
      'waiting-children',
      'waiting-children',
    ]);
    const sft = await queue.getJob(ids[0]);
    expect(sft?.opts).toMatchObject({ priority: 5, attempts: 1 });
    expect(sft?.opts.failParentOnFailure).toBe(true);
    expect((await queue.getJob(ids[2]))?.opts.failParentOnFailure).toBeUndefined();
    expect(sft?.name).toBe('sft');

    const order: string[] = [];
    const resolved: Record<string, StageJobData> = {};
    const worker = new Worker<StageJobData, StageJobResult>(
      STAGE_QUEUE,
      async (job) => {
        order.push(job.data.kind);
        resolved[job.data.kind] = resolveInputs(job.data, await upstreamResults(queue, job));
        return resultOf(job.data);
      },
      { connection: redis.duplicate(), prefix },
    );
    const after = await until(
      () => getStageStates(queue, ids),
      (s) => s[ids[2]].state === 'completed',
    );
    await worker.close();

    expect(order).toEqual(['sft', 'reward_model', 'ppo']);
    expect(after[ids[2]].result).toEqual(resultOf(stages[2]));
    expect(resolved.sft.inputs).toEqual({});
    expect(resolved.reward_model.inputs).toEqual({ policy: keys.finalDir(stages[0].runId, ids[0]) });
    expect(resolved.ppo.inputs).toEqual({
      policy: keys.finalDir(stages[0].runId, ids[0]),
      rewardModel: keys.finalDir(stages[0].runId, ids[1]),
    });
  });

  test('a failed stage fails the stages after it instead of leaving them waiting', async () => {
    const stages = runStages();
    const producer = flows();
    await addRunFlow(producer, { runId: stages[0].runId, stages, priority: 1 });
    await producer.close();
    const ids = stages.map((s) => s.stageId);
    const worker = new Worker<StageJobData, StageJobResult>(
      STAGE_QUEUE,
      async (job) => {
        if (job.data.kind === 'sft') throw new Error('loss is NaN');
        return resultOf(job.data);
      },
      { connection: redis.duplicate(), prefix },
    );
    const states = await until(
      () => getStageStates(queue, ids),
      (s) => ids.every((id) => s[id].state === 'failed'),
    );
    await worker.close();
    expect(ids.map((id) => states[id].state)).toEqual(['failed', 'failed', 'failed']);
    expect(states[ids[0]].failedReason).toBe('loss is NaN');
  });

  test('adding a run again (at once, or later) adds nothing: each stage runs once', async () => {
    const stages = runStages();
    const producer = flows();
    const run = { runId: stages[0].runId, stages, priority: 2 };
    // Admission and reconciliation may both add an admitted run whose jobs they did not see.
    await Promise.all([addRunFlow(producer, run), addRunFlow(producer, run)]);
    await addRunFlow(producer, run);
    const ids = stages.map((s) => s.stageId);
    expect(await queue.getJobCounts('prioritized', 'waiting-children')).toEqual({
      prioritized: 1,
      'waiting-children': 2,
    });
    const ran: string[] = [];
    const worker = new Worker<StageJobData, StageJobResult>(
      STAGE_QUEUE,
      async (job) => {
        ran.push(job.data.kind);
        return resultOf(job.data);
      },
      { connection: redis.duplicate(), prefix },
    );
    await until(
      () => getStageStates(queue, ids),
      (s) => s[ids[2]].state === 'completed',
    );
    await addRunFlow(producer, run); // after it finished: still nothing added
    await new Promise((resolve) => setTimeout(resolve, 200));
    await worker.close();
    await producer.close();
    expect(ran).toEqual(['sft', 'reward_model', 'ppo']);
    const states = await getStageStates(queue, ids);
    expect(ids.map((id) => states[id].state)).toEqual(['completed', 'completed', 'completed']);
  });

  test('removeRunJobs removes the jobs no worker holds', async () => {
    const stages = runStages();
    const producer = flows();
    await addRunFlow(producer, { runId: stages[0].runId, stages, priority: 3 });
    await producer.close();
    const ids = stages.map((s) => s.stageId);
    expect(new Set(await removeRunJobs(queue, ids))).toEqual(new Set(ids));
    const states = await getStageStates(queue, ids);
    expect(ids.map((id) => states[id].state)).toEqual(['unknown', 'unknown', 'unknown']);
  });

  test('addRunFlow refuses stages of another run', async () => {
    const stages = runStages();
    const other = runStages();
    await expect(
      addRunFlow(flows(), { runId: stages[0].runId, stages: [stages[0], other[1]], priority: 1 }),
    ).rejects.toThrow(/belongs to run/);
  });

  test('resolveInputs keeps the inputs the API set (runs started from an earlier run)', () => {
    const [, , ppo] = runStages();
    const given = { ...ppo, inputs: { policy: 'runs/old/sft1/final' } } as StageJobData;
    const upstream: StageJobResult[] = [
      { stageId: 'rm1', kind: 'reward_model', modelKey: 'runs/new/rm1/final', step: 3 },
      { stageId: 'sft2', kind: 'sft', modelKey: 'runs/new/sft2/final', step: 3 },
    ];
    expect(resolveInputs(given, upstream).inputs).toEqual({
      policy: 'runs/old/sft1/final',
      rewardModel: 'runs/new/rm1/final',
    });
  });

  test('resolveInputs: the policy is the nearest earlier policy stage (DPO before SFT)', () => {
    const [, , ppo] = runStages();
    const upstream: StageJobResult[] = [
      { stageId: 'dpo1', kind: 'dpo', modelKey: 'runs/new/dpo1/final', step: 3 },
      { stageId: 'rm1', kind: 'reward_model', modelKey: 'runs/new/rm1/final', step: 3 },
      { stageId: 'sft1', kind: 'sft', modelKey: 'runs/new/sft1/final', step: 3 },
    ];
    expect(resolveInputs(ppo, upstream).inputs).toEqual({
      policy: 'runs/new/dpo1/final',
      rewardModel: 'runs/new/rm1/final',
    });
    expect(resolveInputs(ppo, upstream.slice(1)).inputs.policy).toBe('runs/new/sft1/final');
    const raft = { ...ppo, kind: 'raft', config: resolveRaftConfig() } as StageJobData;
    expect(resolveInputs(raft, upstream).inputs).toEqual({
      policy: 'runs/new/dpo1/final',
      rewardModel: 'runs/new/rm1/final',
    });
  });
});
