// The faults of the chaos suite, each run against a real service (createChaosEnv) and measured from the
// outside (measure.ts). `npm run test:chaos` runs them with many trials; test/chaos-fast.test.ts with one.
import type { StageEvent } from '@rlhf/queue';
import { type ChaosEnv, FAST_LOCKS, sleep, type StageKind } from './env.js';
import { accountRun, type FaultReport, faultReport, type RunAccount } from './measure.js';

export interface KillOptions {
  /** kill -9 trials in all; the kinds take turns (each run kills once in each of its stages). */
  trials: number;
  kinds: readonly StageKind[];
  /** Longest a run may take before it counts as a hang. */
  runTimeoutMs: number;
}

const isStage = (stageId: string) => (e: StageEvent) => e.stageId === stageId;

/** What a hung run looked like: its stages, its last events and the worker's last output lines. */
async function hangNote(env: ChaosEnv, runId: string, stageIds: string[], output: string): Promise<string> {
  const run = await env.run(runId).catch(() => null);
  const stages = run?.stages.map((s) => `${s.kind}:${s.status}@${s.step}`).join(' ') ?? 'unreadable';
  const last = env.seen
    .filter((s) => stageIds.includes(s.event.stageId))
    .slice(-12)
    .map((s) => s.event.type + ('step' in s.event ? `@${s.event.step}` : ''))
    .join(' ');
  return `run ${runId} hung (${run?.status ?? '?'}; ${stages}); last events: ${last}; worker: ${output.slice(-1500)}`;
}

/**
 * kill -9 of the worker running a stage, once it has a checkpoint and went on past it (so work is redone),
 * then a new worker process; once per stage of a run of `kinds`, runs until `trials` kills were made.
 */
export async function workerKills(env: ChaosEnv, options: KillOptions): Promise<FaultReport> {
  const accounts: RunAccount[] = [];
  const recoveries: number[] = [];
  const notes: string[] = [];
  const killedIn: Record<string, number> = {};
  let kills = 0;
  let hangs = 0;
  let spawned = 0;
  while (kills < options.trials) {
    const run = await env.submit(options.kinds);
    let worker = env.spawnWorker(`victim-${spawned++}`);
    for (const stage of run.stages) {
      if (kills >= options.trials) break;
      const mine = isStage(stage.id);
      const start = await env.waitForEvent(
        (e) => mine(e) && e.type === 'stage.started' && e.workerId === worker.workerId,
        options.runTimeoutMs,
      );
      if (!start) break;
      // A checkpoint newer than the one it resumed from, then a step past it — or the stage ends first.
      const resumedFrom = start.event.type === 'stage.started' ? (start.event.resumedFromStep ?? 0) : 0;
      const checkpoint = await env.waitForEvent(
        (e) =>
          mine(e) &&
          ((e.type === 'artifact' && e.kind === 'checkpoint' && (e.step ?? 0) > resumedFrom) ||
            e.type === 'stage.completed'),
        options.runTimeoutMs,
        start.index,
      );
      if (!checkpoint || checkpoint.event.type === 'stage.completed') {
        notes.push(`${stage.kind} of run ${run.id} ended before a kill could be made`);
        continue;
      }
      const savedAt = checkpoint.event.type === 'artifact' ? (checkpoint.event.step ?? 0) : 0;
      const past = await env.waitForEvent(
        (e) => mine(e) && ((e.type === 'metrics' && e.step > savedAt) || e.type === 'stage.completed'),
        options.runTimeoutMs,
        checkpoint.index,
      );
      if (!past || past.event.type === 'stage.completed') {
        notes.push(`${stage.kind} of run ${run.id} ended before a kill could be made`);
        continue;
      }
      worker.child.kill('SIGKILL');
      await worker.exited;
      const killedAt = Date.now();
      kills++;
      killedIn[stage.kind] = (killedIn[stage.kind] ?? 0) + 1;
      const killedIndex = env.seen.length;
      worker = env.spawnWorker(`rescuer-${spawned++}`);
      const resumed = await env.waitForEvent(
        (e) => mine(e) && e.type === 'stage.started' && e.workerId === worker.workerId,
        options.runTimeoutMs,
        killedIndex,
      );
      const moved =
        resumed &&
        (await env.waitForEvent(
          (e) => mine(e) && (e.type === 'metrics' || e.type === 'stage.completed'),
          options.runTimeoutMs,
          resumed.index,
        ));
      if (moved) recoveries.push(moved.at - killedAt);
    }
    const done = await env.finished(run.id, options.runTimeoutMs);
    if (done) accounts.push(await accountRun(env, run.id));
    else {
      hangs++;
      notes.push(
        await hangNote(
          env,
          run.id,
          run.stages.map((st) => st.id),
          worker.output(),
        ),
      );
    }
    await env.closeWorkers();
    if (!done) break; // a hang: the next run would only wait behind it
  }
  notes.push(`kills per stage kind: ${JSON.stringify(killedIn)}`);
  const how =
    `SIGKILL of the worker process (real trainers, tiny model) once per stage, after a checkpoint newer than ` +
    `its resume point and a step past it; a new worker process started at once (lock ${FAST_LOCKS.lockDuration} ms, ` +
    `stall check ${FAST_LOCKS.stalledInterval} ms)`;
  return faultReport('worker kill -9', how, kills, accounts, hangs, recoveries, notes);
}

