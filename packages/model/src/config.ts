import { createRng } from './random.js';

/** Hyperparameters of a GPT-2 style decoder (Radford et al. 2019). */
export interface GptConfig {
  vocabSize: number;
  /** Longest sequence the position embedding covers (HF `n_positions`). */
  maxPositions: number;
  /** Model width d (HF `n_embd`). */
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** LayerNorm epsilon (HF `layer_norm_epsilon`, 1e-5). */
  layerNormEps: number;
  /** Adds a scalar head `score` on the final hidden states (reward model / value model). */
  scalarHead?: boolean;
}

/** A parameter's name (HF GPT-2 naming without `transformer.`) and shape. */
export interface ParamShape {
  name: string;
  shape: number[];
}

export class GptConfigError extends Error {
  override name = 'GptConfigError';
}

const BYTE_VOCAB = 259; // ByteTokenizer: 256 bytes + bos, eos, pad

/** Named configurations: `tiny` trains in seconds on a CPU, `small` ~10.8 M params, `gpt2` = HF GPT-2 small. */
export const presets = {
  tiny: { vocabSize: BYTE_VOCAB, maxPositions: 64, nEmbd: 64, nLayer: 2, nHead: 4, layerNormEps: 1e-5 },
  small: { vocabSize: BYTE_VOCAB, maxPositions: 256, nEmbd: 384, nLayer: 6, nHead: 6, layerNormEps: 1e-5 },
  gpt2: { vocabSize: 50257, maxPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12, layerNormEps: 1e-5 },
} as const satisfies Record<string, GptConfig>;

export type PresetName = keyof typeof presets;

/** A preset with some fields replaced, validated. */
export function presetConfig(name: PresetName, overrides: Partial<GptConfig> = {}): GptConfig {
  const preset: GptConfig | undefined = presets[name];
  if (!preset) {
    throw new GptConfigError(`unknown preset "${name}" (known: ${Object.keys(presets).join(', ')})`);
  }
  return validateConfig({ ...preset, ...overrides });
}

/** Throws GptConfigError naming the first bad field; returns the config unchanged when valid. */
export function validateConfig(config: GptConfig): GptConfig {
  const positiveInts = ['vocabSize', 'maxPositions', 'nEmbd', 'nHead'] as const;
  for (const field of positiveInts) {
    const value = config[field];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new GptConfigError(`${field} must be a positive integer, got ${value}`);
    }
  }
  if (!Number.isSafeInteger(config.nLayer) || config.nLayer < 0) {
    throw new GptConfigError(`nLayer must be a non-negative integer, got ${config.nLayer}`);
  }
  if (config.nEmbd % config.nHead !== 0) {
    throw new GptConfigError(
      `nEmbd (${config.nEmbd}) must be divisible by nHead (${config.nHead}) to split it into heads`,
    );
  }
  if (!(Number.isFinite(config.layerNormEps) && config.layerNormEps > 0)) {
    throw new GptConfigError(`layerNormEps must be a positive number, got ${config.layerNormEps}`);
  }
  if (config.scalarHead !== undefined && typeof config.scalarHead !== 'boolean') {
    throw new GptConfigError(`scalarHead must be a boolean, got ${String(config.scalarHead)}`);
  }
  return config;
}

/** Every parameter in a fixed order, Conv1D orientation [in, out] so that y = x @ W + b. */
export function paramShapes(config: GptConfig): ParamShape[] {
  validateConfig(config);
  const { vocabSize: V, maxPositions: P, nEmbd: d } = config;
  const shapes: ParamShape[] = [
    { name: 'wte.weight', shape: [V, d] },
    { name: 'wpe.weight', shape: [P, d] },
  ];
  for (let i = 0; i < config.nLayer; i++) {
    const h = `h.${i}`;
    shapes.push(
      { name: `${h}.ln_1.weight`, shape: [d] },
      { name: `${h}.ln_1.bias`, shape: [d] },
      { name: `${h}.attn.c_attn.weight`, shape: [d, 3 * d] },
      { name: `${h}.attn.c_attn.bias`, shape: [3 * d] },
      { name: `${h}.attn.c_proj.weight`, shape: [d, d] },
      { name: `${h}.attn.c_proj.bias`, shape: [d] },
      { name: `${h}.ln_2.weight`, shape: [d] },
      { name: `${h}.ln_2.bias`, shape: [d] },
      { name: `${h}.mlp.c_fc.weight`, shape: [d, 4 * d] },
      { name: `${h}.mlp.c_fc.bias`, shape: [4 * d] },
      { name: `${h}.mlp.c_proj.weight`, shape: [4 * d, d] },
      { name: `${h}.mlp.c_proj.bias`, shape: [d] },
    );
  }
  shapes.push({ name: 'ln_f.weight', shape: [d] }, { name: 'ln_f.bias', shape: [d] });
  if (config.scalarHead) {
    shapes.push({ name: 'score.weight', shape: [d, 1] }, { name: 'score.bias', shape: [1] });
  }
  return shapes;
}

/** Number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((n, dim) => n * dim, 1);
}

/** Total parameter count (tied embeddings: the LM head adds none). */
export function countParams(config: GptConfig): number {
  return paramShapes(config).reduce((n, p) => n + shapeSize(p.shape), 0);
}

const INIT_STD = 0.02; // HF GPT-2 `initializer_range`

/**
 * GPT-2 initialisation (Radford et al. 2019 §2.3; HF `GPT2PreTrainedModel._init_weights`):
 * weights and embeddings ~ N(0, 0.02), residual projections (`c_proj.weight`) ~ N(0, 0.02/sqrt(2·nLayer)),
 * biases 0, LayerNorm weight 1. Each tensor draws from its own stream (seed, name), so adding
 * a scalar head leaves the other tensors unchanged.
 */
export function initParams(config: GptConfig, seed: number): Map<string, Float32Array> {
  const params = new Map<string, Float32Array>();
  for (const { name, shape } of paramShapes(config)) {
    const data = new Float32Array(shapeSize(shape));
    if (/(^|\.)ln_(1|2|f)\.weight$/.test(name)) {
      data.fill(1);
    } else if (name.endsWith('.weight')) {
      const std = name.endsWith('c_proj.weight') ? INIT_STD / Math.sqrt(2 * config.nLayer) : INIT_STD;
      const rng = createRng(seed, name);
      for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
    }
    params.set(name, data);
  }
  return params;
}
