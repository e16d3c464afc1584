// Admission: the step between a created run and its BullMQ flow. A team has at most
// `maxActiveStages` admitted, unfinished runs (its quota); waiting runs are admitted oldest first.
// Priorities give fair share across teams: a team's n-th admitted run gets priority n (lower = sooner),
// so every team's first run is taken before anyone's second.
import { type StageJobData, StageJobData as StageJobDataSchema, schemaErrors } from '@rlhf/contracts';
import type { Prisma, Dataset as DatasetRow, Run as RunRow, Stage as StageRow, Team } from '@rlhf/db';
import { addRunFlow, keys, removeRunJobs } from '@rlhf/queue';
import { checkpointEvalOf, evalJobParts } from './eval-stage.js';
import type { Services } from './services.js';

/**
 * Postgres advisory locks (two-key form: this class, the team) held while admitting or cancelling a team's
 * runs: one decision at a time per team across API processes. Quotas are per team, so teams never wait
 * for each other.
 */
export const ADMISSION_LOCK = 7_270_001;

export async function lockAdmission(tx: Prisma.TransactionClient, teamId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ADMISSION_LOCK}::int4, hashtext(${teamId}))`;
}

export type WaitingRun = RunRow & { stages: (StageRow & { dataset: DatasetRow | null })[] };

interface Decision {
  run: WaitingRun;
  jobs: StageJobData[];
  priority: number;
}

// A paused run keeps its place in the quota (it resumes without waiting for admission again).
const UNFINISHED = { in: ['queued', 'running', 'paused'] as ('queued' | 'running' | 'paused')[] };

/**
 * Admits every waiting run its team has room for. The decision (admittedAt, priority, stages queued)
 * commits first, then the flows are added (jobId = stage id, so adding one twice adds nothing): a worker
 * can only start a stage whose admission is committed, and a flow that could not be added is added by
 * reconciliation (reconcile.ts). Quotas are per team, so a change in one team (a run created, cancelled
 * or finished) needs only that team's pass (`teamId`); without one, every team with waiting runs gets
 * its own pass. Returns the admitted run ids.
 */
export async function admitRuns(s: Services, teamOrId?: string | Team): Promise<string[]> {
  if (typeof teamOrId === 'object') return admitTeam(s, teamOrId.id, teamOrId);
  const teamId = teamOrId;
  const teams =
    teamId === undefined
      ? (
          await s.prisma.run.findMany({
            where: { status: 'queued', admittedAt: null },
            distinct: ['teamId'],
            select: { teamId: true },
          })
        ).map((r) => r.teamId)
      : [teamId];
  const admitted: string[] = [];
  for (const team of teams) admitted.push(...(await admitTeam(s, team)));
  return admitted;
}

/** The runs of a team admitted and not finished (what its quota counts). */
const activeRuns = (db: Prisma.TransactionClient, teamId: string) =>
  db.run.count({ where: { teamId, admittedAt: { not: null }, status: UNFINISHED } });

/** `known`: the team as the caller read it (its limits), else it is read here. */
async function admitTeam(s: Services, teamId: string, known?: Team): Promise<string[]> {
  // Without the lock first: a team at its quota (the common case in a burst of submissions) costs one
  // read and no wait. Safe, as whatever frees room (a run finishing or cancelled) commits first and then
  // runs this team's pass, which sees every run created before it.
  const team = known ?? (await s.prisma.team.findUnique({ where: { id: teamId } }));
  if (!team || (await activeRuns(s.prisma, teamId)) >= team.maxActiveStages) return [];
  const decided: Decision[] = [];
  const failed: { id: string; error: string }[] = [];
  await s.prisma.$transaction(
    async (tx) => {
      await lockAdmission(tx, teamId);
      let count = await activeRuns(tx, teamId);
      const room = team.maxActiveStages - count;
      if (room <= 0) return;
      // Only as many waiting runs as there is room for (oldest first), not the whole backlog; one that
      // fails to become jobs is failed and the next one looked at.
      let cursor: string | undefined;
      while (count < team.maxActiveStages) {
        const waiting: WaitingRun[] = await tx.run.findMany({
          where: { teamId, status: 'queued', admittedAt: null, ...(cursor ? { id: { gt: cursor } } : {}) },
          orderBy: { id: 'asc' }, // uuid v7: creation order
          take: team.maxActiveStages - count,
          include: { stages: { orderBy: { index: 'asc' }, include: { dataset: true } } },
        });
        if (waiting.length === 0) break;
        for (const run of waiting) {
          cursor = run.id;
          let jobs: StageJobData[];
          try {
            jobs = stageJobs(run);
          } catch (error) {
            failed.push({ id: run.id, error: (error as Error).message });
            continue;
          }
          const priority = count + 1;
          await tx.run.update({ where: { id: run.id }, data: { admittedAt: new Date(), priority } });
          await tx.stage.updateMany({
            where: { runId: run.id, status: 'pending' },
            data: { status: 'queued' },
          });
          count++;
          decided.push({ run, jobs, priority });
        }
      }
      const now = new Date();
      for (const { id, error } of failed) {
        await tx.run.update({ where: { id }, data: { status: 'failed', error, finishedAt: now } });
        await tx.stage.updateMany({ where: { runId: id }, data: { status: 'cancelled', finishedAt: now } });
      }
    },
    { maxWait: 30_000, timeout: 60_000 },
  );
  const admitted: string[] = [];
  for (const { run, jobs, priority } of decided) {
    try {
      await addAdmittedFlow(s, run.id, jobs, priority);
      admitted.push(run.id);
    } catch (error) {
      s.logger.error(
        { err: error, runId: run.id },
        'adding an admitted run to BullMQ failed; reconciliation adds it',
      );
    }
  }
  s.metrics.runsAdmitted.inc(admitted.length);
  for (const runId of [...decided.map((d) => d.run.id), ...failed.map((f) => f.id)]) {
    await s.hub.publish({ runId, type: 'run.updated', data: { runId } });
  }
  return admitted;
}

/**
 * Adds the flow of an admitted run's `jobs`. A cancel committed meanwhile (it found no jobs to remove) is
 * honoured here: the jobs just added are removed again.
 */
export async function addAdmittedFlow(
  s: Services,
  runId: string,
  jobs: StageJobData[],
  priority: number,
): Promise<void> {
  await addRunFlow(s.flows, { runId, stages: jobs, priority });
  const run = await s.prisma.run.findUnique({ where: { id: runId }, select: { status: true } });
  if (!run || run.status === 'cancelled') {
    await removeRunJobs(
      s.queue,
      jobs.map((job) => job.stageId),
    );
  }
}

/**
 * Admission that never fails the request: a run it could not admit now waits for the next pass.
 * Returns the admitted run ids.
 */
export async function admitSafely(s: Services, team?: string | Team): Promise<string[]> {
  try {
    return await admitRuns(s, team);
  } catch (error) {
    s.logger.error({ err: error }, 'admission failed; waiting runs are retried on the next pass');
    return [];
  }
}

/** The jobs of a run, in run order: everything a worker needs (workers never read Postgres). */
export function stageJobs(run: WaitingRun): StageJobData[] {
  return run.stages.map((stage) => {
    if (!stage.dataset) throw new Error(`stage ${stage.kind}: its dataset was deleted`);
    // Models made earlier in this run reach a stage through BullMQ (children's results); only models
    // of the run it starts from (model.fromRun) are set here.
    // A stage of this run that already finished (a flow added again after a Redis loss) hands its model
    // through the job, as its job's result is gone.
    const earlier = (kind: StageRow['kind']) =>
      run.stages.find((o) => o.index < stage.index && o.kind === kind);
    const from = (kind: StageRow['kind'], fromRun: string | undefined) => {
      const before = earlier(kind);
      return before ? (before.status === 'succeeded' ? (before.modelKey ?? undefined) : undefined) : fromRun;
    };
    // The nearest policy before this stage: a GRPO, RAFT, PRO or DPO stage of this run, else its SFT stage or fromRun.
    const policyStage = (['grpo', 'raft', 'pro', 'dpo'] as const).find((kind) => earlier(kind)) ?? null;
    const policy = policyStage
      ? from(policyStage, undefined)
      : from('sft', run.fromRunPolicyKey ?? run.baseModelKey ?? undefined);
    const rewardModel = from('reward_model', run.fromRunRewardModelKey ?? undefined);
    const job = {
      runId: run.id,
      stageId: stage.id,
      teamId: run.teamId,
      modelPreset: run.modelPreset,
      ...(run.baseModelKey ? { baseModel: run.baseModelKey } : {}),
      kind: stage.kind,
      config: stage.config,
      dataset: {
        id: stage.dataset.id,
        key: keys.dataset(run.teamId, stage.dataset.sha256),
        kind: stage.dataset.kind,
      },
      inputs: {
        ...(policy ? { policy } : {}),
        ...((stage.kind === 'ppo' || stage.kind === 'raft' || stage.kind === 'grpo') && rewardModel
          ? { rewardModel }
          : {}),
      },
    };
    // An eval stage's job: the run's last policy, what it is compared with, its judge, and their names.
    if (stage.kind === 'eval') Object.assign(job, evalJobParts(run, stage, from, rewardModel));
    const datasetKey = (index: number) => {
      const dataset = run.stages.find((o) => o.index === index)?.dataset;
      return dataset ? keys.dataset(run.teamId, dataset.sha256) : undefined;
    };
    const checkpointEval = checkpointEvalOf(run, stage, from, rewardModel, datasetKey);
    if (checkpointEval) Object.assign(job, { checkpointEval });
    const errors = schemaErrors(StageJobDataSchema, job);
    if (errors.length > 0)
      throw new Error(`stage ${stage.kind}: invalid job: ${errors[0].path} ${errors[0].message}`);
    return job as StageJobData;
  });
}
