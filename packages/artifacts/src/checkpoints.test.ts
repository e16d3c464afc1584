import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  checkpointDir,
  checkpointStore,
  latestCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  readCheckpointFile,
  saveCheckpoint,
} from './checkpoints.js';
import { type ArtifactStore, createArtifactStore } from './store.js';

let dir: string;
let artifacts: ArtifactStore;
const stage = { runId: 'run1', stageId: 'st1' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
  artifacts = createArtifactStore(dir);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('checkpoints', () => {
  test('save, find the newest, read back, prune', async () => {
    expect(await latestCheckpoint(artifacts, stage)).toBeNull();
    const weights = new Uint8Array([1, 2, 3, 4]);
    for (const step of [5, 10, 15]) {
      await saveCheckpoint(artifacts, stage, step, { 'model.safetensors': weights.map((b) => b * step) });
    }
    // A checkpoint cut short by a crash (files, no state.json) is not a checkpoint.
    await artifacts.put(`${checkpointDir(stage, 20)}/model.safetensors`, weights);
    expect(await listCheckpoints(artifacts, stage)).toEqual([5, 10, 15]);

    const latest = await latestCheckpoint(artifacts, stage);
    expect(latest).toMatchObject({
      step: 15,
      dir: checkpointDir(stage, 15),
    });
    expect(latest?.files['model.safetensors'].bytes).toBe(4);
    expect(await readCheckpointFile(artifacts, latest!, 'model.safetensors')).toEqual(
      weights.map((b) => b * 15),
    );
    await expect(readCheckpointFile(artifacts, latest!, 'optimizer.safetensors')).rejects.toThrow(/no file/);

    await pruneCheckpoints(artifacts, stage, 2);
    expect(await listCheckpoints(artifacts, stage)).toEqual([10, 15]);
    expect(await artifacts.exists(`${checkpointDir(stage, 5)}/model.safetensors`)).toBe(false);
    // The incomplete step-20 is newer than every kept checkpoint: left for the run that may still write it.
    expect(await artifacts.exists(`${checkpointDir(stage, 20)}/model.safetensors`)).toBe(true);
  });

  test('state.json is reserved and steps are integers', async () => {
    await expect(saveCheckpoint(artifacts, stage, 1, { 'state.json': '{}' })).rejects.toThrow(/reserved/);
    await expect(saveCheckpoint(artifacts, stage, 1.5, {})).rejects.toThrow(/integer/);
  });

  test('checkpointStore: latest() returns the newest files, each save reported, the newest `keep` kept', async () => {
    const other = { runId: 'run1', stageId: 'st2' };
    const reported: number[] = [];
    const store = checkpointStore(artifacts, other, {
      keep: 2,
      onSaved: async (checkpoint) => {
        reported.push(checkpoint.step);
      },
    });
    expect(await store.latest()).toBeNull();
    for (const step of [1, 2, 3])
      await store.save(step, { 'a.bin': Uint8Array.of(step), 'b.json': Uint8Array.of(9) });
    expect(reported).toEqual([1, 2, 3]);
    expect(await listCheckpoints(artifacts, other)).toEqual([2, 3]);
    expect(await store.latest()).toEqual({
      step: 3,
      files: { 'a.bin': Uint8Array.of(3), 'b.json': Uint8Array.of(9) },
    });
  });
});
