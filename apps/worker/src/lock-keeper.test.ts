// Issue 18: a worker whose main thread is blocked past its BullMQ lock (a long synchronous graph build) keeps its
// job: the lock keeper renews it from its own thread. Real BullMQ and Redis: the stage runs in this process with a
// 1.5 s lock while a worker process on the same queue runs stall checks every second.
import { listWorkers } from '@rlhf/queue';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import type { StageRunner } from './context.js';
import { createHarness, FAST_LOCKS, type Harness, linearRun, until } from './testing/harness.js';
import { linearRunner } from './testing/linear-runner.js';

const BLOCK_MS = 4 * FAST_LOCKS.lockDuration; // past the lock and several stall checks

let h: Harness;
let checker: ReturnType<Harness['spawnWorker']> | undefined;
beforeAll(async () => {
  h = await createHarness('lock-keeper');
});
afterEach(async () => {
  checker?.child.kill('SIGKILL');
  await checker?.exited;
  checker = undefined;
  await h.closeWorkers();
});
afterAll(() => h.close());

/** Blocks the thread it runs on, as a synchronous build does. */
function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy: no timer, no I/O callback runs
  }
}

/**
 * The linear stage, blocked synchronously for BLOCK_MS at its start once `gate` resolves (the checker is up).
 * Returns the stage, the blocked worker and the checker's id.
 */
async function blockedStage(maxBlockMs: number | undefined) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const linear = linearRunner();
  const blocking: StageRunner = async (job, ctx) => {
    await gate;
    blockFor(BLOCK_MS);
    return linear(job, ctx);
  };
  const [sft] = linearRun(['sft'], { maxSteps: 20, stepsPerCall: 5, checkpointEvery: 10 });
  const blocked = await h.startWorker({ sft: blocking }, maxBlockMs === undefined ? {} : { maxBlockMs });
  await h.addRun([sft]);
  await h.waitFor('stage.started', sft.stageId, (e) => e.workerId === blocked.workerId);
  // A worker process on the same queue whose stall checks run while this process is blocked.
  const checkerId = `checker-${sft.stageId}`;
  checker = h.spawnWorker(
    [
      '--device',
      'cpu',
      '--lock-duration',
      String(FAST_LOCKS.lockDuration),
      '--stalled-interval',
      String(FAST_LOCKS.stalledInterval),
    ],
    { WORKER_ID: checkerId },
  );
  await until(
    () => listWorkers(h.redis, h.prefix),
    (workers) => workers.some((w) => w.workerId === checkerId),
    60_000,
  );
  open();
  return { sft, blocked, checkerId };
}

test('a main thread blocked 4× past its lock keeps the job: no stall, the stage completes on its worker', async () => {
  const { sft, blocked, checkerId } = await blockedStage(undefined);
  await h.waitFor('stage.completed', sft.stageId, () => true, 60_000);
  const events = h.stageEvents(sft.stageId);
  const starts = events.filter((e) => e.type === 'stage.started').map((e) => e.workerId);
  console.log(JSON.stringify({ blockMs: BLOCK_MS, starts, types: events.map((e) => e.type) }));
  expect(starts).toEqual([blocked.workerId]); // the checker never took it
  expect(starts).not.toContain(checkerId);
  expect(events.some((e) => e.type === 'stage.failed')).toBe(false);
  const job = await h.queue.getJob(sft.stageId);
  expect(await job?.getState()).toBe('completed');
  expect(job?.stalledCounter ?? 0).toBe(0);
}, 180_000);

test('control: with the keeper off for blocks (maxBlockMs 0) the same block loses the job to a stall check', async () => {
  const { sft, checkerId } = await blockedStage(0);
  // The checker's stall check moved the job back to wait and the checker took it.
  await h.waitFor('stage.started', sft.stageId, (e) => e.workerId === checkerId, 60_000);
  const job = await h.queue.getJob(sft.stageId);
  console.log(
    JSON.stringify({
      stalledCounter: job?.stalledCounter,
      types: h.stageEvents(sft.stageId).map((e) => e.type),
    }),
  );
  expect(job?.stalledCounter).toBeGreaterThanOrEqual(1);
}, 180_000);
