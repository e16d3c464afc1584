#!/usr/bin/env node
// npm run setup:cuda — puts ONNX Runtime 1.29.0's CUDA provider libraries next to onnxruntime-node's binding.
// onnxruntime-node's own installer fetches them from NuGet (unreachable here); the npm package below ships the
// same ORT 1.29.0 build (CUDA 13) of both files (see docs/DESIGN.md, "Compute: facts verified").
//
//   node scripts/setup-cuda.mjs           install if missing (idempotent)
//   node scripts/setup-cuda.mjs --force   reinstall
//   node scripts/setup-cuda.mjs --check   only report; exit code 1 when missing
//   node scripts/setup-cuda.mjs --from <package.tgz>   install from a tarball fetched earlier (offline machines)
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  CUDA_PROVIDER_LIBRARIES,
  missingCudaProviderLibraries,
  ortBindingDir,
} from '../packages/runtime/src/ort-binding.mjs';

const PACKAGE = 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9';
const FOLDER_IN_PACKAGE = 'package/Plugins/Linux/x64';

const argv = process.argv.slice(2);
const args = new Set(argv);
const from = argv.includes('--from') ? argv[argv.indexOf('--from') + 1] : undefined;
const bindingDir = ortBindingDir();
const missing = missingCudaProviderLibraries();

if (args.has('--check')) {
  if (missing.length === 0) console.log(`CUDA provider libraries installed in ${bindingDir}`);
  else console.log(`missing from ${bindingDir}: ${missing.join(', ')} (run \`npm run setup:cuda\`)`);
  process.exit(missing.length === 0 ? 0 : 1);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`setup:cuda supports linux x64 only (this is ${process.platform} ${process.arch})`);
  process.exit(1);
}
if (missing.length === 0 && !args.has('--force')) {
  console.log(
    `CUDA provider libraries already installed in ${bindingDir}; nothing to do (--force reinstalls)`,
  );
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), 'setup-cuda-'));
try {
  const tarball = from ? resolve(from) : download(work);
  const members = CUDA_PROVIDER_LIBRARIES.map((file) => `${FOLDER_IN_PACKAGE}/${file}`);
  execFileSync('tar', ['-xzf', tarball, '-C', work, ...members], { stdio: 'inherit' });
  for (const file of CUDA_PROVIDER_LIBRARIES) {
    // Copy beside the target, then rename: a half-written library is never seen under its real name.
    const target = join(bindingDir, file);
    copyFileSync(join(work, FOLDER_IN_PACKAGE, file), `${target}.partial`);
    renameSync(`${target}.partial`, target);
    console.log(`installed ${target}`);
  }
  console.log(
    'done. The CUDA 13 libraries (cudart, cublas, cublasLt, curand, cuDNN 9) must be on LD_LIBRARY_PATH; ' +
      "then createRuntime({ device: 'cuda:0' }) runs on the GPU.",
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}

function download(dir) {
  console.log(`downloading ${PACKAGE} (~230 MB) with npm pack ...`);
  const args = ['pack', PACKAGE, '--json', '--pack-destination', dir];
  const packed = JSON.parse(execFileSync('npm', args, { cwd: dir, encoding: 'utf8' }));
  return join(dir, packed[0].filename);
}
