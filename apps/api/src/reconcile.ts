// Failures that happen inside BullMQ with no worker left to report them: a job whose worker died more
// than maxStalledCount times, a job that vanished from Redis. Postgres learns them here, as if the
// worker had sent the event (applyEvent keeps finished stages as they are).
import { getStageStates, type StageEvent } from '@rlhf/queue';
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
  let finished = 0;
  for (const stage of stages) {
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
    const applied = await applyEvent(s, event, new Date());
    if (applied.finishedTeamId) finished++;
    if (applied.finishedTeamId) await s.hub.publish({ runId: stage.runId, type: event.type, data: event });
  }
  return finished;
}
