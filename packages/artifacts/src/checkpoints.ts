import { readdir } from 'node:fs/promises';
import type { ArtifactInfo, ArtifactStore } from './store.js';

// A stage's checkpoints in the artifact store: runs/{runId}/{stageId}/checkpoints/step-{n}/ holding the stage's
// files (weights, optimizer moments, trainer.json) and state.json, written last: a directory without state.json
// is a checkpoint cut short by a crash and is ignored. checkpointStore is the stage-kit CheckpointStore on it.

export const CHECKPOINT_STATE_FILE = 'state.json';

export interface Checkpoint {
  step: number;
  /** Artifact key of the directory. */
  dir: string;
  /** File name -> size and sha256 at save time. */
  files: Record<string, { bytes: number; sha256?: string }>;
  savedAt: string;
}

export type CheckpointFiles = Record<string, Uint8Array | string>;

export interface StageRef {
  runId: string;
  stageId: string;
}

/** Parent of every `step-{n}` checkpoint of a stage. */
export const checkpointsDir = (stage: StageRef) => `runs/${stage.runId}/${stage.stageId}/checkpoints`;
export const checkpointDir = (stage: StageRef, step: number) => `${checkpointsDir(stage)}/step-${step}`;

/** Writes the files, then state.json; returns the checkpoint. Overwrites a checkpoint of the same step. */
export async function saveCheckpoint(
  artifacts: ArtifactStore,
  stage: StageRef,
  step: number,
  files: CheckpointFiles,
): Promise<Checkpoint> {
  if (!Number.isInteger(step) || step < 0)
    throw new Error(`checkpoint step must be an integer >= 0, got ${step}`);
  if (CHECKPOINT_STATE_FILE in files)
    throw new Error(`${CHECKPOINT_STATE_FILE} is reserved for the checkpoint state`);
  const dir = checkpointDir(stage, step);
  await artifacts.delete(`${dir}/${CHECKPOINT_STATE_FILE}`); // incomplete until the new state.json lands
  const written: Checkpoint['files'] = {};
  for (const [name, data] of Object.entries(files)) {
    const info: ArtifactInfo = await artifacts.put(`${dir}/${name}`, data);
    written[name] = { bytes: info.bytes, ...(info.sha256 ? { sha256: info.sha256 } : {}) };
  }
  const checkpoint: Checkpoint = { step, dir, files: written, savedAt: new Date().toISOString() };
  await artifacts.put(`${dir}/${CHECKPOINT_STATE_FILE}`, JSON.stringify(checkpoint));
  return checkpoint;
}

/** Steps of the complete checkpoints of a stage, ascending. */
export async function listCheckpoints(artifacts: ArtifactStore, stage: StageRef): Promise<number[]> {
  const base = checkpointsDir(stage);
  const steps: number[] = [];
  for (const key of await artifacts.list(base)) {
    const match = /^step-(\d+)\/state\.json$/.exec(key.slice(base.length + 1));
    if (match) steps.push(Number(match[1]));
  }
  return steps.sort((a, b) => a - b);
}

export async function loadCheckpoint(
  artifacts: ArtifactStore,
  stage: StageRef,
  step: number,
): Promise<Checkpoint> {
  const dir = checkpointDir(stage, step);
  return JSON.parse(await artifacts.getText(`${dir}/${CHECKPOINT_STATE_FILE}`)) as Checkpoint;
}

/** The newest complete checkpoint, or null: where a re-taken job resumes. */
export async function latestCheckpoint(
  artifacts: ArtifactStore,
  stage: StageRef,
): Promise<Checkpoint | null> {
  const steps = await listCheckpoints(artifacts, stage);
  return steps.length === 0 ? null : loadCheckpoint(artifacts, stage, steps[steps.length - 1]);
}

export async function readCheckpointFile(
  artifacts: ArtifactStore,
  checkpoint: Checkpoint,
  name: string,
): Promise<Uint8Array> {
  if (!(name in checkpoint.files)) throw new Error(`checkpoint ${checkpoint.dir} has no file '${name}'`);
  return artifacts.get(`${checkpoint.dir}/${name}`);
}

/** Deletes all but the newest `keep` complete checkpoints (and any incomplete one older than them). */
export async function pruneCheckpoints(
  artifacts: ArtifactStore,
  stage: StageRef,
  keep: number,
): Promise<void> {
  const steps = await listCheckpoints(artifacts, stage);
  const kept = steps.slice(Math.max(0, steps.length - keep));
  const oldestKept = kept[0] ?? Number.POSITIVE_INFINITY;
  const base = checkpointsDir(stage);
  const dirs = new Set((await artifacts.list(base)).map((key) => key.slice(base.length + 1).split('/')[0]));
  for (const dir of dirs) {
    const step = Number(/^step-(\d+)$/.exec(dir)?.[1] ?? Number.NaN);
    if (step < oldestKept) await artifacts.delete(`${base}/${dir}`);
  }
}

/**
 * Deletes every checkpoint directory without state.json (a save cut short by a crash or a full disk), with the
 * files and temporary files in it; returns the steps removed. Complete checkpoints are left alone.
 */
export async function removeIncompleteCheckpoints(
  artifacts: ArtifactStore,
  stage: StageRef,
): Promise<number[]> {
  const base = checkpointsDir(stage);
  const complete = new Set(await listCheckpoints(artifacts, stage));
  const removed: number[] = [];
  let dirs: string[] = [];
  try {
    dirs = await readdir(artifacts.path(base));
  } catch {
    return removed; // no checkpoint yet
  }
  for (const dir of dirs) {
    const step = Number(/^step-(\d+)$/.exec(dir)?.[1] ?? Number.NaN);
    if (Number.isNaN(step) || complete.has(step)) continue;
    await artifacts.delete(`${base}/${dir}`);
    removed.push(step);
  }
  return removed.sort((a, b) => a - b);
}

export interface CheckpointStoreOptions {
  /** Checkpoints kept, newest first (default 2). */
  keep?: number;
  /** Called after each save (e.g. to report the checkpoint as an artifact). */
  onSaved?(checkpoint: Checkpoint): Promise<void>;
}

/** A stage's checkpoints as a stage-kit CheckpointStore: save(step, files) and latest(). */
export function checkpointStore(
  artifacts: ArtifactStore,
  stage: StageRef,
  options: CheckpointStoreOptions = {},
) {
  const keep = options.keep ?? 2;
  return {
    async save(step: number, files: Record<string, Uint8Array>): Promise<void> {
      const checkpoint = await saveCheckpoint(artifacts, stage, step, files);
      await options.onSaved?.(checkpoint);
      await pruneCheckpoints(artifacts, stage, keep);
    },
    async latest(): Promise<{ step: number; files: Record<string, Uint8Array> } | null> {
      const checkpoint = await latestCheckpoint(artifacts, stage);
      if (!checkpoint) return null;
      const files: Record<string, Uint8Array> = {};
      for (const name of Object.keys(checkpoint.files))
        files[name] = await readCheckpointFile(artifacts, checkpoint, name);
      return { step: checkpoint.step, files };
    },
  };
}