/** A stage of `runId` reporting metrics past `step`, seen after index `from`. */
const metricsAfter = (env: ChaosEnv, stageIds: string[], from: number, timeoutMs: number) =>
  env.waitForEvent((e) => stageIds.includes(e.stageId) && e.type === 'metrics', timeoutMs, from);

/** Waits until every metric reported so far for these stages is stored; returns when (Date.now()). */
async function backlogStored(env: ChaosEnv, stageIds: string[], timeoutMs: number): Promise<number | null> {
  const wanted = new Set<string>();
  for (const { event } of env.seen)
    if (event.type === 'metrics' && stageIds.includes(event.stageId))
      for (const name of Object.keys(event.values)) wanted.add(`${event.stageId} ${name} ${event.step}`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const rows = await env.app.services.prisma.metricPoint
      .findMany({ where: { stageId: { in: stageIds } }, select: { stageId: true, name: true, step: true } })
      .catch(() => null);
    if (rows) {
      const stored = new Set(rows.map((r) => `${r.stageId} ${r.name} ${r.step}`));
      if ([...wanted].every((k) => stored.has(k))) return Date.now();
    }
    await sleep(50);
  }
  return null;
}

export interface OutageOptions {
  trials: number;
  kinds: readonly StageKind[];
  /** How long the part stays down. */
  downMs: number;
  runTimeoutMs: number;
}

/**
 * A run with a worker process; mid-stage (once past a checkpoint) `fault` takes something down, `downMs` later
 * `repair` brings it back. Recovery: from the repair until every metric reported so far is stored.
 */
async function outage(
  env: ChaosEnv,
  name: string,
  how: string,
  options: OutageOptions,
  fault: () => Promise<void>,
  repair: () => Promise<void>,
): Promise<FaultReport> {
  const accounts: RunAccount[] = [];
  const recoveries: number[] = [];
  const notes: string[] = [];
  let hangs = 0;
  for (let trial = 0; trial < options.trials; trial++) {
    const run = await env.submit(options.kinds);
    const stageIds = run.stages.map((s) => s.id);
    const worker = env.spawnWorker(`worker-${name.replaceAll(' ', '-')}-${trial}`);
    const first = stageIds[0];
    const checkpoint = await env.waitForEvent(
      (e) => e.stageId === first && e.type === 'artifact' && e.kind === 'checkpoint',
      options.runTimeoutMs,
    );
    if (checkpoint) await metricsAfter(env, [first], checkpoint.index, options.runTimeoutMs);
    await fault();
    await sleep(options.downMs);
    await repair();
    const repairedAt = Date.now();
    const stored = await backlogStored(env, stageIds, options.runTimeoutMs);
    if (stored !== null) recoveries.push(stored - repairedAt);
    const done = await env.finished(run.id, options.runTimeoutMs);
    if (done) accounts.push(await accountRun(env, run.id));
    else {
      hangs++;
      notes.push(await hangNote(env, run.id, stageIds, worker.output()));
    }
    await env.closeWorkers();
    if (!done) break;
  }
  return faultReport(name, how, options.trials, accounts, hangs, recoveries, notes);
}

/** The API process closed mid-run and a new one started on the same database, Redis and artifacts. */
export function apiRestart(env: ChaosEnv, options: OutageOptions): Promise<FaultReport> {
  return outage(
    env,
    'API restart',
    `app.close() of the API (consumer stopped, HTTP closed) mid-stage, a new API process on the same database, Redis and artifact store ${options.downMs} ms later`,
    options,
    () => env.app.close(),
    async () => env.useApp(await env.api.restart()),
  );
}

/** Redis killed with SIGKILL and started empty (no persistence): stream, groups, queue and heartbeats gone. */
export function redisRestart(
  env: ChaosEnv,
  redis: { kill(): Promise<void>; start(): Promise<void> },
  options: OutageOptions,
): Promise<FaultReport> {
  return outage(
    env,
    'Redis restart',
    `kill -9 of the redis-server (no AOF, no RDB) mid-stage, started again empty ${options.downMs} ms later; ` +
      'API and worker reconnect on their own (reconciliation every 15 s re-queues the run)',
    options,
    () => redis.kill(),
    () => redis.start(),
  );
}

/** Postgres lost mid-run: a crash stop and a start of a private cluster, or (fallback) cut connections. */
export function postgresOutage(
  env: ChaosEnv,
  how: string,
  pg: { fault(): Promise<void>; repair(): Promise<void> },
  options: OutageOptions,
): Promise<FaultReport> {
  return outage(env, 'Postgres restart', how, options, pg.fault, pg.repair);
}
