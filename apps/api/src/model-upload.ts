// A model upload arrives as one tar body and is streamed, file by file, into a temporary directory of the
// artifact store (never whole in memory); the caller validates it from there and commits it with one rename.
// A refused, oversized or truncated upload leaves nothing behind.
import { createHash, randomUUID } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type ArtifactStore, readTarStream, TarError } from '@rlhf/artifacts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '@rlhf/model';
import { ApiError } from './errors.js';
import { checkModelFileName, invalidModel } from './model-inspect.js';

/** Where uploads are received before they are validated (a crash mid-upload leaves its directory here). */
export const UPLOADS_DIR = 'uploads/models';

export interface ReceivedModel {
  /** Artifact-store key of the temporary directory holding the files. */
  dir: string;
  files: Map<string, { bytes: number; sha256: string }>;
  /** Size and sha256 of the whole archive. */
  bytes: number;
  sha256: string;
}

export const uploadTooLarge = (limit: number) =>
  new ApiError(413, 'payload_too_large', `upload larger than the team's limit of ${limit} bytes`);

/**
 * Streams the tar in `body` into a fresh temporary directory: a single top directory (`tar cf m.tar mymodel/`)
 * is stripped, every name is checked before its data is written, and more than `limit` bytes is a 413 as
 * soon as the limit is passed. On any failure the directory is removed.
 */
export async function receiveModelTar(
  artifacts: ArtifactStore,
  body: AsyncIterable<Uint8Array>,
  limit: number,
): Promise<ReceivedModel> {
  const dir = `${UPLOADS_DIR}/${randomUUID()}`;
  const hash = createHash('sha256');
  let bytes = 0;
  async function* limited() {
    for await (const chunk of body) {
      bytes += chunk.byteLength;
      if (bytes > limit) throw uploadTooLarge(limit);
      hash.update(chunk);
      yield chunk;
    }
  }
  const files = new Map<string, { bytes: number; sha256: string }>();
  let prefix: string | undefined;
  try {
    await readTarStream(limited(), async (path, _size, data) => {
      // A tar without a top directory may start with the PEFT adapter's folder (adapter/...).
      prefix ??= path.includes('/') && !path.startsWith('adapter/') ? `${path.split('/')[0]}/` : '';
      if (!path.startsWith(prefix))
        throw invalidModel(`${path}: outside the archive's top directory ${prefix}`, path);
      const top = path.slice(prefix.length);
      // PEFT's save_pretrained writes the adapter's two files at the top of their directory: they are adapter/'s.
      const name = top === ADAPTER_CONFIG || top === ADAPTER_WEIGHTS ? `adapter/${top}` : top;
      checkModelFileName(name);
      if (files.has(name)) throw invalidModel(`${name}: twice in the archive`, name);
      const info = await artifacts.putStream(`${dir}/${name}`, data);
      files.set(name, { bytes: info.bytes, sha256: info.sha256 ?? '' });
    });
  } catch (error) {
    await artifacts.delete(dir).catch(() => {});
    if (error instanceof TarError) throw invalidModel(`not a valid tar archive: ${error.message}`);
    throw error;
  }
  return { dir, files, bytes, sha256: hash.digest('hex') };
}

/**
 * Removes upload directories older than `ageMs` (default a day): what an API that died mid-upload left. A live
 * upload's directory is younger (its files are being written).
 */
export async function removeStaleUploads(artifacts: ArtifactStore, ageMs = 86_400_000): Promise<string[]> {
  const root = artifacts.path(UPLOADS_DIR);
  const names = await readdir(root).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const { mtimeMs } = await stat(join(root, name)).catch(() => ({ mtimeMs: Date.now() }));
    if (Date.now() - mtimeMs < ageMs) continue;
    await artifacts.delete(`${UPLOADS_DIR}/${name}`);
    removed.push(name);
  }
  return removed;
}
