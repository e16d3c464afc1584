// Worker processes that die or are stopped mid-stage: the stage resumes elsewhere from its checkpoint.
import { createArtifactStore, latestCheckpoint } from '@rlhf/artifacts';
import type { StageJobData } from '@rlhf/contracts';
import { getStageStates, keys, listWorkers } from '@rlhf/queue';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createHarness, FAST_LOCKS, type Harness, linearRun, sleep, until } from './testing/harness.js';
import { fromSafetensors, linearRunner } from './testing/linear-runner.js';

let h: Harness;
beforeAll(async () => {
  h = await createHarness('crash');
});
afterEach(() => h.closeWorkers());
afterAll(() => h.close());

const linear = linearRunner();
const runners = { sft: linear, reward_model: linear, ppo: linear };
const TRAINING = { maxSteps: 60, stepsPerCall: 5, checkpointEvery: 10 };
const childFlags = (workerId: string) => ({
  args: [
    '--device',
    'cpu',
    '--lock-duration',
    String(FAST_LOCKS.lockDuration),
    '--stalled-interval',
    String(FAST_LOCKS.stalledInterval),
    '--heartbeat-interval',
    String(FAST_LOCKS.heartbeatIntervalMs),
  ],
  env: { WORKER_ID: workerId, LINEAR_RUNNER_DELAY_MS: '250' },
});

async function finalWeights(stage: StageJobData): Promise<number[]> {
  const artifacts = createArtifactStore(h.artifactDir);
  const model = fromSafetensors(
    await artifacts.get(`${keys.finalDir(stage.runId, stage.stageId)}/model.safetensors`),
  );
  return [...model.get('w')!, ...model.get('b')!].map(Number);
}

/** The same stage config trained without interruption, in-process, under another run. */
async function uninterrupted(): Promise<number[]> {
  const [reference] = linearRun(['sft'], TRAINING);
  await h.startWorker(runners);
  await h.addRun([reference]);
  await h.waitFor('stage.completed', reference.stageId);
  return finalWeights(reference);
}

describe('crash and shutdown', () => {
  test('kill -9 mid-stage: another worker takes the job after the lock expires and resumes from the checkpoint', async () => {
    const [sft] = linearRun(['sft'], TRAINING);
    await h.addRun([sft]);
    const flags = childFlags('doomed');
    const doomed = h.spawnWorker(flags.args, flags.env);
    await h.waitFor('stage.started', sft.stageId, (e) => e.workerId === 'doomed', 60_000);
    await h.waitFor('artifact', sft.stageId, (e) => e.kind === 'checkpoint' && (e.step ?? 0) >= 20, 60_000);
    doomed.child.kill('SIGKILL');
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });

    const rescuer = await h.startWorker(runners);
    const resumed = await h.waitFor('stage.started', sft.stageId, (e) => e.workerId === rescuer.workerId);
    const completed = await h.waitFor('stage.completed', sft.stageId);
    expect(resumed.resumedFromStep).toBeGreaterThanOrEqual(20);
    expect(resumed.resumedFromStep).toBeLessThan(60);
    expect(completed.result.step).toBe(60);
    // The rescuer's first step follows the checkpoint (step count continues, no restart from 0).
    const events = h.stageEvents(sft.stageId);
    const rescuerMetrics = events
      .slice(events.indexOf(resumed))
      .flatMap((e) => (e.type === 'metrics' ? [e.step] : []));
    expect(rescuerMetrics[0]).toBe((resumed.resumedFromStep ?? 0) + 5);
    // The crashed worker's heartbeat expires.
    const workers = await until(
      () => listWorkers(h.redis, h.prefix),
      (list) => !list.some((w) => w.workerId === 'doomed'),
      5000,
    );
    expect(workers.map((w) => w.workerId)).not.toContain('doomed');
    await h.closeWorkers();

    // Resumed training (weights + AdamW moments + step restored) ends where uninterrupted training ends.
    const expected = await uninterrupted();
    const resumedWeights = await finalWeights(sft);
    expect(Math.max(...resumedWeights.map((w, i) => Math.abs(w - expected[i])))).toBeLessThan(1e-6);
  });

  test('SIGTERM mid-stage: checkpoint, job back in the queue, exit 0; the next worker resumes from that step', async () => {
    const [sft] = linearRun(['sft'], TRAINING);
    await h.addRun([sft]);
    const flags = childFlags('stopping');
    const stopping = h.spawnWorker(flags.args, flags.env);
    await h.waitFor('metrics', sft.stageId, (e) => e.step >= 15, 60_000);
    stopping.child.kill('SIGTERM');
    const requeued = await h.waitFor('stage.requeued', sft.stageId);
    const exit = await stopping.exited;
    expect(exit, stopping.output()).toEqual({ code: 0, signal: null });
    expect(requeued.workerId).toBe('stopping');
    expect(requeued.step).toBeGreaterThanOrEqual(15);
    expect(requeued.step).toBeLessThan(60);
    // The checkpoint was written at the step it stopped at, not only at the last multiple of checkpointEvery.
    const checkpoint = await latestCheckpoint(createArtifactStore(h.artifactDir), sft);
    expect(checkpoint?.step).toBe(requeued.step);
    const state = (await getStageStates(h.queue, [sft.stageId]))[sft.stageId];
    expect(state).toMatchObject({ state: 'prioritized', attemptsMade: 0 }); // waiting again, no attempt used
    expect((await listWorkers(h.redis, h.prefix)).map((w) => w.workerId)).not.toContain('stopping');
    expect(h.stageEvents(sft.stageId).some((e) => e.type === 'stage.failed')).toBe(false);

    await sleep(100);
    const next = await h.startWorker(runners);
    const resumed = await h.waitFor('stage.started', sft.stageId, (e) => e.workerId === next.workerId);
    expect(resumed).toMatchObject({ attempt: 1, resumedFromStep: requeued.step });
    expect((await h.waitFor('stage.completed', sft.stageId)).result.step).toBe(60);
  });
});
