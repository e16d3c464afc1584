// LoRA vs full fine-tuning: step time of the fused SFT train step and peak memory of the process, alone and with
// the reference model a DPO / PPO-like stage keeps resident beside the trained policy (full: a second weight copy
// and its scoring session, open through training; LoRA: the same base, adapter off, in one scoring graph with the
// policy). Shapes: GPT-2 small, Qwen3-0.6B's (bench/shapes.ts) or a tiny one (the test). Each mode runs in its
// own child process so peak RSS (ORT's CPU arena included; on CUDA device memory is not in it) is its own; a child
// past --max-rss-mb is killed and reported. Prints JSON.
// Run: npx tsx bench/lora.ts [--shape gpt2|qwen3-0.6b|tiny] [--layers <shape's>] [--batch 4] [--seq 128]
//   [--steps 4] [--calls 3] [--r 8] [--modes lora,full,lora+reference,full+reference] [--max-rss-mb 16500]
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildTrainStep, createTrainer } from '@rlhf/graph';
import {
  adapterSize,
  countParams,
  createLoraScorer,
  createScorer,
  type GptConfig,
  gptConfigFromHf,
  initLora,
  initParams,
  type LoraScoreSide,
  type LoraSettings,
  loraParamShapes,
  paramShapes,
  presetConfig,
} from '@rlhf/model';
import { createRuntime, int64, type Weights, weightFeeds } from '@rlhf/runtime';
import { loraSftLossGraph, sftLossGraph } from '@rlhf/sft';
import { runChild } from './child.js';
import { QWEN3_0_6B, QWEN3_TINY } from './shapes.js';

const arg = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
};
const MODES = ['lora', 'full', 'lora+reference', 'full+reference'] as const;
type Mode = (typeof MODES)[number];
const SHAPES = ['gpt2', 'qwen3-0.6b', 'tiny'] as const;
type Shape = (typeof SHAPES)[number];
const options = {
  shape: arg('shape', 'gpt2') as Shape,
  layers: arg('layers', ''),
  batch: Number(arg('batch', '4')),
  seq: Number(arg('seq', '128')),
  steps: Number(arg('steps', '4')),
  calls: Number(arg('calls', '3')),
  r: Number(arg('r', '8')),
  modes: arg('modes', MODES.join(',')).split(',') as Mode[],
  maxRssMb: Number(arg('max-rss-mb', '16500')),
  device: arg('device', 'cpu'),
};
if (!SHAPES.includes(options.shape)) throw new Error(`--shape: one of ${SHAPES.join(', ')}`);
for (const mode of options.modes) if (!MODES.includes(mode)) throw new Error(`--modes: ${MODES.join(', ')}`);

/** The shape's config (--layers overrides its depth) and its LoRA targets (bench/scale.ts's for Qwen3). */
function shapeOf(shape: Shape): { config: GptConfig; settings: LoraSettings } {
  const llama = shape !== 'gpt2';
  const hf = shape === 'tiny' ? QWEN3_TINY : QWEN3_0_6B;
  const config = llama
    ? gptConfigFromHf(options.layers ? { ...hf, num_hidden_layers: Number(options.layers) } : hf)
    : presetConfig('gpt2', { nLayer: Number(options.layers || 12) });
  const settings: LoraSettings = {
    r: options.r,
    alpha: 2 * options.r,
    dropout: llama ? 0 : 0.05,
    targetModules: llama ? ['q_proj', 'v_proj'] : ['c_attn', 'c_proj', 'c_fc'],
    useRslora: false,
    modulesToSave: [],
  };
  return { config, settings };
}
const { config, settings } = shapeOf(options.shape);
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
const peakRssMiB = () => mib(process.resourceUsage().maxRSS * 1024);
const tokens = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % config.vocabSize);
const maxDiff = (a: number[][], b: number[][]) =>
  a.flat().reduce((m, x, i) => Math.max(m, Math.abs(x - b.flat()[i])), 0);

/** Mean milliseconds of `calls` runs of `f`. */
async function timed(f: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < options.calls; i++) await f();
  return Math.round((performance.now() - started) / options.calls);
}

/**
 * One mode in this process: build, warm up, time `calls` fused calls. With the reference, every call is preceded
 * by scoring one batch of responses under the policy and the reference (as a PPO / online-DPO rollout does),
 * the reference's scorer created before training and released after it.
 */
