import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArtifactStore, writeTar } from '@rlhf/artifacts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiError } from './errors.js';
import { receiveModelTar, removeStaleUploads, UPLOADS_DIR } from './model-upload.js';

const bytes = (text: string) => new TextEncoder().encode(text);
async function* chunks(data: Uint8Array, size = 1000) {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

describe('receiveModelTar', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'model-upload-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('streams the files into a temporary directory (top directory stripped) with their sizes and sha256', async () => {
    const store = createArtifactStore(root);
    const archive = writeTar({ 'm/config.json': bytes('{}'), 'm/README.md': bytes('x'.repeat(5000)) });
    const received = await receiveModelTar(store, chunks(archive), archive.length);
    expect(received.dir.startsWith(`${UPLOADS_DIR}/`)).toBe(true);
    expect(await store.list(`${received.dir}/`)).toEqual([
      `${received.dir}/README.md`,
      `${received.dir}/config.json`,
    ]);
    expect(received.files.get('config.json')).toEqual({
      bytes: 2,
      sha256: '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', // sha256sum of "{}"
    });
    expect(received.bytes).toBe(archive.length);
  });

  it('refuses past the limit, a file outside the model and a truncated archive, leaving nothing', async () => {
    const store = createArtifactStore(root);
    const archive = writeTar({ 'config.json': bytes('{}'), 'README.md': bytes('x'.repeat(5000)) });
    const refused = await receiveModelTar(store, chunks(archive), 3000).catch((e: ApiError) => e);
    expect(refused).toMatchObject({ statusCode: 413 });
    const odd = writeTar({ 'config.json': bytes('{}'), 'run.sh': bytes('rm -rf /') });
    await expect(receiveModelTar(store, chunks(odd), 1e6)).rejects.toThrow(/run\.sh: not a file of a model/);
    await expect(receiveModelTar(store, chunks(archive.subarray(0, 3000)), 1e6)).rejects.toThrow(/truncated/);
    expect(await store.list('uploads/')).toEqual([]);
  });

  it('removeStaleUploads removes only directories older than the age', async () => {
    const store = createArtifactStore(root);
    await store.put(`${UPLOADS_DIR}/old/config.json`, '{}');
    await store.put(`${UPLOADS_DIR}/new/config.json`, '{}');
    const dayAgo = new Date(Date.now() - 2 * 86_400_000);
    await utimes(store.path(`${UPLOADS_DIR}/old`), dayAgo, dayAgo);
    expect(await removeStaleUploads(store)).toEqual(['old']);
    expect(await store.list('uploads/')).toEqual([`${UPLOADS_DIR}/new/config.json`]);
  });
});
