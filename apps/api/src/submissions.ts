// Run submissions of a team coalesced into batches: the submissions that arrive while the team's previous
// batch is being written go in together, as one transaction (one commit, one flush to disk) and one
// admission pass, instead of one each. A burst of a team is written at the rate of its batches, and holds
// one database connection while it is, so other teams' requests do not queue behind it.
import type { ModelRecord, RunSpec } from '@rlhf/contracts';
import type { Team } from '@rlhf/db';
import { admitSafely } from './admission.js';
import { uuidv7 } from './ids.js';
import * as store from './run-store.js';
import type { RunView } from './schemas.js';
import type { Services } from './services.js';
import { runView } from './views.js';

/** A checked run spec to create. */
export interface Submission {
  spec: RunSpec;
  model: ModelRecord;
  idempotencyKey: string | undefined;
  extra: store.RunExtra;
}

/**
 * What became of a submission: its run created (`created`), or the run its idempotency key already names
 * (`spec`: that run's, for the caller to compare), or refused as the team's backlog is full.
 */
export type Outcome =
  | { run: RunView; created: boolean; spec: unknown }
  | { full: { waiting: number; limit: number } };

/** Runs a team may have waiting for admission (ApiOptions.maxWaitingRuns). */
export const DEFAULT_MAX_WAITING_RUNS = 1000;

/** Submissions written in one transaction at most (the rest wait for the next batch). */
const BATCH_MAX = 100;

interface Pending {
  team: Team;
  submission: Submission;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

const queues = new WeakMap<Services, Map<string, Pending[]>>();

/** Adds a submission to its team's next batch; resolves once the batch is committed and admitted. */
export function submit(s: Services, team: Team, submission: Submission): Promise<Outcome> {
  const teams = queues.get(s) ?? new Map<string, Pending[]>();
  queues.set(s, teams);
  const waiting = teams.get(team.id);
  return new Promise<Outcome>((resolve, reject) => {
    const pending = { team, submission, resolve, reject };
    if (waiting)
      waiting.push(pending); // a batch of this team is being written: the next one takes it
    else {
      teams.set(team.id, []);
      void drain(s, teams, team.id, [pending]);
    }
  });
}

// Writes batches of a team one after another until none is waiting.
async function drain(s: Services, teams: Map<string, Pending[]>, teamId: string, first: Pending[]) {
  let batch = first;
  while (batch.length > 0) {
    await settle(s, batch);
    const next = teams.get(teamId) ?? [];
    batch = next.splice(0, BATCH_MAX);
    if (batch.length === 0) teams.delete(teamId);
  }
}

// A batch that fails is written again one submission at a time: only the one at fault fails.
async function settle(s: Services, batch: Pending[]): Promise<void> {
  try {
    const outcomes = await write(s, batch);
    for (const [i, p] of batch.entries()) p.resolve(outcomes[i]);
  } catch (error) {
    if (batch.length === 1) batch[0].reject(error);
    else for (const p of batch) await settle(s, [p]);
  }
}

// One batch: replays of known idempotency keys, the backlog limit, one insert transaction, one admission pass.
async function write(s: Services, batch: Pending[]): Promise<Outcome[]> {
  const team = batch[batch.length - 1].team; // the latest read of its limits
  const keyOf = (i: number) => batch[i].submission.idempotencyKey;
  const keys = [...new Set(batch.flatMap((_, i) => keyOf(i) ?? []))];
  const existing = new Map(
    (await store.runsByIdempotencyKeys(s.prisma, team.id, keys)).map((r) => [r.idempotencyKey, r]),
  );
  // The first submission of each new key is written; later ones with that key in this batch replay it.
  const firstOfKey = new Map<string, number>();
  const toWrite: number[] = [];
  batch.forEach((_, i) => {
    const key = keyOf(i);
    if (key !== undefined && (existing.has(key) || firstOfKey.has(key))) return;
    if (key !== undefined) firstOfKey.set(key, i);
    toWrite.push(i);
  });
  const limit = s.options.maxWaitingRuns ?? DEFAULT_MAX_WAITING_RUNS;
  const waiting = toWrite.length === 0 ? 0 : await store.waitingRuns(s.prisma, team.id);
  const room = Math.max(0, limit - waiting);
  // uuid v7 in arrival order: admission takes the oldest first
  const ids = toWrite.map(() => uuidv7()).sort();
  const written = toWrite.slice(0, room);
  const inserted = await store.insertRuns(
    s.prisma,
    team.id,
    written.map((i, n) => ({ id: ids[n], ...batch[i].submission })),
  );
  s.metrics.runsCreated.inc(inserted.length);
  const byId = new Map(inserted.map((r) => [r.id, r]));
  // Another API process wrote a key meanwhile: its run is the one the key names.
  const lost = written.flatMap((i, n) => (byId.has(ids[n]) ? [] : [keyOf(i) as string]));
  for (const row of await store.runsByIdempotencyKeys(s.prisma, team.id, lost))
    existing.set(row.idempotencyKey, row);
  const admitted = new Set(inserted.length > 0 ? await admitSafely(s, team) : []);
  // Views: a new run not admitted is the row just written; admitted and earlier runs are read again.
  const reread = [...existing.values()].map((r) => r.id).concat([...admitted].filter((id) => byId.has(id)));
  const views = new Map((await viewsOf(s, team.id, reread)).map((v) => [v.id, v]));
  const runOf = new Map<number, { run: RunView; created: boolean; spec: unknown }>();
  written.forEach((i, n) => {
    const row = byId.get(ids[n]);
    if (row) runOf.set(i, { run: views.get(row.id) ?? runView(row), created: true, spec: row.spec });
  });
  return batch.map((_, i): Outcome => {
    const mine = runOf.get(i);
    if (mine) return mine;
    const key = keyOf(i);
    const known = key === undefined ? undefined : existing.get(key);
    if (known) return { run: views.get(known.id) as RunView, created: false, spec: known.spec };
    const first = key === undefined ? undefined : runOf.get(firstOfKey.get(key) as number);
    if (first) return { ...first, created: false };
    return { full: { waiting: waiting + written.length, limit } };
  });
}

async function viewsOf(s: Services, teamId: string, ids: string[]): Promise<RunView[]> {
  if (ids.length === 0) return [];
  const runs = await store.findRuns(s.prisma, teamId, ids);
  const latest = await store.latestMetrics(
    s.prisma,
    runs.flatMap((r) => r.stages.map((st) => st.id)),
  );
  return runs.map((run) => runView(run, latest));
}
