import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { missingCudaProviderLibraries, ortBindingDir } from './ort-binding.mjs';

const script = fileURLToPath(new URL('../../../scripts/setup-cuda.mjs', import.meta.url));

test('setup-cuda --check reports whether the CUDA provider libraries sit next to the ORT binding', async () => {
  const missing = missingCudaProviderLibraries();
  const result = await promisify(execFile)(process.execPath, [script, '--check']).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  expect(result.stdout).toContain(ortBindingDir());
  if (missing.length === 0) {
    expect(result).toEqual({ code: 0, stdout: expect.stringContaining('installed') });
  } else {
    expect(result.code).toBe(1);
    for (const file of missing) expect(result.stdout).toContain(file);
  }
});
