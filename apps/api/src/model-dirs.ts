// Admin models: read-only HF model directories on shared storage (the MODEL_DIRS setting), how clusters keep
// multi-GB checkpoints. Each is validated as an upload is, then recorded with no team (visible to every team,
// never deleted by one) and its absolute directory as the key: nothing is copied, workers read it in place.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { CheckpointError } from '@rlhf/model';
import { ApiError } from './errors.js';
import { inspectModel, isModelFile } from './model-inspect.js';
import { modelFacts } from './models.js';
import type { Services } from './services.js';

export interface ModelDirResult {
  dir: string;
  /** The admin model's id, when the directory is a valid model. */
  modelId?: string;
  /** Why the directory was not registered. */
  error?: string;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The model files of `dir` (other files, hidden files and subdirectories are not the model's; links are followed). */
async function modelFilesIn(dir: string): Promise<Map<string, Uint8Array>> {
  if (!isAbsolute(dir)) throw new ApiError(400, 'invalid_model', `${dir}: not an absolute path`);
  const files = new Map<string, Uint8Array>();
  for (const name of (await readdir(dir)).sort())
    if (isModelFile(name) && (await stat(join(dir, name))).isFile())
      files.set(name, new Uint8Array(await readFile(join(dir, name))));
  return files;
}

/** Registers (or refreshes, when its files changed) the admin model of one directory. */
export async function registerModelDir(s: Services, dir: string): Promise<string> {
  const files = await modelFilesIn(dir);
  const name = basename(dir);
  const facts = await inspectModel(files, dir, name);
  const listed = [...files].map(([file, data]) => ({ name: file, bytes: data.length, sha256: sha256(data) }));
  files.clear();
  const data = {
    name,
    ...modelFacts(facts),
    files: listed,
    bytes: BigInt(listed.reduce((n, f) => n + f.bytes, 0)),
    // No archive was uploaded: the digest of the file list (names, sizes, sha256s) stands for the directory.
    sha256: sha256(new TextEncoder().encode(JSON.stringify(listed))),
  };
  const existing = await s.prisma.model.findFirst({
    where: { teamId: null, key: dir },
    select: { id: true },
  });
  if (existing) return (await s.prisma.model.update({ where: { id: existing.id }, data })).id;
  return (await s.prisma.model.create({ data: { ...data, teamId: null, key: dir } })).id;
}

/** Registers every directory; one that is not a valid model is reported (and logged), not fatal. */
export async function registerModelDirs(s: Services, dirs: readonly string[]): Promise<ModelDirResult[]> {
  const results: ModelDirResult[] = [];
  for (const dir of dirs) {
    try {
      results.push({ dir, modelId: await registerModelDir(s, dir) });
    } catch (error) {
      const known = error instanceof ApiError || error instanceof CheckpointError;
      const code = (error as NodeJS.ErrnoException).code;
      if (!known && code === undefined) throw error;
      const message = (error as Error).message;
      s.logger.error({ dir, error: message }, 'MODEL_DIRS: directory not registered');
      results.push({ dir, error: message });
    }
  }
  return results;
}
