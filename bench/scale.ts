// A checkpoint of Qwen3-0.6B's shape on the CPU: random bf16 weights written sharded in HF layout (as
// save_pretrained writes them), then, each in its own child process so its peak RSS is its own: the import
// (packages/model's HF loader: index + shards, bf16 -> f32), greedy generation, one full SFT step and one
// LoRA SFT step (r 8, q_proj/v_proj). Prints JSON. `--shape tiny` is the same path at a tiny shape (tested).
// Run: nice npx tsx bench/scale.ts [--shape qwen3-0.6b|tiny] [--seq 64] [--new-tokens 8] [--r 8] [--shard-mb 500]
//   [--modes import,generate,full,lora] [--dir <reuse a written checkpoint>] [--max-rss-mb 21000]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTrainStep, createTrainer } from '@rlhf/graph';
import {
  countParams,
  createGenerator,
  gptConfigFromHf,
  gptConfigToHf,
  initLora,
  type LoraSettings,
  loadCheckpoint,
  loraParamShapes,
  paramShapes,
  type SafeTensor,
  shardWeights,
} from '@rlhf/model';
import { createRuntime, int64, type Weights, weightFeeds } from '@rlhf/runtime';
import { loraSftLossGraph, sftLossGraph } from '@rlhf/sft';
import { runChild } from './child.js';
import { QWEN3_0_6B, QWEN3_TINY } from './shapes.js';

const arg = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
};
const MODES = ['import', 'generate', 'full', 'lora'] as const;
type Mode = (typeof MODES)[number];
const options = {
  shape: arg('shape', 'qwen3-0.6b'),
  seq: Number(arg('seq', '64')),
  newTokens: Number(arg('new-tokens', '8')),
  r: Number(arg('r', '8')),
  shardMb: Number(arg('shard-mb', '500')),
  modes: arg('modes', MODES.join(',')).split(',') as Mode[],
  /** A child past this RSS is killed and reported (default 21000 MiB: under the 24 GB of the target machine). */
  maxRssMb: Number(arg('max-rss-mb', '21000')),
};

const hfConfig = options.shape === 'tiny' ? QWEN3_TINY : QWEN3_0_6B;
const config = gptConfigFromHf(hfConfig);
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
const peakRssMiB = () => mib(process.resourceUsage().maxRSS * 1024);
const tokens = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % config.vocabSize);

/**
 * Random bf16 weights (xorshift32 uniforms, bits truncated to bf16): norms near 1, the rest uniform with
 * std 0.02 as HF's initializer_range, so activations stay finite through 28 layers.
 */
function randomBf16(shape: number[], name: string, seed: number): SafeTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Uint16Array(n);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let x =
    (seed ^ [...name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261)) >>> 0 || 1;
  const norm = name.endsWith('norm.weight');
  const halfWidth = 0.02 * Math.sqrt(3); // uniform [-a, a] has std a/sqrt(3)
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    f[0] = (norm ? 1 : 0) + halfWidth * (2 * (x / 4294967296) - 1);
    out[i] = u[0] >>> 16;
  }
  return { dtype: 'BF16', shape, data: out };
}

