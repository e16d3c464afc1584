// LoRA vs full fine-tuning at GPT-2 small's shape: step time of the fused SFT train step and peak memory of the
// process, with the reference model each RL stage needs (full: a second weight copy and scoring session; LoRA:
// the same base, adapter off, in one scoring graph). Each mode runs in its own child process so peak RSS
// (ORT's CPU arena included; on CUDA device memory is not in it) is its own. Prints JSON.
// Run: npx tsx bench/lora.ts [--layers 12] [--batch 4] [--seq 128] [--steps 4] [--calls 3] [--r 8] [--device cpu]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildTrainStep, createTrainer } from '@rlhf/graph';
import {
  adapterSize,
  countParams,
  createLoraScorer,
  createScorer,
  type GptConfig,
  initLora,
  initParams,
  type LoraSettings,
  loraParamShapes,
  paramShapes,
  presetConfig,
} from '@rlhf/model';
import { createRuntime, int64, type Weights, weightFeeds } from '@rlhf/runtime';
import { loraSftLossGraph, sftLossGraph } from '@rlhf/sft';

const arg = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
};
const options = {
  layers: Number(arg('layers', '12')),
  batch: Number(arg('batch', '4')),
  seq: Number(arg('seq', '128')),
  steps: Number(arg('steps', '4')),
  calls: Number(arg('calls', '3')),
  r: Number(arg('r', '8')),
  device: arg('device', 'cpu'),
};
const MODES = ['lora', 'full', 'full+reference'] as const;
type Mode = (typeof MODES)[number];

const config: GptConfig = presetConfig('gpt2', { nLayer: options.layers });
const settings: LoraSettings = {
  r: options.r,
  alpha: 2 * options.r,
  dropout: 0.05,
  targetModules: ['c_attn', 'c_proj', 'c_fc'],
  useRslora: false,
  modulesToSave: [],
};
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
const tokens = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed) % 50000);

/** One mode in this process: build, warm up, time `calls` fused calls, score once with the reference. */
async function measure(mode: Mode) {
  const runtime = await createRuntime({ device: options.device });
  const { batch: B, seq: T, steps: K } = options;
  const base = initParams(config, 0);
  const lora = mode === 'lora';
  const graph = lora ? loraSftLossGraph(config, settings, B) : sftLossGraph(config, B);
  const params = lora ? loraParamShapes(config, settings) : paramShapes(config);
  const trainStep = buildTrainStep({ name: `bench_${mode}`, params, ...graph, steps: K });
  const initial: Weights = lora ? initLora(config, settings, base, 0) : new Map(base);
  const trainer = await createTrainer(runtime, trainStep, { params: initial });
  const shared = lora ? weightFeeds(paramShapes(config), base, 'float32', 'base.') : {};
  const rows = K * B * T;
  const feeds = {
    input_ids: int64([K, 1, B, T], tokens(rows, 1)),
    targets: int64([K, 1, B, T], tokens(rows, 2)),
    loss_mask: { type: 'float32' as const, dims: [K, 1, B, T], data: new Float32Array(rows).fill(1) },
  };
  await trainer.run(feeds, 1e-4, shared); // warm-up: session creation and the first run
  const started = performance.now();
  for (let i = 0; i < options.calls; i++) await trainer.run(feeds, 1e-4, shared);
  const stepMs = (performance.now() - started) / (options.calls * K);
  // The reference log-probs an RL stage needs on one batch of responses.
  const request = {
    prompts: Array.from({ length: B }, (_, b) => tokens(T / 2, b)),
    padId: 0,
    responses: Array.from({ length: B }, (_, b) => tokens(T / 2, b + 9)),
    responseMask: Array.from({ length: B }, () => new Array(T / 2).fill(1)),
  };
  if (lora) {
    const scorer = await createLoraScorer(runtime, config, settings);
    await scorer.score({ ...request, base, adapter: trainer.state.params });
    await scorer.release();
  } else if (mode === 'full+reference') {
    const reference = new Map([...base].map(([k, v]) => [k, v.slice()])); // the frozen SFT copy
    const scorer = await createScorer(runtime, config, { outputs: ['logprobs'] });
    await scorer.score({ ...request, params: trainer.state.params });
    await scorer.score({ ...request, params: reference });
    await scorer.release();
  }
  await trainer.release();
  await runtime.close();
  const trainable = lora ? adapterSize(config, settings) : countParams(config);
  return {
    mode,
    trainableParams: trainable,
    optimizerStateMiB: mib(8 * trainable),
    stepMs: Math.round(stepMs),
    peakRssMiB: mib(process.resourceUsage().maxRSS * 1024),
  };
}

const child = process.argv.indexOf('--mode');
if (child >= 0) {
  process.stdout.write(`${JSON.stringify(await measure(process.argv[child + 1] as Mode))}\n`);
} else {
  const self = fileURLToPath(import.meta.url);
  const modes = MODES.map((mode) => {
    const out = execFileSync(
      process.execPath,
      [...process.execArgv, self, ...process.argv.slice(2), '--mode', mode],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      },
    );
    return JSON.parse(out.trim().split('\n').at(-1) as string);
  });
  const [lora, full, fullRef] = modes;
  console.log(
    JSON.stringify(
      {
        bench: 'lora',
        model: { preset: 'gpt2', ...options, params: countParams(config), lora: settings },
        modes,
        loraVsFull: {
          stepTime: Math.round((100 * lora.stepMs) / full.stepMs) / 100,
          peakRss: Math.round((100 * lora.peakRssMiB) / full.peakRssMiB) / 100,
          peakRssVsFullWithReference: Math.round((100 * lora.peakRssMiB) / fullRef.peakRssMiB) / 100,
        },
      },
      null,
      2,
    ),
  );
}
