import { createHash, randomUUID } from 'node:crypto';
import * as nodeFs from 'node:fs';
import * as nodeFsPromises from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Where checkpoints, datasets and exported models live: a directory (a shared mount in a cluster). */
export interface ArtifactStore {
  readonly root: string;
  /** Writes atomically (temp file + rename), so a crash never leaves a half-written artifact under `key`. */
  put(key: string, data: Uint8Array | string): Promise<ArtifactInfo>;
  putStream(key: string, source: Readable | AsyncIterable<Uint8Array>): Promise<ArtifactInfo>;
  get(key: string): Promise<Uint8Array>;
  getText(key: string): Promise<string>;
  stream(key: string): Readable;
  exists(key: string): Promise<boolean>;
  info(key: string): Promise<ArtifactInfo>;
  /** Keys under a prefix ('a/b/' lists everything below a/b), sorted. */
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /** Absolute path of a key, for libraries that need a file (e.g. onnxruntime loading a model). */
  path(key: string): string;
}

export interface ArtifactInfo {
  key: string;
  bytes: number;
  sha256?: string;
}

export class ArtifactKeyError extends Error {
  override name = 'ArtifactKeyError';
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Keys are '/'-separated safe segments: no '..', no absolute paths, no hidden files, no odd characters. */
export function assertSafeKey(key: string): void {
  const segments = key.split('/');
  if (key.length === 0 || key.length > 512 || segments.some((s) => !SEGMENT.test(s) || s.includes('..'))) {
    throw new ArtifactKeyError(`unsafe artifact key: ${JSON.stringify(key)}`);
  }
}

/** The file system calls the store makes: replace some to inject faults (a full or read-only disk). */
export interface ArtifactFs {
  mkdir: typeof nodeFsPromises.mkdir;
  readdir: typeof nodeFsPromises.readdir;
  readFile: typeof nodeFsPromises.readFile;
  rename: typeof nodeFsPromises.rename;
  rm: typeof nodeFsPromises.rm;
  stat: typeof nodeFsPromises.stat;
  writeFile: typeof nodeFsPromises.writeFile;
  createReadStream: typeof nodeFs.createReadStream;
  createWriteStream: typeof nodeFs.createWriteStream;
}

export interface ArtifactStoreOptions {
  fs?: Partial<ArtifactFs>;
}

/** Errors of a store that cannot take writes (`code` as Node sets it: ENOSPC, EDQUOT, EROFS). */
export const isStoreFull = (error: unknown): boolean =>
  ['ENOSPC', 'EDQUOT'].includes((error as NodeJS.ErrnoException | null)?.code ?? '');
export const isStoreReadOnly = (error: unknown): boolean =>
  (error as NodeJS.ErrnoException | null)?.code === 'EROFS';

/**
 * A failed write removes its temporary file; the write's own error is what the caller sees (a cleanup that
 * fails too, as it does on a read-only disk, does not replace it).
 */
export function createArtifactStore(rootDir: string, options: ArtifactStoreOptions = {}): ArtifactStore {
  const { mkdir, readdir, readFile, rename, rm, stat, writeFile, createReadStream, createWriteStream } = {
    ...nodeFsPromises,
    createReadStream: nodeFs.createReadStream,
    createWriteStream: nodeFs.createWriteStream,
    ...options.fs,
  } as ArtifactFs;
  const root = resolve(rootDir);
  const pathOf = (key: string): string => {
    assertSafeKey(key);
    const full = join(root, ...key.split('/'));
    if (!full.startsWith(root + sep))
      throw new ArtifactKeyError(`unsafe artifact key: ${JSON.stringify(key)}`);
    return full;
  };
  const tempOf = (full: string) => `${dirname(full)}/.tmp-${randomUUID()}`;
  const discard = (temp: string) => rm(temp, { force: true }).catch(() => {});

  async function putStream(key: string, source: Readable | AsyncIterable<Uint8Array>): Promise<ArtifactInfo> {
    const full = pathOf(key);
    await mkdir(dirname(full), { recursive: true });
    const temp = tempOf(full);
    const hash = createHash('sha256');
    let bytes = 0;
    async function* counted() {
      for await (const chunk of source) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
        hash.update(buf);
        bytes += buf.byteLength;
        yield buf;
      }
    }
    try {
      await pipeline(counted, createWriteStream(temp));
      await rename(temp, full);
    } catch (err) {
      await discard(temp);
      throw err;
    }
    return { key, bytes, sha256: hash.digest('hex') };
  }

  return {
    root,
    path: pathOf,
    async put(key, data) {
      const full = pathOf(key);
      await mkdir(dirname(full), { recursive: true });
      const temp = tempOf(full);
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      try {
        await writeFile(temp, buf);
        await rename(temp, full);
      } catch (err) {
        await discard(temp);
        throw err;
      }
      return { key, bytes: buf.byteLength, sha256: createHash('sha256').update(buf).digest('hex') };
    },
    putStream,
    async get(key) {
      return new Uint8Array(await readFile(pathOf(key)));
    },
    async getText(key) {
      return readFile(pathOf(key), 'utf8');
    },
    stream(key) {
      return createReadStream(pathOf(key));
    },
    async exists(key) {
      try {
        return (await stat(pathOf(key))).isFile();
      } catch {
        return false;
      }
    },
    async info(key) {
      return { key, bytes: (await stat(pathOf(key))).size };
    },
    async list(prefix) {
      const base = prefix.replace(/\/+$/, '');
      const dir = base === '' ? root : pathOf(base);
      const out: string[] = [];
      async function walk(abs: string, rel: string): Promise<void> {
        let entries: import('node:fs').Dirent[];
        try {
          entries = await readdir(abs, { withFileTypes: true });
        } catch {
          return;
        }
        for (const entry of entries) {
          if (entry.name.startsWith('.')) continue;
          const childRel = rel ? `${rel}/${entry.name}` : entry.name;
          if (entry.isDirectory()) await walk(join(abs, entry.name), childRel);
          else if (entry.isFile()) out.push(childRel);
        }
      }
      await walk(dir, base);
      return out.sort();
    },
    async delete(key) {
      await rm(pathOf(key), { force: true, recursive: true });
    },
  };
}
