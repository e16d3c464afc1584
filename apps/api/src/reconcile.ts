// Failures that happen inside BullMQ with no worker left to report them: a job whose worker died more
// than maxStalledCount times, a job that vanished from Redis. Postgres learns them here, as if the
// worker had sent the event (applyEvent keeps finished stages as they are). A run whose unfinished
// stages all lost their jobs (Redis restarted without its data, or admission committed but could not
// add the flow) is queued again with the same stage ids: workers resume each stage from its latest
// checkpoint in the artifact store.
import {
  getStageStates,
  HEARTBEAT_TTL_MS,
  listWorkers,
  requestCancel,
  requestPause,
  type StageEvent,
  type StageJobState,
} from '@rlhf/queue';
import { addAdmittedFlow, stageJobs } from './admission.js';
import { applyEvent } from './events/persist.js';
import type { Services } from './services.js';

/** Brings queued and running stages in line with BullMQ; returns how many it finished. */
export async function reconcileStages(s: Services): Promise<number> {
  const stages = await s.prisma.stage.findMany({
    where: { status: { in: ['queued', 'running'] }, run: { admittedAt: { not: null } } },
    include: { run: true },
    orderBy: [{ runId: 'asc' }, { index: 'asc' }], // earlier stages first: they are the cause
  });
  if (stages.length === 0) return 0;
  const states = await getStageStates(
    s.queue,
    stages.map((st) => st.id),
  );
  const requeued = await requeueLostRuns(s, stages, states);
  let finished = 0;
  for (const stage of stages) {
    if (requeued.has(stage.runId)) continue;
    const state = states[stage.id];
    const ref = { runId: stage.runId, stageId: stage.id };
    let event: StageEvent | undefined;
    if (state.state === 'completed' && state.result) {
      event = { type: 'stage.completed', ...ref, result: state.result };
    } else if (state.state === 'failed' || state.state === 'unknown') {
      const error =
        state.state === 'unknown'
          ? 'its job is missing from the queue'
          : (state.failedReason ?? 'failed in the queue');
      event =
        stage.run.status === 'cancelled'
          ? { type: 'stage.cancelled', ...ref }
          : { type: 'stage.failed', ...ref, error, willRetry: false };
    }
    if (!event) continue;
    // The cancelled flag may have gone with the job (a Redis restart): a worker still running it stops.
    if (event.type === 'stage.cancelled') await requestCancel(s.redis, stage.runId, s.prefix);
    const applied = await applyEvent(s, event, new Date());
    if (applied.finishedTeamId) finished++;
    if (applied.finishedTeamId) await s.hub.publish({ runId: stage.runId, type: event.type, data: event });
  }
  return finished;
}

/**
 * Adds the remaining flow of every live run none of whose unfinished stages has a job; returns the ids of
 * those runs (queued again, or left to a worker for now), which are not failed.
 * A stage a worker may still be running (its heartbeat names it, or it reported within a heartbeat's TTL:
 * heartbeats come back within seconds of a Redis restart) is left to that worker, so a stage is not run
 * twice at once; once it finishes, the stages after it are queued again on a later pass.
 */
async function requeueLostRuns(
  s: Services,
  stages: { id: string; runId: string; status: string; updatedAt: Date; run: { status: string } }[],
  states: Record<string, StageJobState>,
): Promise<Set<string>> {
  if (!stages.some((st) => states[st.id].state === 'unknown')) return new Set();
  const held = new Set((await listWorkers(s.redis, s.prefix)).map((w) => w.currentStageId));
  const recent = Date.now() - HEARTBEAT_TTL_MS;
  const mayRun = (st: (typeof stages)[number]) =>
    held.has(st.id) || (st.status === 'running' && st.updatedAt.getTime() > recent);
  const byRun = new Map<string, typeof stages>();
  for (const stage of stages) byRun.set(stage.runId, [...(byRun.get(stage.runId) ?? []), stage]);
  const lost = [...byRun].filter(
    ([, own]) => own[0].run.status !== 'cancelled' && own.every((st) => states[st.id].state === 'unknown'),
  );
  const requeued = new Set<string>(); // queued again, or to be on a later pass
  for (const [runId, own] of lost) if (own.some(mayRun)) requeued.add(runId); // its worker goes on
  for (const [runId, own] of lost) {
    if (requeued.has(runId)) continue;
    const ids = own.map((st) => st.id);
    const run = await s.prisma.run.findUnique({
      where: { id: runId },
      include: { stages: { orderBy: { index: 'asc' }, include: { dataset: true } } },
    });
    if (!run || run.status === 'cancelled' || run.admittedAt === null) continue;
    requeued.add(runId); // from here on never failed: queued again now or on a later pass
    const remaining = run.stages.filter((st) => ['pending', 'queued', 'running'].includes(st.status));
    if (remaining.some((st) => !ids.includes(st.id))) continue; // changed meanwhile: next pass
    try {
      const jobs = stageJobs(run).filter((job) => ids.includes(job.stageId));
      // A paused run's flag went with Redis: set again first, so the worker that takes the job parks it.
      if (run.status === 'paused') await requestPause(s.redis, run.id, s.prefix);
      await addAdmittedFlow(s, run.id, jobs, run.priority ?? 1);
    } catch (error) {
      s.logger.error(
        { err: error, runId },
        'reconcile: queueing a run again failed; retried on the next pass',
      );
      continue;
    }
    // A running stage lost its worker's job: it is waiting again (its worker resumes from a checkpoint).
    await s.prisma.stage.updateMany({
      where: { id: { in: ids }, status: 'running' },
      data: { status: 'queued' },
    });
    s.logger.warn({ runId, stageIds: ids }, 'reconcile: the run had no jobs in BullMQ; queued again');
    await s.hub.publish({ runId, type: 'run.updated', data: { runId } });
  }
  return requeued;
}
