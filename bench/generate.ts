// Rollout throughput: new tokens per second (batch x new tokens / wall time of one generate call, which is one
// session.run with prefill + every decode step inside an ONNX Loop), for the `tiny` and `small` presets.
// Prints JSON. Run: npx tsx bench/generate.ts [--device cuda:0]
import { createGenerator, initParams, presetConfig, type PresetName } from '@rlhf/model';
import { createRuntime } from '@rlhf/runtime';

const device = process.argv.includes('--device') ? process.argv[process.argv.indexOf('--device') + 1] : 'cpu';
const cases: { preset: PresetName; batch: number; promptLen: number; newTokens: number }[] = [
  { preset: 'tiny', batch: 16, promptLen: 16, newTokens: 48 },
  { preset: 'tiny', batch: 64, promptLen: 16, newTokens: 48 },
  { preset: 'small', batch: 8, promptLen: 32, newTokens: 64 },
  { preset: 'small', batch: 32, promptLen: 32, newTokens: 64 },
];
const REPEATS = 3;

const runtime = await createRuntime({ device });
const results = [];
for (const c of cases) {
  const config = presetConfig(c.preset);
  const params = initParams(config, 1);
  const generator = await createGenerator(runtime, config);
  const prompts = Array.from({ length: c.batch }, (_, b) =>
    Array.from({ length: c.promptLen }, (_, j) => (b * 31 + j * 7) % 256),
  );
  // eosId -1: every row runs the full newTokens steps, so the token count is exact.
  const request = { params, prompts, maxNewTokens: c.newTokens, temperature: 1, eosId: -1, padId: 258 };
  await generator.generate({ ...request, seed: 0 }); // warm-up
  const seconds: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const start = performance.now();
    await generator.generate({ ...request, seed: r + 1 });
    seconds.push((performance.now() - start) / 1000);
  }
  await generator.release();
  const best = Math.min(...seconds);
  results.push({
    preset: c.preset,
    batch: c.batch,
    promptLen: c.promptLen,
    newTokens: c.newTokens,
    secondsPerCall: Number(best.toFixed(4)),
    tokensPerSecond: Math.round((c.batch * c.newTokens) / best),
  });
}
await runtime.close();
console.log(
  JSON.stringify({ bench: 'generate', device: runtime.device, repeats: REPEATS, results }, null, 2),
);
