// Activation recomputation and gradient accumulation (issue 11: options when memory is the limit): one SFT-shaped
// train step (forward + backward + AdamW, token-mean cross-entropy, K = 1) with every layer's activations kept,
// recomputed (`recompute`), or the batch run as micro-batches (`--accumulate M`). Each mode in its own child
// process, so peak RSS is its own (train sessions run without ORT's CPU arena: packages/graph trainer.ts); the
// step time is the median of --calls after a warm-up call. Prints JSON lines.
// Run: npx tsx bench/recompute.ts [--preset small|gpt2|tiny] [--layers N] [--batch 8] [--seq 256] [--calls 3] [--accumulate 4]
//   [--modes kept,recompute,accumulate,recompute+accumulate] [--max-rss-mb 16500]
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildTrainStep, createTrainer, crossEntropy, slice, type Tensor } from '@rlhf/graph';
import { gptForward, initParams, type PresetName, paramShapes, presetConfig } from '@rlhf/model';
import { createRuntime, int64 } from '@rlhf/runtime';
import { runChild } from './child.js';

const arg = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
};
const options = {
  preset: arg('preset', 'small') as PresetName,
  batch: Number(arg('batch', '8')),
  seq: Number(arg('seq', '256')),
  calls: Number(arg('calls', '3')),
  accumulate: Number(arg('accumulate', '4')),
  modes: arg('modes', 'kept,recompute,accumulate,recompute+accumulate').split(','),
  maxRssMb: Number(arg('max-rss-mb', '16500')),
  layers: arg('layers', ''),
};
const MODES = ['kept', 'recompute', 'accumulate', 'recompute+accumulate'];
for (const mode of options.modes) if (!MODES.includes(mode)) throw new Error(`--modes: ${MODES.join(', ')}`);
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(mode: string) {
  const recompute = mode.startsWith('recompute');
  const M = mode.endsWith('accumulate') ? options.accumulate : 1;
  const config = presetConfig(options.preset, {
    maxPositions: Math.max(options.seq + 1, 8),
    ...(options.layers ? { nLayer: Number(options.layers) } : {}),
  });
  const T = options.seq;
  const micro = options.batch / M;
  if (!Number.isInteger(micro)) throw new Error(`--accumulate ${M} must divide --batch ${options.batch}`);
  const runtime = await createRuntime({ device: 'cpu' });
  const built = performance.now();
  const step = buildTrainStep({
    name: `recompute_${mode}`,
    params: paramShapes(config),
    batch: [{ name: 'tokens', dtype: 'int64', shape: [micro, T + 1] }],
    loss: (params: Map<string, Tensor>, batch: Record<string, Tensor>) => {
      const ids = slice(batch.tokens, [0], [T], [1]);
      const targets = slice(batch.tokens, [1], [T + 1], [1]);
      return { loss: crossEntropy(gptForward(params, config, ids, { recompute }).logits, targets) };
    },
    optimizer: { maxGradNorm: 1 },
    accumulate: M,
  });
  const trainer = await createTrainer(runtime, step, { params: initParams(config, 1) });
  const setupSeconds = (performance.now() - built) / 1000;
  const tokens = int64(
    [1, M, micro, T + 1],
    Array.from({ length: options.batch * (T + 1) }, (_, i) => (i * 7919) % config.vocabSize),
  );
  const seconds: number[] = [];
  for (let call = 0; call <= options.calls; call++) {
    const started = performance.now();
    await trainer.run({ tokens }, [1e-4]);
    if (call > 0) seconds.push((performance.now() - started) / 1000);
  }
  await runtime.close();
  return {
    bench: 'recompute',
    mode,
    preset: options.preset,
    layers: config.nLayer,
    batch: options.batch,
    seq: T,
    microBatches: M,
    setupSeconds: Math.round(setupSeconds * 10) / 10,
    secondsPerStep: Math.round(median(seconds) * 100) / 100,
    tokensPerSecond: Math.round((options.batch * T) / median(seconds)),
    peakRssMiB: mib(process.resourceUsage().maxRSS * 1024),
  };
}

const child = process.argv.indexOf('--mode');
if (child >= 0) console.log(JSON.stringify(await measure(process.argv[child + 1])));
else {
  const self = fileURLToPath(import.meta.url);
  const machine = {
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
    date: new Date().toISOString(),
  };
  for (const mode of options.modes) {
    const result = await runChild(
      [...process.execArgv, self, ...process.argv.slice(2), '--mode', mode],
      options.maxRssMb,
    );
    console.log(JSON.stringify({ ...result, ...machine }));
  }
}
