// Failures that happen inside BullMQ with no worker left to report them: a job whose worker died more
// than maxStalledCount times, a job that vanished from Redis. Postgres learns them here, as if the
// worker had sent the event (applyEvent keeps finished stages as they are). A run whose unfinished
// stages all lost their jobs (Redis restarted without its data, or admission committed but could not
// add the flow) is queued again with the same stage ids: workers resume each stage from its latest
// checkpoint in the artifact store.
import { getStageStates, requestCancel, type StageEvent, type StageJobState } from '@rlhf/queue';
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

/** Adds the remaining flow of every live run none of whose unfinished stages has a job; returns their ids. */
async function requeueLostRuns(
  s: Services,
  stages: { id: string; runId: string; run: { status: string } }[],
  states: Record<string, StageJobState>,
): Promise<Set<string>> {
  const byRun = new Map<string, string[]>();
  for (const stage of stages) byRun.set(stage.runId, [...(byRun.get(stage.runId) ?? []), stage.id]);
  const lost = [...byRun].filter(
    ([runId, ids]) =>
      stages.find((st) => st.runId === runId)?.run.status !== 'cancelled' &&
      ids.every((id) => states[id].state === 'unknown'),
  );
  const requeued = new Set<string>();
  for (const [runId, ids] of lost) {
    const run = await s.prisma.run.findUnique({
      where: { id: runId },
      include: { stages: { orderBy: { index: 'asc' }, include: { dataset: true } } },
    });
    if (!run || run.status === 'cancelled' || run.admittedAt === null) continue;
    const remaining = run.stages.filter((st) => ['pending', 'queued', 'running'].includes(st.status));
    if (remaining.some((st) => !ids.includes(st.id))) continue; // changed meanwhile: next pass
    try {
      const jobs = stageJobs(run).filter((job) => ids.includes(job.stageId));
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
    requeued.add(runId);
  }
  return requeued;
}