async function measure(mode: Mode) {
  const runtime = await createRuntime({ device: options.device });
  const { batch: B, seq: T, steps: K } = options;
  const base = initParams(config, 0);
  const lora = mode.startsWith('lora');
  const graph = lora ? loraSftLossGraph(config, settings, B) : sftLossGraph(config, B);
  const params = lora ? loraParamShapes(config, settings) : paramShapes(config);
  const trainStep = buildTrainStep({ name: `bench_${mode}`, params, ...graph, steps: K });
  const initial: Weights = lora ? initLora(config, settings, base, 0) : new Map(base);
  // Full: the trainer takes the initial weights as its own (one copy, updated in place), as bench/scale.ts does.
  const trainer = await createTrainer(runtime, trainStep, { params: initial, adopt: !lora });
  const shared = lora ? weightFeeds(paramShapes(config), base, 'float32', 'base.') : {};
  const rows = K * B * T;
  const feeds = {
    input_ids: int64([K, 1, B, T], tokens(rows, 1)),
    targets: int64([K, 1, B, T], tokens(rows, 2)),
    loss_mask: { type: 'float32' as const, dims: [K, 1, B, T], data: new Float32Array(rows).fill(1) },
  };
  const request = {
    prompts: Array.from({ length: B }, (_, b) => tokens(T / 2, b + 3)),
    padId: 0,
    responses: Array.from({ length: B }, (_, b) => tokens(T / 2, b + 9)),
    responseMask: Array.from({ length: B }, () => new Array(T / 2).fill(1)),
  };
  const loraScorer = (sides: LoraScoreSide[]) =>
    createLoraScorer(runtime, config, settings, 'float32', sides);
  let score: (() => Promise<unknown>) | undefined;
  let releaseScorer = async () => {};
  if (mode === 'lora+reference') {
    const scorer = await loraScorer(['policy', 'reference']);
    score = () => scorer.score({ ...request, base, adapter: trainer.state.params });
    releaseScorer = () => scorer.release();
  } else if (mode === 'full+reference') {
    const reference = new Map([...base].map(([k, v]) => [k, v.slice()])); // the frozen SFT copy
    const scorer = await createScorer(runtime, config, { outputs: ['logprobs'] });
    score = async () => {
      await scorer.score({ ...request, params: trainer.state.params });
      await scorer.score({ ...request, params: reference });
    };
    releaseScorer = () => scorer.release();
  }
  // Warm-up: session creation and the first runs.
  await score?.();
  await trainer.run(feeds, 1e-4, shared);
  let scoreMs = 0;
  let trainMs = 0;
  for (let i = 0; i < options.calls; i++) {
    let started = performance.now();
    await score?.();
    scoreMs += performance.now() - started;
    started = performance.now();
    await trainer.run(feeds, 1e-4, shared);
    trainMs += performance.now() - started;
  }
  const peak = peakRssMiB(); // before the scorers below, which are not resident in training
  await releaseScorer();
  // What asking for one side saves (DPO's reference pass, its policy evaluations): each side alone vs both.
  let sides: Record<string, number> | undefined;
  if (mode === 'lora+reference') {
    const [both, reference, policy] = [
      await loraScorer(['policy', 'reference']),
      await loraScorer(['reference']),
      await loraScorer(['policy']),
    ];
    const req = { ...request, base, adapter: trainer.state.params };
    const [b, r, p] = [await both.score(req), await reference.score(req), await policy.score(req)]; // warm-up
    sides = {
      bothSidesMs: await timed(() => both.score(req)),
      referenceOnlyMs: await timed(() => reference.score(req)),
      policyOnlyMs: await timed(() => policy.score(req)),
      referenceMaxDiff: maxDiff(r.refLogprobs!, b.refLogprobs!),
      policyMaxDiff: maxDiff(p.logprobs!, b.logprobs!),
    };
    for (const s of [both, reference, policy]) await s.release();
  }
  await trainer.release();
  await runtime.close();
  const trainable = lora ? adapterSize(config, settings) : countParams(config);
  return {
    mode,
    trainableParams: trainable,
    optimizerStateMiB: mib(8 * trainable),
    stepMs: Math.round(trainMs / (options.calls * K)),
    ...(score ? { referenceScoreMs: Math.round(scoreMs / options.calls) } : {}),
    peakRssMiB: peak,
    ...(sides ? { sides } : {}),
  };
}

const child = process.argv.indexOf('--mode');
if (child >= 0) {
  process.stdout.write(`${JSON.stringify(await measure(process.argv[child + 1] as Mode))}\n`);
} else {
  const self = fileURLToPath(import.meta.url);
  const load = () => loadavg().map((x) => Math.round(100 * x) / 100);
  const startedAt = { date: new Date().toISOString(), loadavg: load() };
  const modes: Record<string, unknown>[] = [];
  for (const mode of options.modes)
    modes.push(
      await runChild([...process.execArgv, self, ...process.argv.slice(2), '--mode', mode], options.maxRssMb),
    );
  const of = (mode: Mode) =>
    modes.find((m) => m.mode === mode && !m.failed) as Record<string, number> | undefined;
  const ratio = (a: Mode, b: Mode, key: string) => {
    const [x, y] = [of(a), of(b)];
    return x && y ? Math.round((100 * x[key]) / y[key]) / 100 : null;
  };
  console.log(
    JSON.stringify(
      {
        bench: 'lora',
        started: startedAt,
        ended: { date: new Date().toISOString(), loadavg: load() },
        model: { shape: options.shape, params: countParams(config), lora: settings },
        options,
        modes,
        loraVsFull: {
          stepTime: ratio('lora', 'full', 'stepMs'),
          peakRss: ratio('lora', 'full', 'peakRssMiB'),
          peakRssWithReference: ratio('lora+reference', 'full+reference', 'peakRssMiB'),
        },
      },
      null,
      2,
    ),
  );
}
