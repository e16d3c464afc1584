// Training steps per second, fused (K steps in one ONNX Loop per run) vs unfused (one run per step), for a
// small MLP and a tiny GPT-shaped network. Prints JSON. Run: npx tsx bench/graph.ts [--device cuda:0]
import {
  add,
  buildTrainStep,
  cast,
  crossEntropy,
  createTrainer,
  matmul,
  type ParamSpec,
  rng,
  type Tensor,
  type TrainStepSpec,
  tanh,
} from '@rlhf/graph';
import { tinyGptLoss, tinyGptParams } from '@rlhf/graph/testing';
import { createRuntime, float32, type HostTensor, int64, type Runtime, type Weights } from '@rlhf/runtime';

const device = process.argv.includes('--device') ? process.argv[process.argv.indexOf('--device') + 1] : 'cpu';
const K = 32; // steps per fused run
const SECONDS = 5; // per measurement

function randomParams(params: readonly ParamSpec[], seed: number): Weights {
  const random = rng(seed);
  return new Map(
    params.map((p) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      return [p.name, Float32Array.from({ length: n }, () => (random() * 2 - 1) * 0.1)];
    }),
  );
}

/** Steps per second of a train step with `steps` per run, measured for about SECONDS. */
async function stepsPerSecond(
  runtime: Runtime,
  spec: TrainStepSpec,
  steps: number,
  batchFor: (steps: number) => Record<string, HostTensor>,
): Promise<number> {
  const trainer = await createTrainer(runtime, buildTrainStep({ ...spec, steps }), {
    params: randomParams(spec.params, 1),
  });
  const batch = batchFor(steps);
  await trainer.run(batch, 1e-3); // warm-up
  let done = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    await trainer.run(batch, 1e-3);
    done += steps;
  }
  const rate = done / ((performance.now() - start) / 1000);
  await trainer.release();
  return rate;
}

async function compare(
  runtime: Runtime,
  name: string,
  spec: TrainStepSpec,
  batchFor: (steps: number) => Record<string, HostTensor>,
) {
  const unfused = await stepsPerSecond(runtime, spec, 1, batchFor);
  const fused = await stepsPerSecond(runtime, spec, K, batchFor);
  const params = spec.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  return {
    name,
    params,
    stepsPerRun: K,
    unfusedStepsPerSec: round(unfused),
    fusedStepsPerSec: round(fused),
    speedup: round(fused / unfused),
  };
}

const round = (x: number) => Math.round(x * 100) / 100;

const random = rng(2);
const fill = (n: number, f: () => number) => Array.from({ length: n }, f);

// MLP: 32 -> 128 -> 128 -> 10 tanh classifier, batch 64.
const [IN, HID, OUT, BATCH] = [32, 128, 10, 64];
const mlp: TrainStepSpec = {
  name: 'mlp',
  params: [
    { name: 'w1', shape: [IN, HID] },
    { name: 'b1', shape: [HID] },
    { name: 'w2', shape: [HID, HID] },
    { name: 'b2', shape: [HID] },
    { name: 'w3', shape: [HID, OUT] },
    { name: 'b3', shape: [OUT] },
  ],
  batch: [
    { name: 'x', dtype: 'float32', shape: [BATCH, IN] },
    { name: 'y', dtype: 'int64', shape: [BATCH] },
  ],
  loss: (p, b) => {
    const layer = (x: Tensor, w: Tensor, bias: Tensor) => add(matmul(x, w), bias);
    const w = (name: string) => p.get(name)!;
    const h = tanh(layer(tanh(layer(b.x, w('w1'), w('b1'))), w('w2'), w('b2')));
    return { loss: crossEntropy(layer(h, w('w3'), w('b3')), b.y) };
  },
};
const mlpBatch = (steps: number) => ({
  x: float32(
    [steps, 1, BATCH, IN],
    fill(steps * BATCH * IN, () => random() * 2 - 1),
  ),
  y: int64(
    [steps, 1, BATCH],
    fill(steps * BATCH, () => Math.floor(random() * OUT)),
  ),
});

// Tiny GPT: vocab 64, width 32, 4 heads, 2 layers, batch 8 x 16 tokens.
const gptConfig = { vocab: 64, width: 32, heads: 4, layers: 2, context: 16 };
const [B, T] = [8, 16];
const gpt: TrainStepSpec = {
  name: 'tiny_gpt',
  params: Object.entries(tinyGptParams(gptConfig)).map(([name, shape]) => ({ name, shape })),
  batch: [
    { name: 'tokens', dtype: 'int64', shape: [B, T] },
    { name: 'targets', dtype: 'int64', shape: [B, T] },
    { name: 'mask', dtype: 'float32', shape: [B, T] },
  ],
  loss: (p, b) => ({
    loss: tinyGptLoss(gptConfig, Object.fromEntries(p), b.tokens, b.targets, cast(b.mask, 'float32')),
  }),
};
const gptBatch = (steps: number) => ({
  tokens: int64(
    [steps, 1, B, T],
    fill(steps * B * T, () => Math.floor(random() * gptConfig.vocab)),
  ),
  targets: int64(
    [steps, 1, B, T],
    fill(steps * B * T, () => Math.floor(random() * gptConfig.vocab)),
  ),
  mask: float32(
    [steps, 1, B, T],
    fill(steps * B * T, () => 1),
  ),
});

const runtime = await createRuntime({ device });
const results = [
  await compare(runtime, 'mlp', mlp, mlpBatch),
  await compare(runtime, 'tiny_gpt', gpt, gptBatch),
];
await runtime.close();
console.log(JSON.stringify({ bench: 'graph', device: runtime.device, results }, null, 2));
