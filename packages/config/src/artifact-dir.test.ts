// checkArtifactDir on real directories: created when missing, refused (one line naming ARTIFACT_DIR) when
// it cannot be written. Tests run as root, where permissions do not stop writes: a path below a regular
// file is what cannot be written for everyone.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { checkArtifactDir } from './checks.js';
import { StartupError } from './errors.js';

const base = await mkdtemp(join(tmpdir(), 'rlhf-artifact-dir-'));
afterAll(() => rm(base, { recursive: true, force: true }));

describe('checkArtifactDir', () => {
  test('creates a missing directory and leaves nothing in it', async () => {
    const dir = join(base, 'a', 'b');
    await checkArtifactDir(dir);
    expect(await readdir(dir)).toEqual([]);
  });

  test('refuses a path that cannot be a directory, naming the variable and the path', async () => {
    const file = join(base, 'not-a-dir');
    await writeFile(file, 'x');
    const dir = join(file, 'store');
    const error = await checkArtifactDir(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartupError);
    expect((error as Error).message).toBe(
      `ARTIFACT_DIR: cannot write to ${dir} (ENOTDIR); API and workers need one shared, writable directory`,
    );
  });
});
