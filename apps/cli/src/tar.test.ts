import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { tarArchive } from './tar.js';

test('tarArchive: GNU tar lists and extracts the files byte for byte', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-tar-'));
  try {
    const big = new Uint8Array(1300).map((_, i) => i % 251);
    writeFileSync(
      join(dir, 'm.tar'),
      tarArchive([
        ['config.json', new TextEncoder().encode('{}\n')],
        ['model.safetensors', big],
      ]),
    );
    expect(execFileSync('tar', ['-tf', 'm.tar'], { cwd: dir, encoding: 'utf8' })).toBe(
      'config.json\nmodel.safetensors\n',
    );
    execFileSync('tar', ['-xf', 'm.tar'], { cwd: dir });
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toBe('{}\n');
    expect(new Uint8Array(readFileSync(join(dir, 'model.safetensors')))).toEqual(big);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
