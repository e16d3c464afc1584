// A checkpoint write that hits a full or read-only artifact store mid-stage (issue 18 item 9): the stage waits,
// cleans the checkpoint cut short and resumes from the newest complete one once the store takes writes again.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type ArtifactFs, createArtifactStore, listCheckpoints } from '@rlhf/artifacts';
import type { StageJobData } from '@rlhf/contracts';
import { keys } from '@rlhf/queue';
import * as fs from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createHarness, type Harness, linearRun } from './testing/harness.js';
import { fromSafetensors, linearRunner } from './testing/linear-runner.js';

let h: Harness;
beforeAll(async () => {
  h = await createHarness('store-faults');
});
afterEach(() => h.closeWorkers());
afterAll(() => h.close());

const TRAINING = { maxSteps: 60, stepsPerCall: 5, checkpointEvery: 10 };
const runners = { sft: linearRunner({ delayMs: 40 }) };

const fault = (code: 'ENOSPC' | 'EROFS', path: string) =>
  Object.assign(new Error(`${code}: injected, write '${path}'`), { code });

/**
 * The store's writes under checkpoints/ fail with `code` while `broken`, after `letThrough` more of them
 * succeed (so the save is cut short after its first file, leaving a partial checkpoint directory).
 */
function faultyDisk(code: 'ENOSPC' | 'EROFS') {
  const state = { broken: false, letThrough: 0, refused: 0 };
  const refuse = (path: unknown) => {
    if (!state.broken || !String(path).includes('/checkpoints/')) return false;
    if (state.letThrough > 0) {
      state.letThrough--;
      return false;
    }
    state.refused++;
    return true;
  };
  const writeFile: ArtifactFs['writeFile'] = async (path, ...rest) => {
    if (refuse(path)) throw fault(code, String(path));
    return fs.writeFile(path, ...rest);
  };
  const rename: ArtifactFs['rename'] = async (from, to) => {
    if (code === 'EROFS' && refuse(to)) throw fault(code, String(to));
    return fs.rename(from, to);
  };
  return { state, fs: { writeFile, rename } satisfies Partial<ArtifactFs> };
}

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String);
}

async function finalWeights(stage: StageJobData): Promise<number[]> {
  const artifacts = createArtifactStore(h.artifactDir);
  const key = `${keys.finalDir(stage.runId, stage.stageId)}/model.safetensors`;
  const model = fromSafetensors(await artifacts.get(key));
  return [...model.get('w')!, ...model.get('b')!].map(Number);
}

describe('a full or read-only artifact store during a checkpoint write', () => {
  test('ENOSPC mid-checkpoint: the stage waits, cleans up, resumes once space is back and ends as an uninterrupted run', async () => {
    const disk = faultyDisk('ENOSPC');
    const [sft] = linearRun(['sft'], TRAINING);
    await h.startWorker(runners, { artifactFs: disk.fs, storeRetryDelaysMs: [300, 300, 300, 300] });
    await h.addRun([sft]);
    await h.waitFor('artifact', sft.stageId, (e) => e.kind === 'checkpoint' && (e.step ?? 0) >= 20);
    Object.assign(disk.state, { broken: true, letThrough: 2 }); // the next save writes one file and its sidecar
    // The space stays short across two waits, then comes back.
    const refusedAt = Date.now();
    while (disk.state.refused < 2 && Date.now() - refusedAt < 20_000)
      await new Promise((r) => setTimeout(r, 20));
    expect(disk.state.refused).toBeGreaterThanOrEqual(2);
    disk.state.broken = false;

    const completed = await h.waitFor('stage.completed', sft.stageId);
    expect(completed.result.step).toBe(60);
    const events = h.stageEvents(sft.stageId);
    expect(events.some((e) => e.type === 'stage.failed')).toBe(false);
    const starts = events.flatMap((e) => (e.type === 'stage.started' ? [e] : []));
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(starts.every((e) => e.attempt === 1)).toBe(true); // a store fault uses no attempt
    const resumed = starts.at(-1)!;
    expect(resumed.resumedFromStep).toBeGreaterThanOrEqual(20);
    expect(resumed.resumedFromStep! % 10).toBe(0);

    // Nothing left behind: no temporary file, no checkpoint directory without state.json.
    const left = await filesUnder(h.artifactDir);
    expect(left.filter((f) => f.split('/').at(-1)!.startsWith('.tmp-'))).toEqual([]);
    const stageDir = join(h.artifactDir, 'runs', sft.runId, sft.stageId, 'checkpoints');
    const complete = await listCheckpoints(createArtifactStore(h.artifactDir), sft);
    expect((await readdir(stageDir)).sort()).toEqual(complete.map((s) => `step-${s}`).sort());

    // Resumed training ends exactly where training without the fault ends.
    const [reference] = linearRun(['sft'], TRAINING);
    await h.addRun([reference]);
    await h.waitFor('stage.completed', reference.stageId);
    const [got, expected] = [await finalWeights(sft), await finalWeights(reference)];
    expect(Math.max(...got.map((w, i) => Math.abs(w - expected[i])))).toBeLessThan(1e-6);
  });

  test('a store that stays read-only fails the stage with its error once the waits are used up', async () => {
    const disk = faultyDisk('EROFS');
    const [sft] = linearRun(['sft'], TRAINING);
    await h.startWorker(runners, { artifactFs: disk.fs, storeRetryDelaysMs: [100, 100] });
    await h.addRun([sft]);
    await h.waitFor('artifact', sft.stageId, (e) => e.kind === 'checkpoint' && (e.step ?? 0) >= 10);
    disk.state.broken = true;
    const failed = await h.waitFor('stage.failed', sft.stageId);
    expect(failed.error).toMatch(/^EROFS: injected/);
    expect(failed.willRetry).toBe(false);
    // Two waits, three tries in all: each try resumed from the checkpoint the store still held.
    const starts = h.stageEvents(sft.stageId).filter((e) => e.type === 'stage.started');
    expect(starts).toHaveLength(3);
  });
});
