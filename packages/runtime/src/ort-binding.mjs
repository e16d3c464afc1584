// Where onnxruntime-node's native binding lives, and the CUDA provider libraries that must sit beside it.
// Plain JS so that the worker thread and scripts/setup-cuda.mjs can import it without a TypeScript loader.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

export const CUDA_PROVIDER_LIBRARIES = [
  'libonnxruntime_providers_cuda.so',
  'libonnxruntime_providers_shared.so',
];

/** node_modules/onnxruntime-node/bin/napi-v6/<platform>/<arch>: the folder holding onnxruntime_binding.node. */
export function ortBindingDir() {
  const packageDir = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(packageDir, 'bin', 'napi-v6', process.platform, process.arch);
}

/** The CUDA provider libraries not present next to the binding ([] when CUDA can be tried). */
export function missingCudaProviderLibraries() {
  const dir = ortBindingDir();
  return CUDA_PROVIDER_LIBRARIES.filter((file) => !existsSync(join(dir, file)));
}
