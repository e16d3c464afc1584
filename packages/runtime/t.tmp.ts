import { createRuntime, float32, int64 } from './src/index.ts';
import { tanhMatmulLoopModel } from './src/test-models.ts';
const n = 512, m = 256;
const x = float32([m, n], Float32Array.from({ length: m * n }, (_, i) => Math.sin(i)));
const w = float32([n, n], Float32Array.from({ length: n * n }, (_, i) => Math.cos(i) / Math.sqrt(n)));
for (let k = 0; k < 10; k++) {
  const rt = await createRuntime({ intraOpNumThreads: 1 });
  const s = await rt.createSession(tanhMatmulLoopModel());
  const p = s.run({ trip: int64([], [100]), x, w }).catch((e) => e.message);
  await new Promise((r) => setTimeout(r, Number(process.env.DELAY ?? 20)));
  const t0 = performance.now();
  await rt.close();
  console.log(k, await p, (performance.now() - t0).toFixed(1));
}
