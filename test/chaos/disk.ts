// Disk faults during a checkpoint write: the artifact store on a tiny tmpfs that is filled (ENOSPC) or
// remounted read-only (EROFS) mid-stage, or, where no tmpfs can be mounted, the same errors injected through
// the store's file system hook. The worker runs in this process so the hook can see (or raise) them.
import { readdir } from 'node:fs/promises';
import * as fs from 'node:fs/promises';
import type { ArtifactFs } from '@rlhf/artifacts';
import { type ChaosEnv, sleep } from './env.js';
import { accountRun, type FaultReport, faultReport, type RunAccount } from './measure.js';
import type { tmpfsDisk } from './servers.js';

export type DiskMode = 'full' | 'read-only';

export interface DiskControl {
  how: string;
  /** The worker's store file system: counts the write errors it sees (and raises them when injected). */
  fs: Partial<ArtifactFs>;
  faultsSeen(): number;
  breakDisk(): Promise<void>;
  repair(): Promise<void>;
}

const WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

/** Counts store writes that fail with ENOSPC/EDQUOT/EROFS; `inject` makes them fail while it says so. */
function watchedFs(inject: () => NodeJS.ErrnoException | null) {
  let seen = 0;
  const watch = async <T>(write: () => Promise<T>): Promise<T> => {
    const injected = inject();
    try {
      if (injected) throw injected;
      return await write();
    } catch (error) {
      if (WRITE_ERRORS.has((error as NodeJS.ErrnoException).code ?? '')) seen++;
      throw error;
    }
  };
  const hook: Partial<ArtifactFs> = {
    writeFile: (path, ...rest) => watch(() => fs.writeFile(path, ...rest)),
    mkdir: ((path: Parameters<ArtifactFs['mkdir']>[0], options?: Parameters<ArtifactFs['mkdir']>[1]) =>
      watch(() => fs.mkdir(path, options))) as ArtifactFs['mkdir'],
    rename: (from, to) => watch(() => fs.rename(from, to)),
  };
  return { hook, seen: () => seen };
}

/** Real faults: the store on a tmpfs that is filled or remounted read-only. */
export function tmpfsControl(disk: ReturnType<typeof tmpfsDisk>, mode: DiskMode): DiskControl {
  const watched = watchedFs(() => null);
  return {
    how:
      mode === 'full'
        ? 'artifact store on a 32 MiB tmpfs, filled with dd to ENOSPC mid-stage, the filler deleted later'
        : 'artifact store on a 32 MiB tmpfs, `mount -o remount,ro` mid-stage, `remount,rw` later',
    fs: watched.hook,
    faultsSeen: watched.seen,
    breakDisk: async () => (mode === 'full' ? disk.fill() : disk.readOnly()),
    repair: async () => (mode === 'full' ? disk.free() : disk.writable()),
  };
}

/** Injected faults: every store write fails with ENOSPC or EROFS while broken. */
export function injectedControl(mode: DiskMode): DiskControl {
  let broken = false;
  const code = mode === 'full' ? 'ENOSPC' : 'EROFS';
  const watched = watchedFs(() =>
    broken ? Object.assign(new Error(`${code}: injected by the chaos suite`), { code }) : null,
  );
  return {
    how: `every artifact store write fails with ${code} (the store's fs hook; no tmpfs could be mounted) mid-stage, until repaired`,
    fs: watched.hook,
    faultsSeen: watched.seen,
    breakDisk: async () => {
      broken = true;
    },
    repair: async () => {
      broken = false;
    },
  };
}

async function leftovers(dir: string): Promise<{ tmpFiles: number; incompleteCheckpoints: number }> {
  const names = (await readdir(dir, { recursive: true })).map(String);
  const tmpFiles = names.filter((n) => n.split('/').at(-1)?.startsWith('.tmp-')).length;
  const stepDirs = names.filter((n) => /\/checkpoints\/step-\d+$/.test(n));
  const complete = new Set(names.filter((n) => n.endsWith('/state.json')).map((n) => n.slice(0, -11)));
  return { tmpFiles, incompleteCheckpoints: stepDirs.filter((d) => !complete.has(d)).length };
}

export interface DiskOptions {
  trials: number;
  /** How long the disk stays full or read-only after the first refused write. */
  downMs: number;
  runTimeoutMs: number;
  /** The worker's waits between tries (short, so a trial takes seconds). */
  retryDelaysMs: readonly number[];
}

/** An SFT run whose checkpoint write hits the fault; the stage must wait it out and finish. */
export async function diskFault(
  env: ChaosEnv,
  mode: DiskMode,
  disk: DiskControl,
  options: DiskOptions,
): Promise<FaultReport & { tmpFilesLeft: number; incompleteCheckpointsLeft: number }> {
  const accounts: RunAccount[] = [];
  const recoveries: number[] = [];
  const notes: string[] = [];
  let hangs = 0;
  await env.startWorker(`disk-${mode}`, { artifactFs: disk.fs, storeRetryDelaysMs: options.retryDelaysMs });
  for (let trial = 0; trial < options.trials; trial++) {
    const run = await env.submit(['sft']);
    const sft = run.stages[0].id;
    const checkpoint = await env.waitForEvent(
      (e) => e.stageId === sft && e.type === 'artifact' && e.kind === 'checkpoint',
      options.runTimeoutMs,
    );
    if (checkpoint)
      await env.waitForEvent(
        (e) => e.stageId === sft && e.type === 'metrics',
        options.runTimeoutMs,
        checkpoint.index,
      );
    const before = disk.faultsSeen();
    await disk.breakDisk();
    const deadline = Date.now() + options.runTimeoutMs;
    while (disk.faultsSeen() === before && Date.now() < deadline) await sleep(20);
    if (disk.faultsSeen() === before) notes.push(`trial ${trial}: no write was refused`);
    await sleep(options.downMs);
    await disk.repair();
    const repairedAt = Date.now();
    const from = env.seen.length;
    const resumed = await env.waitForEvent(
      (e) =>
        e.stageId === sft &&
        (e.type === 'stage.started' || e.type === 'stage.completed' || e.type === 'stage.failed'),
      options.runTimeoutMs,
      from,
    );
    const moved =
      resumed?.event.type !== 'stage.failed' &&
      resumed &&
      (await env.waitForEvent(
        (e) => e.stageId === sft && (e.type === 'metrics' || e.type === 'stage.completed'),
        options.runTimeoutMs,
        resumed.index,
      ));
    if (moved) recoveries.push(moved.at - repairedAt);
    const done = await env.finished(run.id, options.runTimeoutMs);
    if (done) accounts.push(await accountRun(env, run.id));
    else hangs++;
    if (!done) break;
  }
  await env.closeWorkers();
  const left = await leftovers(env.api.artifactDir);
  const report = faultReport(`disk ${mode}`, disk.how, options.trials, accounts, hangs, recoveries, notes);
  return { ...report, tmpFilesLeft: left.tmpFiles, incompleteCheckpointsLeft: left.incompleteCheckpoints };
}
