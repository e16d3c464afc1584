// Decode step time of in-graph generation, before/after the sort-free sampler, in one process and interleaved
// (so a loaded machine slows both alike): the 'filtered' graph without a filter sorts the whole vocabulary every
// step (TopK(k = V), the sampler before), the 'plain' graph samples by inverse CDF over the unsorted CumSum.
// Step time = (time of a call with 1 + S new tokens − time of a call with 1) / S, so prefill cancels out;
// batch 32, prompt 32, temperature 1. Prints JSON.
// Run: npx tsx bench/decode-step.ts [--presets small,gpt2] [--steps 8] [--repeats 5] [--device cpu]
import {
  buildGenerationGraph,
  initParams,
  leftPad,
  paramFeeds,
  type PresetName,
  presetConfig,
} from '@rlhf/model';
import { createRuntime, hostTensor, type Session } from '@rlhf/runtime';

const arg = (name: string, fallback: string) =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback;
const presets = arg('--presets', 'small,gpt2').split(',') as PresetName[];
const steps = Number(arg('--steps', '8'));
const repeats = Number(arg('--repeats', '5'));
const batch = 32;
const promptLen = 32;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const runtime = await createRuntime({ device: arg('--device', 'cpu') });
const results = [];
for (const preset of presets) {
  const config = presetConfig(preset);
  const feeds = paramFeeds(config, initParams(config, 1));
  const prompt = leftPad(
    Array.from({ length: batch }, (_, b) =>
      Array.from({ length: promptLen }, (_, j) => (b * 31 + j * 7) % 256),
    ),
    0,
  );
  const sessions: Record<string, Session> = {};
  for (const sampler of ['filtered', 'plain'] as const)
    sessions[sampler] = await runtime.createSession(buildGenerationGraph(config, { sampler }), {
      name: sampler,
    });
  const call = async (session: Session, newTokens: number) => {
    const start = performance.now();
    await session.run({
      ...feeds,
      prompt_ids: prompt.ids,
      prompt_mask: prompt.mask,
      uniforms: hostTensor(
        'float32',
        [newTokens, batch],
        Array.from({ length: newTokens * batch }, Math.random),
      ),
      temperature: hostTensor('float32', [], [1]),
      top_k: hostTensor('int64', [], [0]),
      top_p: hostTensor('float32', [], [1]),
      eos_id: hostTensor('int64', [], [-1]), // every row runs every step
      pad_id: hostTensor('int64', [], [0]),
    });
    return performance.now() - start;
  };
  const perStep: Record<string, number[]> = { filtered: [], plain: [] };
  for (const session of Object.values(sessions)) await call(session, 1 + steps); // warm-up
  for (let r = 0; r < repeats; r++)
    for (const [sampler, session] of Object.entries(sessions)) {
      const short = await call(session, 1);
      perStep[sampler].push(((await call(session, 1 + steps)) - short) / steps);
    }
  for (const session of Object.values(sessions)) await session.release();
  const before = median(perStep.filtered);
  const after = median(perStep.plain);
  results.push({
    preset,
    vocab: config.vocabSize,
    batch,
    promptLen,
    msPerStepFullSort: +before.toFixed(2),
    msPerStepSortFree: +after.toFixed(2),
    speedup: +(before / after).toFixed(2),
  });
  console.error(JSON.stringify(results.at(-1)));
}
await runtime.close();
console.log(
  JSON.stringify({ bench: 'decode-step', device: runtime.device, steps, repeats, results }, null, 2),
);
