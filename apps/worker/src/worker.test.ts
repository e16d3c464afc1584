import type { StageJobData } from '@rlhf/contracts';
import { createArtifactStore, listCheckpoints } from '@rlhf/artifacts';
import { getStageStates, keys, listWorkers, redisKeys, removeRunJobs, requestCancel } from '@rlhf/queue';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { StageRunner } from './context.js';
import { createHarness, type Harness, linearRun, until } from './testing/harness.js';
import { fromSafetensors, linearRunner, TRUE_B, TRUE_W } from './testing/linear-runner.js';

let h: Harness;
beforeAll(async () => {
  h = await createHarness('worker');
});
afterEach(() => h.closeWorkers());
afterAll(() => h.close());

const linear = linearRunner();
const all = { sft: linear, reward_model: linear, ppo: linear };
const ids = (stages: StageJobData[]) => stages.map((s) => s.stageId);

describe('worker', () => {
  test('runs a stage: result, events on the stream, checkpoints, a model that learned', async () => {
    const worker = await h.startWorker(all);
    const [sft] = linearRun(['sft'], { maxSteps: 60, checkpointEvery: 20 });
    await h.addRun([sft]);
    const completed = await h.waitFor('stage.completed', sft.stageId);
    const finalKey = keys.finalDir(sft.runId, sft.stageId);
    expect(completed.result).toEqual({ stageId: sft.stageId, kind: 'sft', modelKey: finalKey, step: 60 });
    const states = await until(
      () => getStageStates(h.queue, [sft.stageId]),
      (s) => s[sft.stageId].state === 'completed',
    );
    expect(states[sft.stageId].result).toEqual(completed.result);

    const events = h.stageEvents(sft.stageId);
    expect(events[0]).toMatchObject({
      type: 'stage.started',
      workerId: worker.workerId,
      attempt: 1,
      resumedFromStep: null,
      hyperparameters: sft.config,
    });
    expect(events.at(-1)?.type).toBe('stage.completed');
    const metrics = events.flatMap((e) => (e.type === 'metrics' ? [e] : []));
    expect(metrics.map((m) => m.step)).toEqual([5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]);
    expect(metrics.at(-1)!.values['train/loss']).toBeLessThan(metrics[0].values['train/loss'] / 100);
    const checkpoints = events.flatMap((e) =>
      e.type === 'artifact' && e.kind === 'checkpoint' ? [e.step] : [],
    );
    expect(checkpoints).toEqual([20, 40, 60]);
    // Progress is throttled; the last step is always reported.
    const progress = events.flatMap((e) => (e.type === 'stage.progress' ? [e] : []));
    expect(progress.length).toBeLessThan(metrics.length);
    expect(progress.at(-1)).toMatchObject({ step: 60, totalSteps: 60 });

    const artifacts = createArtifactStore(h.artifactDir);
    expect(await listCheckpoints(artifacts, sft)).toEqual([40, 60]); // the newest 2 are kept
    const model = fromSafetensors(await artifacts.get(`${finalKey}/model.safetensors`));
    const learned = [...model.get('w')!, ...model.get('b')!];
    const truth = [...TRUE_W, TRUE_B];
    expect(Math.max(...learned.map((w, i) => Math.abs(w - truth[i])))).toBeLessThan(0.05);
    await worker.close();
  });

  test('a run runs its stages in order and each starts from the model of the one before', async () => {
    const worker = await h.startWorker(all);
    const stages = linearRun(['sft', 'reward_model', 'ppo'], { maxSteps: 40 });
    await h.addRun(stages);
    const last = await h.waitFor('stage.completed', stages[2].stageId);
    expect(last.result.step).toBe(40); // PPO: iterations
    const order = h
      .events()
      .filter((e) => e.type === 'stage.started' && e.runId === stages[0].runId)
      .map((e) => e.stageId);
    expect(order).toEqual(ids(stages));
    // The reward model starts from the SFT model: its first loss is already far below SFT's first loss.
    const firstLoss = (stageId: string) =>
      h.stageEvents(stageId).flatMap((e) => (e.type === 'metrics' ? [e.values['train/loss']] : []))[0];
    expect(firstLoss(stages[1].stageId)).toBeLessThan(firstLoss(stages[0].stageId) / 10);
    await worker.close();
  });

  test('a failing stage is retried while attempts are left, then fails the stages after it', async () => {
    let calls = 0;
    const failing: StageRunner = async () => {
      calls += 1;
      throw new Error(`loss is NaN (call ${calls})`);
    };
    const worker = await h.startWorker({ ...all, sft: failing });
    const stages = linearRun(['sft', 'reward_model']);
    await h.addRun(stages, { attempts: 2 });
    const states = await until(
      () => getStageStates(h.queue, ids(stages)),
      (s) => ids(stages).every((id) => s[id].state === 'failed'),
    );
    expect(ids(stages).map((id) => states[id].state)).toEqual(['failed', 'failed']);
    const failures = h.stageEvents(stages[0].stageId).filter((e) => e.type === 'stage.failed');
    expect(failures).toEqual([
      {
        type: 'stage.failed',
        runId: stages[0].runId,
        stageId: stages[0].stageId,
        error: 'loss is NaN (call 1)',
        willRetry: true,
      },
      {
        type: 'stage.failed',
        runId: stages[0].runId,
        stageId: stages[0].stageId,
        error: 'loss is NaN (call 2)',
        willRetry: false,
      },
    ]);
    expect(h.stageEvents(stages[1].stageId)).toEqual([]); // never started
    await worker.close();
  });

  test('a stage kind without a runner fails clearly, without retries', async () => {
    const worker = await h.startWorker({ sft: linear });
    const [ppo] = linearRun(['ppo']);
    await h.addRun([ppo], { attempts: 3 });
    const failed = await h.waitFor('stage.failed', ppo.stageId);
    expect(failed.error).toMatch(/no runner for stage kind 'ppo'/);
    expect(failed.willRetry).toBe(false);
    await worker.close();
  });

  test('cancel stops the running stage within seconds; the worker goes on with other jobs', async () => {
    const worker = await h.startWorker({ ...all, sft: linearRunner({ delayMs: 100 }) });
    const stages = linearRun(['sft', 'reward_model', 'ppo'], { maxSteps: 100_000, stepsPerCall: 1 });
    await h.addRun(stages);
    await h.waitFor('metrics', stages[0].stageId, (e) => e.step >= 3);
    expect((await listWorkers(h.redis, h.prefix)).find((w) => w.workerId === worker.workerId)).toMatchObject({
      currentRunId: stages[0].runId,
      currentStageId: stages[0].stageId,
    });

    const asked = Date.now();
    await requestCancel(h.redis, stages[0].runId, h.prefix);
    // The later stages are removed, or (when the cancelled stage failed first) failed by failParentOnFailure.
    const removed = await removeRunJobs(h.queue, ids(stages));
    expect(stages.slice(1).map((s) => s.stageId)).toEqual(expect.arrayContaining(removed));
    await h.waitFor('stage.cancelled', stages[0].stageId, () => true, 10_000);
    expect(Date.now() - asked).toBeLessThan(5000);
    const states = await until(
      () => getStageStates(h.queue, ids(stages)),
      (s) => s[stages[0].stageId].state === 'failed',
    );
    expect(states[stages[0].stageId]).toMatchObject({ state: 'failed', failedReason: 'cancelled' });
    for (const later of stages.slice(1)) {
      expect(['unknown', 'failed']).toContain(states[later.stageId].state);
      expect(h.stageEvents(later.stageId)).toEqual([]); // never ran
    }

    const [next] = linearRun(['sft'], { maxSteps: 10 });
    await h.addRun([next]);
    await h.waitFor('stage.completed', next.stageId);
    await worker.close();
  });

  test('a cancel whose broadcast was missed is still seen within a heartbeat', async () => {
    await h.startWorker({ ...all, sft: linearRunner({ delayMs: 100 }) });
    const [sft] = linearRun(['sft'], { maxSteps: 100_000, stepsPerCall: 1 });
    await h.addRun([sft]);
    await h.waitFor('metrics', sft.stageId);
    await h.redis.set(redisKeys(h.prefix).cancelled(sft.runId), '1'); // the flag without the pub/sub message
    await h.waitFor('stage.cancelled', sft.stageId, () => true, 5000);
  });

  test('heartbeats list the worker while it runs and drop it when it closes', async () => {
    const worker = await h.startWorker(all);
    const listed = await listWorkers(h.redis, h.prefix);
    expect(listed.find((w) => w.workerId === worker.workerId)).toMatchObject({
      device: 'cpu',
      pid: process.pid,
      currentStageId: null,
    });
    await worker.close();
    expect((await listWorkers(h.redis, h.prefix)).map((w) => w.workerId)).not.toContain(worker.workerId);
  });
});
