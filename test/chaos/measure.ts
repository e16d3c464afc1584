// What a fault cost, measured from the outside: the metrics workers reported (the events stream, every attempt)
// against the rows Postgres holds, the steps done twice, runs that never finished, and how long the service
// took to move again after the fault.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ChaosEnv } from './env.js';

export interface RunAccount {
  runId: string;
  status: string;
  error: string | null;
  /** Distinct (stage, metric, step) the workers reported, over all attempts. */
  metricsReported: number;
  /** Reported but not stored. */
  metricsLost: number;
  /** Steps 1..totalSteps of a stage without any stored metric (a report that never reached the stream). */
  stepsWithoutMetrics: number;
  /** Stored rows beyond one per (stage, metric, step). */
  metricsDuplicated: number;
  /** Steps done again after a resume: the furthest step reported before it minus the step resumed from. */
  stepsRedone: number;
}

export interface FaultReport {
  fault: string;
  /** Exactly what was done to the service. */
  how: string;
  trials: number;
  runs: number;
  runsCompleted: number;
  stepsRedone: number;
  metricsLost: number;
  stepsWithoutMetrics: number;
  metricsDuplicated: number;
  /** Runs that did not finish within the timeout. */
  hangs: number;
  /** Fault (or its end, for outages) until the affected stage reported progress again. */
  recoverMs: { median: number; max: number; each: number[] };
  notes?: string[];
}

const key = (stageId: string, name: string, step: number) => `${stageId}\u0000${name}\u0000${step}`;

/**
 * The run's account once the consumer has caught up: an event whose write failed while the database looked
 * down is left pending and claimed again later, after events behind it, so a metric may land after its run
 * finished. Lost = still not stored `settleMs` after the run finished.
 */
export async function accountRun(env: ChaosEnv, runId: string, settleMs = 30_000): Promise<RunAccount> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const account = await accountOnce(env, runId);
    if ((account.metricsLost === 0 && account.stepsWithoutMetrics === 0) || Date.now() > deadline)
      return account;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function accountOnce(env: ChaosEnv, runId: string): Promise<RunAccount> {
  const run = await env.run(runId);
  const ids = run.stages.map((s) => s.id);
  const prisma = env.app.services.prisma;
  const rows = await prisma.metricPoint.findMany({
    where: { stageId: { in: ids } },
    select: { stageId: true, name: true, step: true },
  });
  const stored = new Set(rows.map((r) => key(r.stageId, r.name, r.step)));
  const [{ extra }] = await prisma.$queryRaw<{ extra: bigint }[]>`
    SELECT count(*) - count(DISTINCT ("stageId", name, step)) AS extra
    FROM "MetricPoint" WHERE "stageId" = ANY(${ids})`;

  const reported = new Set<string>();
  let stepsRedone = 0;
  for (const stageId of ids) {
    let furthest = 0;
    let starts = 0;
    for (const { event } of env.stageEvents(stageId)) {
      if (event.type === 'metrics') {
        for (const name of Object.keys(event.values)) reported.add(key(stageId, name, event.step));
        furthest = Math.max(furthest, event.step);
      } else if (event.type === 'stage.started' && starts++ > 0) {
        stepsRedone += Math.max(0, furthest - (event.resumedFromStep ?? 0));
      }
    }
  }
  let metricsLost = 0;
  for (const k of reported) if (!stored.has(k)) metricsLost++;
  const stepsStored = new Set(rows.map((r) => `${r.stageId} ${r.step}`));
  let stepsWithoutMetrics = 0;
  for (const stage of run.stages)
    for (let step = 1; step <= (stage.status === 'succeeded' ? (stage.totalSteps ?? 0) : 0); step++)
      if (!stepsStored.has(`${stage.id} ${step}`)) stepsWithoutMetrics++;
  return {
    runId,
    status: run.status,
    error: run.error,
    metricsReported: reported.size,
    metricsLost,
    stepsWithoutMetrics,
    metricsDuplicated: Number(extra),
    stepsRedone,
  };
}

export function faultReport(
  fault: string,
  how: string,
  trials: number,
  accounts: RunAccount[],
  hangs: number,
  recoveries: number[],
  notes: string[] = [],
): FaultReport {
  const sum = (pick: (a: RunAccount) => number) => accounts.reduce((total, a) => total + pick(a), 0);
  const sorted = [...recoveries].sort((a, b) => a - b);
  for (const a of accounts)
    if (a.status !== 'succeeded') notes.push(`run ${a.runId} ${a.status}: ${a.error ?? 'no error recorded'}`);
  return {
    fault,
    how,
    trials,
    runs: accounts.length + hangs,
    runsCompleted: accounts.filter((a) => a.status === 'succeeded').length,
    stepsRedone: sum((a) => a.stepsRedone),
    metricsLost: sum((a) => a.metricsLost),
    stepsWithoutMetrics: sum((a) => a.stepsWithoutMetrics),
    metricsDuplicated: sum((a) => a.metricsDuplicated),
    hangs,
    recoverMs: {
      median: sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : Number.NaN,
      max: sorted.at(-1) ?? Number.NaN,
      each: recoveries,
    },
    ...(notes.length ? { notes } : {}),
  };
}

/** Adds the report to the JSON file (an array, one entry per fault, newest last) and prints it. */
export async function writeReport(path: string, report: FaultReport): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const previous = await readFile(path, 'utf8').then(
    (text) => JSON.parse(text) as FaultReport[],
    () => [] as FaultReport[],
  );
  await writeFile(path, `${JSON.stringify([...previous, report], null, 2)}\n`);
  console.log(`chaos ${report.fault}: ${JSON.stringify(report)}`);
}
