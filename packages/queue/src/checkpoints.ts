import type { ArtifactInfo, ArtifactStore } from '@rlhf/artifacts';
import { keys } from './keys.js';

// A checkpoint is a directory runs/{runId}/{stageId}/checkpoints/step-{n}/ holding the runner's files
// (weights, optimizer moments as safetensors) and state.json, written last: a directory without state.json is
// a checkpoint cut short by a crash and is ignored.

export const CHECKPOINT_STATE_FILE = 'state.json';

export interface Checkpoint {
  step: number;
  /** Artifact key of the directory. */
  dir: string;
  /** What the runner saved beside the files: optimizer step, RNG state, data position, schedules. */
  state: Record<string, unknown>;
  /** File name -> size and sha256 at save time. */
  files: Record<string, { bytes: number; sha256?: string }>;
  savedAt: string;
}

export type CheckpointFiles = Record<string, Uint8Array | string>;

interface StageRef {
  runId: string;
  stageId: string;
}

/** Writes the files, then state.json; returns the checkpoint. Overwrites a checkpoint of the same step. */
export async function saveCheckpoint(
  artifacts: ArtifactStore,
  stage: StageRef,
  step: number,
  files: CheckpointFiles,
  state: Record<string, unknown> = {},
): Promise<Checkpoint> {
  if (!Number.isInteger(step) || step < 0)
    throw new Error(`checkpoint step must be an integer >= 0, got ${step}`);
  if (CHECKPOINT_STATE_FILE in files)
    throw new Error(`${CHECKPOINT_STATE_FILE} is reserved for the checkpoint state`);
  const dir = keys.checkpointDir(stage.runId, stage.stageId, step);
  await artifacts.delete(`${dir}/${CHECKPOINT_STATE_FILE}`); // incomplete until the new state.json lands
  const written: Checkpoint['files'] = {};
  for (const [name, data] of Object.entries(files)) {
    const info: ArtifactInfo = await artifacts.put(`${dir}/${name}`, data);
    written[name] = { bytes: info.bytes, ...(info.sha256 ? { sha256: info.sha256 } : {}) };
  }
  const checkpoint: Checkpoint = { step, dir, state, files: written, savedAt: new Date().toISOString() };
  await artifacts.put(`${dir}/${CHECKPOINT_STATE_FILE}`, JSON.stringify(checkpoint));
  return checkpoint;
}

/** Steps of the complete checkpoints of a stage, ascending. */
export async function listCheckpoints(artifacts: ArtifactStore, stage: StageRef): Promise<number[]> {
  const base = keys.checkpointsDir(stage.runId, stage.stageId);
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
  const dir = keys.checkpointDir(stage.runId, stage.stageId, step);
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
  const base = keys.checkpointsDir(stage.runId, stage.stageId);
  const dirs = new Set((await artifacts.list(base)).map((key) => key.slice(base.length + 1).split('/')[0]));
  for (const dir of dirs) {
    const step = Number(/^step-(\d+)$/.exec(dir)?.[1] ?? Number.NaN);
    if (step < oldestKept) await artifacts.delete(`${base}/${dir}`);
  }
}
