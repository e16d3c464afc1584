// Every file the store writes has its sha256 recorded at write time; a file changed on disk afterwards is
// told apart by hashing its content again.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { type ArtifactStore, createArtifactStore } from './store.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

let dir: string;
let store: ArtifactStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'artifacts-sha-'));
  store = createArtifactStore(dir);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

test('put and putStream record the sha256 that info() returns later, from a fresh store too', async () => {
  await store.put('runs/r/final/config.json', '{"a":1}');
  await store.putStream(
    'datasets/t/x.jsonl',
    Readable.from([Buffer.from('{"prompt":'), Buffer.from('"p"}\n')]),
  );
  const again = createArtifactStore(dir);
  expect(await again.info('runs/r/final/config.json')).toEqual({
    key: 'runs/r/final/config.json',
    bytes: 7,
    sha256: sha('{"a":1}'),
  });
  expect((await again.info('datasets/t/x.jsonl')).sha256).toBe(sha('{"prompt":"p"}\n'));
  // The sidecars are not artifacts.
  expect(await again.list('')).toEqual(['datasets/t/x.jsonl', 'runs/r/final/config.json']);
});

test('overwriting a key records the new content', async () => {
  await store.put('a/b.bin', 'one');
  await store.put('a/b.bin', 'two');
  expect((await store.info('a/b.bin')).sha256).toBe(sha('two'));
});

test('a file replaced behind the store has no recorded sha256; sha256() computes it from the content', async () => {
  await store.put('a/model.safetensors', 'weights');
  await rm(join(dir, 'a', 'model.safetensors'));
  await writeFile(join(dir, 'a', 'model.safetensors'), 'WEIGHTS');
  expect((await store.info('a/model.safetensors')).sha256).toBeUndefined();
  expect(await store.sha256('a/model.safetensors')).toBe(sha('WEIGHTS'));
});

test('hashContent() reads the bytes on disk: corruption in place differs from what was recorded', async () => {
  const { sha256 } = await store.put('a/model.onnx', 'abcdef');
  expect(await store.hashContent('a/model.onnx')).toBe(sha256);
  // Same inode, same size, other bytes: what a bad disk or a stray write does.
  await writeFile(join(dir, 'a', 'model.onnx'), 'abcxef', { flag: 'r+' });
  expect(await store.hashContent('a/model.onnx')).toBe(sha('abcxef'));
  expect(await store.sha256('a/model.onnx')).toBe(sha('abcxef'));
});

test('move carries the recorded sha256; delete removes it with the file', async () => {
  await store.put('uploads/t/tmp.jsonl', 'rows');
  await store.move('uploads/t/tmp.jsonl', 'datasets/t/abc.jsonl');
  expect(await store.exists('uploads/t/tmp.jsonl')).toBe(false);
  expect((await store.info('datasets/t/abc.jsonl')).sha256).toBe(sha('rows'));
  await store.delete('datasets/t/abc.jsonl');
  expect(await store.exists('datasets/t/abc.jsonl')).toBe(false);
  await store.put('datasets/t/abc.jsonl', 'other');
  expect((await store.info('datasets/t/abc.jsonl')).sha256).toBe(sha('other'));
});
