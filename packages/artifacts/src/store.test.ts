import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterEach, beforeEach, expect, test } from 'vitest';
import {
  type ArtifactStore,
  assertSafeKey,
  createArtifactStore,
  isStoreFull,
  isStoreReadOnly,
} from './store.js';

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
  expect((await readdir(join(dir, 'd'))).sort()).toEqual(['.data.jsonl.sha256', 'data.jsonl']);
});

test('unsafe keys are refused', () => {
  for (const key of ['../etc/passwd', '/abs', 'a/../../b', 'a//b', '.hidden', 'a/b c', '']) {
    expect(() => assertSafeKey(key), key).toThrow(/unsafe artifact key/);
  }
  expect(() => store.path('ok/key-1.onnx')).not.toThrow();
});

// Faults injected through the fs layer (tests run as root: chmod would not stop the writes).
const errno = (code: string, syscall: string) =>
  Object.assign(new Error(`${code}: injected, ${syscall}`), { code, syscall });

/** A write stream that writes its first `bytes` to the real file, then fails with `code` (a disk filling up). */
function failingAfter(bytes: number, code: string) {
  return ((path: string) => {
    const real = createWriteStream(path);
    let written = 0;
    return new Writable({
      write(chunk: Buffer, _encoding, callback) {
        written += chunk.byteLength;
        if (written > bytes) callback(errno(code, 'write'));
        else real.write(chunk, callback);
      },
      final(callback) {
        real.end(callback);
      },
      destroy(error, callback) {
        real.end(() => callback(error));
      },
    });
  }) as unknown as typeof createWriteStream;
}

test('a disk filling up mid-write (ENOSPC): the error says so and no .tmp-* file is left', async () => {
  const full = createArtifactStore(dir, { fs: { createWriteStream: failingAfter(4, 'ENOSPC') } });
  const chunks = Readable.from([Buffer.from('abcd'), Buffer.from('efgh'), Buffer.from('ijkl')]);
  const error = await full.putStream('d/big.jsonl', chunks).catch((e: unknown) => e);
  expect(error).toMatchObject({ code: 'ENOSPC' });
  expect(isStoreFull(error)).toBe(true);
  expect(await readdir(join(dir, 'd'))).toEqual([]);

  const fullWrites = createArtifactStore(dir, {
    fs: {
      writeFile: (async (path: string) => {
        await writeFile(path, 'partial'); // part of the file made it to disk
        throw errno('ENOSPC', 'write');
      }) as unknown as typeof writeFile,
    },
  });
  await expect(fullWrites.put('d/state.json', '{"step": 1}')).rejects.toMatchObject({ code: 'ENOSPC' });
  expect(await readdir(join(dir, 'd'))).toEqual([]);
});

test('a read-only store reports EROFS, not a missing file, even though removing the temp file fails too', async () => {
  const readOnly = createArtifactStore(dir, {
    fs: {
      createWriteStream: failingAfter(0, 'EROFS'),
      writeFile: (async () => {
        throw errno('EROFS', 'open');
      }) as unknown as typeof writeFile,
      rm: (async () => {
        throw errno('EROFS', 'unlink');
      }) as unknown as typeof rm,
    },
  });
  const streamed = await readOnly.putStream('d/x.jsonl', Readable.from([Buffer.from('x')])).catch((e) => e);
  expect(isStoreReadOnly(streamed)).toBe(true);
  expect(isStoreFull(streamed)).toBe(false);
  await expect(readOnly.put('d/y.json', 'y')).rejects.toMatchObject({ code: 'EROFS' });
});
