// What the suite measures and at which shapes, shared by our side (ours.ts), the suite's CLI and the runner that
// compares with the PyTorch reference (the model config and these shapes are handed to it as JSON).
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { type GptConfig, gptConfigFromHf, type PresetName, presetConfig } from '@rlhf/model';
import { QWEN3_0_6B, QWEN3_TINY } from '../shapes.js';

export const MODES = ['generate', 'sft-unfused', 'sft-fused', 'ppo'] as const;
export type Mode = (typeof MODES)[number];

/** The same family at a size a test runs in seconds, with room for a 32-token prompt and 64 new tokens. */
const TINY_QWEN3 = { ...QWEN3_TINY, max_position_embeddings: 512 };

export const SUITE_PRESETS = ['tiny', 'small', 'gpt2', 'qwen3-0.6b', 'tiny-qwen3'] as const;
export type SuitePreset = (typeof SUITE_PRESETS)[number];

export function suiteConfig(preset: SuitePreset): GptConfig {
  if (preset === 'qwen3-0.6b') return gptConfigFromHf(QWEN3_0_6B);
  if (preset === 'tiny-qwen3') return gptConfigFromHf(TINY_QWEN3);
  if (!(SUITE_PRESETS as readonly string[]).includes(preset))
    throw new Error(`unknown preset "${preset}" (known: ${SUITE_PRESETS.join(', ')})`);
  return presetConfig(preset as PresetName);
}

/** The shapes of every measurement (issue 11: generation 32 × 64 after 32, SFT 8 × 128). */
export interface SuiteShapes {
  /** Rows of generation and of a PPO rollout. */
  batch: number;
  promptLen: number;
  newTokens: number;
  sftBatch: number;
  seq: number;
  /** Optimizer steps inside one run of the fused SFT step (the unfused step runs one per call). */
  fusedSteps: number;
  /** PPO update: epochs over the rollout batch × minibatches = fused AdamW steps of one iteration. */
  ppoEpochs: number;
  minibatches: number;
  /** Timed calls after the warm-up; the median is reported. */
  calls: number;
  /** Intra-op threads of ORT, and torch.set_num_threads on the reference side. */
  threads: number;
  seed: number;
}

const arg = (argv: readonly string[], name: string, fallback: string) => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? argv[at + 1] : fallback;
};

export function parseShapes(argv: readonly string[]): SuiteShapes {
  const n = (name: string, fallback: number) => Number(arg(argv, name, String(fallback)));
  return {
    batch: n('batch', 32),
    promptLen: n('prompt', 32),
    newTokens: n('new-tokens', 64),
    sftBatch: n('sft-batch', 8),
    seq: n('seq', 128),
    fusedSteps: n('fused-steps', 4),
    ppoEpochs: n('ppo-epochs', 4),
    minibatches: n('minibatches', 1),
    calls: n('calls', 3),
    threads: n('threads', availableParallelism()),
    seed: n('seed', 1),
  };
}

export const parseList = <T extends string>(argv: readonly string[], name: string, fallback: string) =>
  arg(argv, name, fallback).split(',') as T[];
export const argOf = arg;

/** Deterministic token ids in [0, vocab) (the same formula on the reference side). */
export const tokenRows = (rows: number, length: number, vocab: number, seed: number): number[][] =>
  Array.from({ length: rows }, (_, b) =>
    Array.from({ length }, (_, j) => (b * 7919 + j * 104729 + seed * 31) % vocab),
  );

/** What the JSON records about the machine (the dev machine is shared: the load average matters). */
export const machine = () => ({
  cpus: availableParallelism(),
  cpu: cpus()[0]?.model ?? 'unknown',
  memGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  loadavg: loadavg().map((x) => Math.round(100 * x) / 100),
});

export const median = (xs: readonly number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
export const peakRssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);
