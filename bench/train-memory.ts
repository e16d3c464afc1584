// Peak memory of full-SFT train steps: the in-place trainer (@rlhf/graph createTrainer) vs the copying one it
// replaced (packages/model/src/testing/copying-trainer.ts), and ORT's CPU arena / memory pattern on or off. One
// configuration per process (peak RSS is the process's maxRSS); run several to compare.
//   npx tsx bench/train-memory.ts [--layers 12] [--batch 1] [--seq 64] [--steps 1] [--calls 2]
//     [--trainer in-place|copying] [--arena on|off] [--mem-pattern on|off]
import { loadavg } from 'node:os';
import { buildTrainStep, createTrainer } from '@rlhf/graph';
import { initParams, paramShapes, presetConfig } from '@rlhf/model';
import { createRuntime, int64 } from '@rlhf/runtime';
import { sftLossGraph } from '@rlhf/sft';
import {
  buildCopyingTrainStep,
  createCopyingTrainer,
} from '../packages/model/src/testing/copying-trainer.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const options = {
  layers: Number(arg('layers', '12')),
  batch: Number(arg('batch', '1')),
  seq: Number(arg('seq', '64')),
  steps: Number(arg('steps', '1')),
  calls: Number(arg('calls', '2')),
  trainer: arg('trainer', 'in-place'),
  arena: arg('arena', 'on') === 'on',
  memPattern: arg('mem-pattern', 'on') === 'on',
};
const config = presetConfig('gpt2', { nLayer: options.layers });
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
const { batch: B, seq: T, steps: K } = options;
const tokens = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % config.vocabSize);

const runtime = await createRuntime();
const session = { enableCpuMemArena: options.arena, enableMemPattern: options.memPattern };
const spec = { name: 'train_memory', params: paramShapes(config), ...sftLossGraph(config, B), steps: K };
const init = { params: initParams(config, 0), adopt: true };
const trainer =
  options.trainer === 'copying'
    ? await createCopyingTrainer(runtime, buildCopyingTrainStep(spec), init, session)
    : await createTrainer(runtime, buildTrainStep(spec), init, session);
const rows = K * B * T;
const feeds = {
  input_ids: int64([K, 1, B, T], tokens(rows, 1)),
  targets: int64([K, 1, B, T], tokens(rows, 2)),
  loss_mask: { type: 'float32' as const, dims: [K, 1, B, T], data: new Float32Array(rows).fill(1) },
};
const started = performance.now();
let loss = 0;
for (let i = 0; i < options.calls; i++) loss = (await trainer.run(feeds, 1e-4)).loss[0];
const stepMs = Math.round((performance.now() - started) / (options.calls * K));
await trainer.release();
await runtime.close();
console.log(
  JSON.stringify({
    ...options,
    params: paramShapes(config).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0),
    stepMs,
    loss: Math.round(loss * 1e4) / 1e4,
    peakRssMiB: mib(process.resourceUsage().maxRSS * 1024),
    load: loadavg()[0].toFixed(2),
    date: new Date().toISOString(),
  }),
);
