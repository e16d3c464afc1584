import { createHash, randomUUID } from 'node:crypto';
import * as nodeFs from 'node:fs';
import * as nodeFsPromises from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
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
  /** Size, and the sha256 recorded when the file was written (absent for a file written some other way). */
  info(key: string): Promise<ArtifactInfo>;
  /** The recorded sha256, or (for a file the store did not write) one computed from the content now. */
  sha256(key: string): Promise<string>;
  /** Hashes the content as it is on disk now; a mismatch with the recorded sha256 means corruption. */
  hashContent(key: string): Promise<string>;
  /** Renames a file to another key, with its recorded sha256 (same file system: atomic). */
  move(from: string, to: string): Promise<void>;
  /** Keys under a prefix ('a/b/' lists everything below a/b), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Removes a file (and its recorded sha256) or a directory. */
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

/**
 * The sha256 of a file is recorded when the store writes it, in a hidden sidecar `.<name>.sha256` beside it
 * (never listed), together with the file's inode, size and mtime: a sidecar that does not match the file
 * (a crash between the two renames, a file replaced or edited by hand) is ignored rather than trusted.
 */
interface Recorded {
  sha256: string;
  bytes: number;
  ino: number;
  mtimeMs: number;
}
const sidecarOf = (full: string) => join(dirname(full), `.${basename(full)}.sha256`);

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
  // A recursive mkdir on a read-only file system fails with ENOENT (Node walks up from the missing parent):
  // the directories are then made one by one, so the caller sees the real EROFS.
  async function makeDir(dir: string): Promise<void> {
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dir === root || dirname(dir) === dir) throw err;
      await makeDir(dirname(dir));
      await mkdir(dir).catch((again: NodeJS.ErrnoException) => {
        if (again.code !== 'EEXIST') throw again;
      });
    }
  }
  const discard = (temp: string) => rm(temp, { force: true }).catch(() => {});

  async function putStream(key: string, source: Readable | AsyncIterable<Uint8Array>): Promise<ArtifactInfo> {
    const full = pathOf(key);
    await makeDir(dirname(full));
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
    const sha256 = () => hash.digest('hex');
    let digest = '';
    try {
      await pipeline(counted, createWriteStream(temp));
      digest = sha256();
      await record(full, temp, digest, bytes);
      await rename(temp, full);
    } catch (err) {
      await discard(temp);
      throw err;
    }
    return { key, bytes, sha256: digest };
  }

  // The sidecar names the temporary file's inode, which the rename gives to `full`.
  async function record(full: string, temp: string, sha256: string, bytes: number): Promise<void> {
    const { ino, mtimeMs } = await stat(temp);
    const sidecar = sidecarOf(full);
    const sidecarTemp = tempOf(full);
    try {
      await writeFile(sidecarTemp, JSON.stringify({ sha256, bytes, ino, mtimeMs } satisfies Recorded));
      await rename(sidecarTemp, sidecar);
    } catch (err) {
      await discard(sidecarTemp);
      throw err;
    }
  }

  async function recorded(full: string): Promise<{ size: number; sha256?: string }> {
    const { size, ino, mtimeMs } = await stat(full);
    try {
      const entry = JSON.parse(await readFile(sidecarOf(full), 'utf8')) as Recorded;
      const same = entry.ino === ino && entry.bytes === size && entry.mtimeMs === mtimeMs;
      if (same && /^[0-9a-f]{64}$/.test(entry.sha256)) return { size, sha256: entry.sha256 };
    } catch {}
    return { size };
  }

  async function hashContent(key: string): Promise<string> {
    const hash = createHash('sha256');
    await pipeline(createReadStream(pathOf(key)), hash);
    return hash.digest('hex');
  }

  return {
    root,
    path: pathOf,
    async put(key, data) {
      const full = pathOf(key);
      await makeDir(dirname(full));
      const temp = tempOf(full);
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      const sha256 = createHash('sha256').update(buf).digest('hex');
      try {
        await writeFile(temp, buf);
        await record(full, temp, sha256, buf.byteLength);
        await rename(temp, full);
      } catch (err) {
        await discard(temp);
        throw err;
      }
      return { key, bytes: buf.byteLength, sha256 };
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
      const { size, sha256 } = await recorded(pathOf(key));
      return { key, bytes: size, ...(sha256 ? { sha256 } : {}) };
    },
    async sha256(key) {
      return (await recorded(pathOf(key))).sha256 ?? (await hashContent(key));
    },
    hashContent,
    async move(from, to) {
      const source = pathOf(from);
      const target = pathOf(to);
      await makeDir(dirname(target));
      // The sidecar first: until the data's rename it names an inode `target` does not have yet, so it is ignored.
      await rename(sidecarOf(source), sidecarOf(target)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await rename(source, target);
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
      const full = pathOf(key);
      await rm(full, { force: true, recursive: true });
      await rm(sidecarOf(full), { force: true });
    },
  };
}
