// The sampler alone, before/after the sort-free variant: one next-token draw from logits [32, V] (V = 50,257,
// GPT-2's vocabulary), temperature 1, no filter. 'filtered' sorts the whole vocabulary (TopK(k = V), the sampler
// before); 'plain' is the inverse CDF over the unsorted CumSum. Calls interleaved; medians. Prints JSON.
// Run: npx tsx bench/sampler.ts [--vocab 50257] [--batch 32] [--repeats 40]
import { Graph } from '@rlhf/graph';
import { sampleTokens } from '@rlhf/model';
import { createRuntime, hostTensor } from '@rlhf/runtime';

const arg = (name: string, fallback: string) =>
  process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : Number(fallback);
const V = arg('--vocab', '50257');
const B = arg('--batch', '32');
const repeats = arg('--repeats', '40');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const runtime = await createRuntime({ device: 'cpu' });
const graphOf = (kind: 'plain' | 'filtered') => {
  const g = new Graph(kind);
  const logits = g.input('logits', 'float32', ['batch', V]);
  const tokens = sampleTokens(
    logits,
    g.input('uniform', 'float32', ['batch']),
    {
      temperature: g.input('temperature', 'float32', []),
      topK: g.input('top_k', 'int64', []),
      topP: g.input('top_p', 'float32', []),
    },
    kind,
  );
  g.output(tokens, 'tokens');
  return g.toBytes();
};
const sessions = {
  filtered: await runtime.createSession(graphOf('filtered'), { name: 'filtered' }),
  plain: await runtime.createSession(graphOf('plain'), { name: 'plain' }),
};
const logits = Float32Array.from({ length: B * V }, () => 4 * (Math.random() - 0.5));
const feeds = () => ({
  logits: hostTensor('float32', [B, V], logits),
  uniform: hostTensor('float32', [B], Array.from({ length: B }, Math.random)),
  temperature: hostTensor('float32', [], [1]),
  top_k: hostTensor('int64', [], [0]),
  top_p: hostTensor('float32', [], [1]),
});
const ms: Record<string, number[]> = { filtered: [], plain: [] };
for (let r = 0; r < repeats + 3; r++)
  for (const [kind, session] of Object.entries(sessions)) {
    const start = performance.now();
    await session.run(feeds());
    if (r >= 3) ms[kind].push(performance.now() - start); // 3 warm-ups
  }
for (const session of Object.values(sessions)) await session.release();
await runtime.close();
const [before, after] = [median(ms.filtered), median(ms.plain)];
console.log(
  JSON.stringify(
    {
      bench: 'sampler',
      vocab: V,
      batch: B,
      repeats,
      msFullSort: +before.toFixed(2),
      msSortFree: +after.toFixed(2),
      speedup: +(before / after).toFixed(1),
    },
    null,
    2,
  ),
);
