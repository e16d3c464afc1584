// Pausing and resuming a run (and so an OpenAI fine-tuning job). Pause: the run is `paused` at once; the worker
// holding its stage checkpoints at the next step and parks the job (@rlhf/queue pause.ts); a job not yet taken is
// parked by the worker that takes it. The run keeps its admission (its place in the team's quota). Resume: the
// parked jobs go back to the queue and the stage continues from its checkpoint (steps and metrics go on from
// there; none is lost or repeated).
import type { Team } from '@rlhf/db';
import { requestPause, resumeRunJobs } from '@rlhf/queue';
import { admitSafely, lockAdmission } from './admission.js';
import { ApiError } from './errors.js';
import { findRun, runDetail } from './runs.js';
import type { RunView } from './schemas.js';
import type { Services } from './services.js';

/** Pauses a queued or running run; 409 for any other status. */
export async function pauseRun(s: Services, team: Team, runId: string): Promise<RunView> {
  const run = await findRun(s, team, runId);
  await s.prisma.$transaction(async (tx) => {
    await lockAdmission(tx, team.id); // admission cannot add this run's flow meanwhile
    const current = await tx.run.findUniqueOrThrow({ where: { id: run.id } });
    if (current.status !== 'queued' && current.status !== 'running')
      throw new ApiError(
        409,
        'run_not_pausable',
        `run ${run.id} is ${current.status}: only a queued or running run can be paused`,
      );
    // Redis before the commit: if it fails, nothing is marked paused.
    if (current.admittedAt !== null) await requestPause(s.redis, run.id, s.prefix);
    await tx.run.update({ where: { id: run.id }, data: { status: 'paused' } });
  });
  await s.hub.publish({
    runId: run.id,
    type: 'run.updated',
    data: { runId: run.id, status: 'paused', action: 'paused' },
  });
  return runDetail(s, team, run.id);
}

/** Resumes a paused run; 409 for any other status. */
export async function resumeRun(s: Services, team: Team, runId: string): Promise<RunView> {
  const run = await findRun(s, team, runId);
  let status: 'queued' | 'running' = 'queued';
  await s.prisma.$transaction(async (tx) => {
    await lockAdmission(tx, team.id);
    const current = await tx.run.findUniqueOrThrow({ where: { id: run.id } });
    if (current.status !== 'paused')
      throw new ApiError(
        409,
        'run_not_paused',
        `run ${run.id} is ${current.status}: only a paused run can be resumed`,
      );
    status = current.startedAt ? 'running' : 'queued';
    if (current.admittedAt !== null)
      await resumeRunJobs(
        s.redis,
        s.queue,
        run.id,
        run.stages.map((st) => st.id),
        s.prefix,
      );
    await tx.run.update({ where: { id: run.id }, data: { status } });
  });
  await s.hub.publish({
    runId: run.id,
    type: 'run.updated',
    data: { runId: run.id, status, action: 'resumed' },
  });
  await admitSafely(s, team.id); // a run paused before its admission waits for it again
  return runDetail(s, team, run.id);
}
