import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { type ArtifactStore, assertSafeKey, createArtifactStore } from './store.js';

let dir: string;
let store: ArtifactStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'artifacts-'));
  store = createArtifactStore(dir);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

test('put/get round trip with sha256 and listing by prefix', async () => {
  const info = await store.put('runs/r1/sft/step-10/model.safetensors', new Uint8Array([1, 2, 3]));
  expect(info).toEqual({
    key: 'runs/r1/sft/step-10/model.safetensors',
    bytes: 3,
    sha256: '039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81',
  });
  await store.put('runs/r1/sft/step-20/model.safetensors', 'x');
  await store.put('runs/r2/a.txt', 'y');
  expect(await store.get('runs/r1/sft/step-10/model.safetensors')).toEqual(new Uint8Array([1, 2, 3]));
  expect(await store.list('runs/r1/')).toEqual([
    'runs/r1/sft/step-10/model.safetensors',
    'runs/r1/sft/step-20/model.safetensors',
  ]);
  expect(await store.exists('runs/r2/a.txt')).toBe(true);
  await store.delete('runs/r2');
  expect(await store.exists('runs/r2/a.txt')).toBe(false);
});

test('putStream hashes and counts while writing, and leaves no temp file on failure', async () => {
  const info = await store.putStream('d/data.jsonl', Readable.from([Buffer.from('ab'), Buffer.from('cd')]));
  expect(info.bytes).toBe(4);
  expect(await store.getText('d/data.jsonl')).toBe('abcd');
  async function* failing() {
    yield Buffer.from('partial');
    throw new Error('client went away');
  }
  await expect(store.putStream('d/broken.jsonl', failing())).rejects.toThrow('client went away');
  expect(await store.exists('d/broken.jsonl')).toBe(false);
  expect((await readdir(join(dir, 'd'))).sort()).toEqual(['data.jsonl']);
});

test('unsafe keys are refused', () => {
  for (const key of ['../etc/passwd', '/abs', 'a/../../b', 'a//b', '.hidden', 'a/b c', '']) {
    expect(() => assertSafeKey(key), key).toThrow(/unsafe artifact key/);
  }
  expect(() => store.path('ok/key-1.onnx')).not.toThrow();
});
