// npm in this repository prints no config warning (the ORT install flag used to live in .npmrc, a key npm does
// not know), and onnxruntime-node's install script, which downloads from NuGet and fails offline, stays denied.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '@rlhf/config';
import { expect, test } from 'vitest';

test('npm commands print no "Unknown project config" warning; ORT install script denied by allowScripts', () => {
  const listed = spawnSync('npm', ['ls', 'onnxruntime-node', '--depth=1'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  expect(listed.stdout).toContain('onnxruntime-node@1.29.0');
  expect(listed.stderr).not.toMatch(/npm warn Unknown (project|user) config/i);
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
  expect(manifest.allowScripts['onnxruntime-node']).toBe(false);
  const ci = readFileSync(join(REPO_ROOT, '.ci/run'), 'utf8');
  expect(ci).toMatch(
    /npm install --package-lock-only[^\n]*\n\s*git diff --exit-code[^\n]*package-lock\.json/,
  );
});
