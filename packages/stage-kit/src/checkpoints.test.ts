import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { directoryCheckpointStore } from './checkpoints.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stage-kit-store-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array | undefined) => new TextDecoder().decode(data);

describe('directoryCheckpointStore', () => {
  test('latest is null before the first save, then the newest checkpoint with all its files', async () => {
    const store = directoryCheckpointStore(join(dir, 'ckpt'));
    expect(await store.latest()).toBeNull();
    await store.save(8, { 'a.json': bytes('eight'), 'b.bin': Uint8Array.of(1, 2, 3) });
    await store.save(16, { 'a.json': bytes('sixteen'), 'b.bin': Uint8Array.of(4) });
    const latest = await store.latest();
    expect(latest?.step).toBe(16);
    expect(text(latest?.files['a.json'])).toBe('sixteen');
    expect(Array.from(latest?.files['b.bin'] ?? [])).toEqual([4]);
  });

  test('a second store on the same folder sees the checkpoints (resume after a restart)', async () => {
    await directoryCheckpointStore(dir).save(3, { 'x.txt': bytes('three') });
    const again = await directoryCheckpointStore(dir).latest();
    expect(again?.step).toBe(3);
    expect(text(again?.files['x.txt'])).toBe('three');
  });

  test('keeps only the newest `keep` checkpoints and no temporary folders', async () => {
    const store = directoryCheckpointStore(dir, { keep: 2 });
    for (const step of [1, 2, 3, 4]) await store.save(step, { 'f.txt': bytes(`${step}`) });
    expect((await readdir(dir)).sort()).toEqual(['LATEST', 'step-3', 'step-4']);
  });

  test('saving a step again replaces it whole', async () => {
    const store = directoryCheckpointStore(dir);
    await store.save(5, { 'old.txt': bytes('old') });
    await store.save(5, { 'new.txt': bytes('new') });
    const latest = await store.latest();
    expect(Object.keys(latest?.files ?? {})).toEqual(['new.txt']);
    expect(existsSync(join(dir, 'step-5', 'old.txt'))).toBe(false);
  });

  test('rejects file names that are paths', async () => {
    const store = directoryCheckpointStore(dir);
    await expect(store.save(1, { '../evil': bytes('x') })).rejects.toThrow(/not a plain file name/);
    await expect(store.save(1, { 'a/b': bytes('x') })).rejects.toThrow(/not a plain file name/);
    expect(await store.latest()).toBeNull();
  });
});