/** Writes the checkpoint directory (config.json + shards + index); returns its write time and weight files. */
async function writeCheckpoint(dir: string): Promise<{ ms: number; weightFiles: string[] }> {
  const started = performance.now();
  const tensors = new Map<string, SafeTensor>();
  for (const { name, shape } of paramShapes(config)) tensors.set(name, randomBf16(shape, name, 1));
  const files = shardWeights(tensors, { format: 'pt' }, options.shardMb * 1e6);
  tensors.clear();
  await mkdir(dir, { recursive: true });
  const json = { ...gptConfigToHf(config), torch_dtype: 'bfloat16', bos_token_id: 0, eos_token_id: 1 };
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(json, null, 2)}\n`);
  for (const [name, data] of Object.entries(files)) await writeFile(join(dir, name), data);
  return { ms: Math.round(performance.now() - started), weightFiles: Object.keys(files).sort() };
}

/** One mode in this process, from the checkpoint in `dir`. */
async function measure(mode: Mode, dir: string) {
  let started = performance.now();
  const loaded = await loadCheckpoint(dir);
  const importMs = Math.round(performance.now() - started);
  const params: Weights = loaded.params;
  const result: Record<string, unknown> = { mode, importMs };
  if (mode === 'import') return { ...result, params: countParams(loaded.config), peakRssMiB: peakRssMiB() };
  const runtime = await createRuntime({ device: 'cpu' });
  if (mode === 'generate') {
    started = performance.now();
    const generator = await createGenerator(runtime, loaded.config);
    result.sessionMs = Math.round(performance.now() - started);
    const request = {
      params,
      prompts: [tokens(16, 1)],
      maxNewTokens: options.newTokens,
      temperature: 0,
      eosId: -1,
      padId: 0,
    };
    await generator.generate({ ...request, maxNewTokens: 1 }); // warm-up: first run of the session
    started = performance.now();
    const out = await generator.generate(request);
    const seconds = (performance.now() - started) / 1000;
    result.generatedTokens = out.tokens[0].length;
    result.tokensPerSecond = Math.round((100 * out.tokens[0].length) / seconds) / 100;
    await generator.release();
  } else {
    const lora = mode === 'lora';
    const settings: LoraSettings = {
      r: options.r,
      alpha: 2 * options.r,
      dropout: 0,
      targetModules: ['q_proj', 'v_proj'],
      useRslora: false,
      modulesToSave: [],
    };
    const B = 1;
    const T = options.seq;
    const graph = lora ? loraSftLossGraph(config, settings, B) : sftLossGraph(config, B);
    const specs = lora ? loraParamShapes(config, settings) : paramShapes(config);
    started = performance.now();
    const trainStep = buildTrainStep({ name: `scale_${mode}`, params: specs, ...graph, steps: 1 });
    const trainer = await createTrainer(runtime, trainStep, {
      params: lora ? initLora(config, settings, params, 0) : params,
      adopt: !lora, // full: the loaded weights are the trainer's (one copy, updated in place)
    });
    const shared = lora ? weightFeeds(paramShapes(config), params, 'float32', 'base.') : {};
    const feeds = {
      input_ids: int64([1, 1, B, T], tokens(B * T, 1)),
      targets: int64([1, 1, B, T], tokens(B * T, 2)),
      loss_mask: { type: 'float32' as const, dims: [1, 1, B, T], data: new Float32Array(B * T).fill(1) },
    };
    await trainer.run(feeds, 1e-5, shared); // the first step: session creation included
    result.firstStepMs = Math.round(performance.now() - started);
    started = performance.now();
    const step = await trainer.run(feeds, 1e-5, shared);
    result.sftStepMs = Math.round(performance.now() - started);
    result.loss = Math.round(1e4 * step.loss[0]) / 1e4; // random weights: about ln(vocab)
    result.trainableParams = specs.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    await trainer.release();
  }
  await runtime.close();
  return { ...result, peakRssMiB: peakRssMiB() };
}

const child = process.argv.indexOf('--mode');
if (child >= 0) {
  const mode = process.argv[child + 1] as Mode | 'write';
  const result =
    mode === 'write' ? await writeCheckpoint(arg('dir', '')) : await measure(mode, arg('dir', ''));
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const given = arg('dir', '');
  const dir = given || (await mkdtemp(join(tmpdir(), `scale-${options.shape}-`)));
  const self = fileURLToPath(import.meta.url);
  const childArgs = (mode: string) => [
    ...process.execArgv,
    self,
    ...process.argv.slice(2),
    '--mode',
    mode,
    '--dir',
    dir,
  ];
  // Written in a child too, so this process stays small while the modes run.
  const written = given
    ? null
    : ((await runChild(childArgs('write'), options.maxRssMb)) as { ms?: number; weightFiles?: string[] });
  const modes = [];
  for (const mode of options.modes)
    modes.push(
      await runChild(
        [...process.execArgv, self, ...process.argv.slice(2), '--mode', mode, '--dir', dir],
        options.maxRssMb,
      ),
    );
  if (!given) await rm(dir, { recursive: true, force: true });
  console.log(
    JSON.stringify(
      {
        bench: 'scale',
        model: { shape: options.shape, params: countParams(config), dtype: 'bf16', hf: hfConfig },
        options,
        writeCheckpointMs: written?.ms ?? null,
        weightFiles: written?.weightFiles ?? null,
        modes,
      },
      null,
      2,
    ),
  );
}
