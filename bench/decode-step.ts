// Decode step time of in-graph generation: (time of a call with 1 + S new tokens − time of a call with 1) / S,
// so prefill cancels out, at batch 32, prompt 32, for each sampler setting (plain temperature, top-k, top-p).
// Prints JSON. Run: npx tsx bench/decode-step.ts [--presets small,gpt2] [--steps 8] [--repeats 3]
import { createGenerator, initParams, type PresetName, presetConfig } from '@rlhf/model';
import { createRuntime } from '@rlhf/runtime';

const arg = (name: string, fallback: string) =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback;
const presets = arg('--presets', 'small,gpt2').split(',') as PresetName[];
const steps = Number(arg('--steps', '8'));
const repeats = Number(arg('--repeats', '3'));
const batch = 32;
const promptLen = 32;
const samplers = [
  { sampler: 'greedy', temperature: 0 },
  { sampler: 'temperature 1', temperature: 1 },
  { sampler: 'top-k 50', temperature: 1, topK: 50 },
  { sampler: 'top-p 0.9', temperature: 1, topP: 0.9 },
];

const runtime = await createRuntime({ device: arg('--device', 'cpu') });
const results = [];
for (const preset of presets) {
  const config = presetConfig(preset);
  const params = initParams(config, 1);
  const generator = await createGenerator(runtime, config);
  const prompts = Array.from({ length: batch }, (_, b) =>
    Array.from({ length: promptLen }, (_, j) => (b * 31 + j * 7) % 256),
  );
  for (const s of samplers) {
    // eosId -1: every row runs every step.
    const call = async (maxNewTokens: number, seed: number) => {
      const start = performance.now();
      await generator.generate({ params, prompts, maxNewTokens, ...s, seed, eosId: -1, padId: 0 });
      return (performance.now() - start) / 1000;
    };
    await call(1 + steps, 0); // warm-up
    const short: number[] = [];
    const long: number[] = [];
    for (let r = 0; r < repeats; r++) {
      short.push(await call(1, r + 1));
      long.push(await call(1 + steps, r + 1));
    }
    const perStep = (Math.min(...long) - Math.min(...short)) / steps;
    results.push({
      preset,
      vocab: config.vocabSize,
      batch,
      promptLen,
      ...s,
      msPerDecodeStep: +(perStep * 1000).toFixed(2),
    });
    console.error(JSON.stringify(results.at(-1)));
  }
  await generator.release();
}
await runtime.close();
console.log(
  JSON.stringify({ bench: 'decode-step', device: runtime.device, steps, repeats, results }, null, 2),
);
