import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ArtifactStore, createArtifactStore } from '@rlhf/artifacts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  latestCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  readCheckpointFile,
  saveCheckpoint,
} from './checkpoints.js';
import { keys } from './keys.js';

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
      await saveCheckpoint(
        artifacts,
        stage,
        step,
        { 'model.safetensors': weights.map((b) => b * step) },
        { step, rng: [step] },
      );
    }
    // A checkpoint cut short by a crash (files, no state.json) is not a checkpoint.
    await artifacts.put(`${keys.checkpointDir('run1', 'st1', 20)}/model.safetensors`, weights);
    expect(await listCheckpoints(artifacts, stage)).toEqual([5, 10, 15]);

    const latest = await latestCheckpoint(artifacts, stage);
    expect(latest).toMatchObject({
      step: 15,
      dir: keys.checkpointDir('run1', 'st1', 15),
      state: { step: 15, rng: [15] },
    });
    expect(latest?.files['model.safetensors'].bytes).toBe(4);
    expect(await readCheckpointFile(artifacts, latest!, 'model.safetensors')).toEqual(
      weights.map((b) => b * 15),
    );
    await expect(readCheckpointFile(artifacts, latest!, 'optimizer.safetensors')).rejects.toThrow(/no file/);

    await pruneCheckpoints(artifacts, stage, 2);
    expect(await listCheckpoints(artifacts, stage)).toEqual([10, 15]);
    expect(await artifacts.exists(`${keys.checkpointDir('run1', 'st1', 5)}/model.safetensors`)).toBe(false);
    // The incomplete step-20 is newer than every kept checkpoint: left for the run that may still write it.
    expect(await artifacts.exists(`${keys.checkpointDir('run1', 'st1', 20)}/model.safetensors`)).toBe(true);
  });

  test('state.json is reserved and steps are integers', async () => {
    await expect(saveCheckpoint(artifacts, stage, 1, { 'state.json': '{}' })).rejects.toThrow(/reserved/);
    await expect(saveCheckpoint(artifacts, stage, 1.5, {})).rejects.toThrow(/integer/);
  });
});
