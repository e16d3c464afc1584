// `--devices cpu,cpu`: one worker process per device, crashed ones restarted, all stopped by one SIGTERM.
import { listWorkers, type WorkerHeartbeat } from '@rlhf/queue';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createHarness, type Harness, linearRun, until } from './testing/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await createHarness('supervisor');
});
afterAll(() => h.close());

const ids = (workers: WorkerHeartbeat[]) => workers.map((w) => `${w.workerId}@${w.pid}`);

describe('supervisor', () => {
  test('runs a worker per device, restarts a killed one, stops all on SIGTERM', async () => {
    const supervisor = h.spawnWorker(['--devices', 'cpu,cpu', '--heartbeat-interval', '200'], {
      WORKER_ID: 'gpu-box',
    });
    const first = await until(
      () => listWorkers(h.redis, h.prefix),
      (list) => list.length === 2,
      60_000,
    );
    expect(
      first.map((w) => [w.workerId, w.device]),
      supervisor.output(),
    ).toEqual([
      ['gpu-box-0', 'cpu'],
      ['gpu-box-1', 'cpu'],
    ]);
    expect(new Set(first.map((w) => w.pid)).size).toBe(2);
    expect(first.map((w) => w.pid)).not.toContain(supervisor.child.pid);

    // Both take work: a run's stage completes on one of them.
    const [sft] = linearRun(['sft'], { maxSteps: 10 });
    await h.addRun([sft]);
    const started = await h.waitFor('stage.started', sft.stageId);
    expect(['gpu-box-0', 'gpu-box-1']).toContain(started.workerId);
    await h.waitFor('stage.completed', sft.stageId);

    process.kill(first[1].pid, 'SIGKILL');
    const restarted = await until(
      () => listWorkers(h.redis, h.prefix),
      (list) => list.length === 2 && list[1].pid !== first[1].pid,
      60_000,
    );
    expect(ids(restarted)[0]).toBe(ids(first)[0]);
    expect(restarted[1].workerId).toBe('gpu-box-1');
    expect(restarted[1].pid).not.toBe(first[1].pid);

    supervisor.child.kill('SIGTERM');
    expect(await supervisor.exited, supervisor.output()).toEqual({ code: 0, signal: null });
    expect(await listWorkers(h.redis, h.prefix)).toEqual([]); // graceful exits remove their heartbeats
  });
});
