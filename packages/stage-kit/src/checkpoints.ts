// Checkpoint stores: a checkpoint is a set of named files saved at an optimizer step; a stage resumes from the
// latest one. The worker adapts its artifact store to CheckpointStore; directoryCheckpointStore is the local one.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** File name -> bytes. Names are plain file names (no '/', no '..'). */
export type CheckpointFiles = Record<string, Uint8Array>;

export interface CheckpointStore {
  /** Atomic: a checkpoint is visible whole or not at all. Saving a step again replaces it. */
  save(step: number, files: CheckpointFiles): Promise<void>;
  /** The checkpoint with the highest step saved, or null when there is none. */
  latest(): Promise<{ step: number; files: CheckpointFiles } | null>;
}

const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Throws unless every name is a plain file name (checkpoint files end up as files or object keys). */
export function checkFileNames(files: CheckpointFiles): void {
  for (const name of Object.keys(files))
    if (!SAFE_NAME.test(name) || name.includes('..'))
      throw new Error(`checkpoint file name ${JSON.stringify(name)} is not a plain file name`);
}

export interface DirectoryStoreOptions {
  /** How many checkpoints to keep, newest first (default 2: a crash while saving still leaves a good one). */
  keep?: number;
}

/**
 * Checkpoints as `dir/step-N/` folders and a `LATEST` file naming the newest step. A folder is written under a
 * temporary name and renamed into place, then LATEST is replaced (write + rename): readers never see a half one.
 */
export function directoryCheckpointStore(dir: string, options: DirectoryStoreOptions = {}): CheckpointStore {
  const keep = options.keep ?? 2;
  if (!Number.isInteger(keep) || keep < 1)
    throw new Error(`directoryCheckpointStore: keep must be >= 1, got ${keep}`);
  const latestFile = join(dir, 'LATEST');
  const stepDir = (step: number) => join(dir, `step-${step}`);

  async function savedSteps(): Promise<number[]> {
    if (!existsSync(dir)) return [];
    return (await readdir(dir))
      .map((name) => /^step-(\d+)$/.exec(name))
      .filter((m) => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  return {
    async save(step, files) {
      if (!Number.isSafeInteger(step) || step < 0)
        throw new Error(`checkpoint step must be >= 0, got ${step}`);
      checkFileNames(files);
      await mkdir(dir, { recursive: true });
      const tmp = join(dir, `.tmp-step-${step}-${process.pid}-${Date.now()}`);
      await mkdir(tmp);
      for (const [name, bytes] of Object.entries(files)) await writeFile(join(tmp, name), bytes);
      await rm(stepDir(step), { recursive: true, force: true });
      await rename(tmp, stepDir(step));
      const marker = `${latestFile}.tmp-${process.pid}`;
      await writeFile(marker, `${step}\n`);
      await rename(marker, latestFile);
      const old = (await savedSteps())
        .filter((s) => s !== step)
        .reverse()
        .slice(keep - 1);
      for (const s of old) await rm(stepDir(s), { recursive: true, force: true });
    },
    async latest() {
      if (!existsSync(latestFile)) return null;
      const step = Number((await readFile(latestFile, 'utf8')).trim());
      if (!Number.isSafeInteger(step)) throw new Error(`${latestFile}: not a step number`);
      const folder = stepDir(step);
      if (!existsSync(folder)) throw new Error(`${latestFile} names step ${step}, but ${folder} is missing`);
      const files: CheckpointFiles = {};
      for (const name of await readdir(folder))
        files[name] = new Uint8Array(await readFile(join(folder, name)));
      return { step, files };
    },
  };
}
