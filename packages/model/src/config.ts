import { createRng } from './random.js';

// Two decoder families share one config type, told apart by `architecture` (absent = GPT-2, so every config and
// checkpoint written before the Llama family existed still reads as GPT-2): GPT-2 (gpt.ts) and the Llama family
// (llama.ts: Llama, Mistral, Qwen2, Qwen3).

/** Fields every decoder has. */
interface DecoderConfig {
  vocabSize: number;
  /** Longest sequence the model is used for (HF `n_positions` / `max_position_embeddings`). */
  maxPositions: number;
  /** Model width d (HF `n_embd` / `hidden_size`). */
  nEmbd: number;
  nLayer: number;
  /** Attention (query) heads (HF `n_head` / `num_attention_heads`). */
  nHead: number;
  /** Adds a scalar head `score` on the final hidden states (reward model / value model). */
  scalarHead?: boolean;
}

/** Hyperparameters of a GPT-2 style decoder (Radford et al. 2019). */
export interface Gpt2Config extends DecoderConfig {
  architecture?: 'gpt2';
  /** LayerNorm epsilon (HF `layer_norm_epsilon`, 1e-5). */
  layerNormEps: number;
}

/** The HF `model_type`s of the Llama family: the same maths, different defaults and options. */
export type LlamaModelType = 'llama' | 'mistral' | 'qwen2' | 'qwen3';

/** RoPE frequency scaling (HF `rope_scaling`). */
export type RopeScaling =
  /** Positions divided by `factor` (Chen et al. 2023, position interpolation). */
  | { type: 'linear'; factor: number }
  /**
   * Dynamic NTK: past `originalMaxPositions` tokens, θ grows to θ·(factor·L/L₀ − (factor − 1))^(d/(d−2)) for the
   * current length L (HF `_compute_dynamic_ntk_parameters`); within it, plain RoPE.
   */
  | { type: 'dynamic'; factor: number; originalMaxPositions: number }
  /** Llama 3.1's per-frequency scaling (HF `_compute_llama3_parameters`). */
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    };

/**
 * Hyperparameters of a Llama-family decoder (Touvron et al. 2023): RMSNorm, rotary position embeddings,
 * grouped-query attention, SwiGLU MLP. Qwen2 adds q/k/v biases, Qwen3 per-head q/k RMSNorm.
 */
export interface LlamaConfig extends DecoderConfig {
  architecture: 'llama';
  /** Which HF model_type the checkpoint came from (config.json on export); default `llama`. */
  modelType?: LlamaModelType;
  /** SwiGLU width (HF `intermediate_size`). */
  intermediateSize: number;
  /** Key/value heads, dividing nHead (HF `num_key_value_heads`; = nHead without GQA). */
  numKvHeads: number;
  /** Width of one head (HF `head_dim`; Qwen3's is not nEmbd / nHead). */
  headDim: number;
  /** RMSNorm epsilon (HF `rms_norm_eps`). */
  rmsNormEps: number;
  /** RoPE base θ (HF `rope_theta`). */
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  /** LM head = embed_tokensᵀ (no `lm_head.weight`). */
  tieWordEmbeddings: boolean;
  /** Biases on q_proj, k_proj, v_proj (Qwen2 always; Llama/Qwen3 `attention_bias`). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama/Qwen3 `attention_bias`). */
  oBias: boolean;
  /** RMSNorm over each head of q and k before RoPE (Qwen3 `q_norm` / `k_norm`). */
  qkNorm: boolean;
  /** Mistral's sliding-window attention: a query sees the last `slidingWindow` columns (itself included). */
  slidingWindow?: number;
}

/** A decoder config; GPT-2 when `architecture` is absent. */
export type GptConfig = Gpt2Config | LlamaConfig;

export function isLlama(config: GptConfig): config is LlamaConfig {
  return config.architecture === 'llama';
}

/** Width of one attention head. */
export function headDimOf(config: GptConfig): number {
  return isLlama(config) ? config.headDim : config.nEmbd / config.nHead;
}

/** Heads of the KV cache (fewer than the query heads with grouped-query attention). */
export function kvHeadsOf(config: GptConfig): number {
  return isLlama(config) ? config.numKvHeads : config.nHead;
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

/**
 * Named configurations: `tiny` trains in seconds on a CPU, `small` ~10.8 M params, `gpt2` = HF GPT-2 small;
 * `tiny-llama` is `tiny`'s size in the Llama family (GQA 4:2, untied embeddings).
 */
export const presets = {
  tiny: { vocabSize: BYTE_VOCAB, maxPositions: 64, nEmbd: 64, nLayer: 2, nHead: 4, layerNormEps: 1e-5 },
  small: { vocabSize: BYTE_VOCAB, maxPositions: 256, nEmbd: 384, nLayer: 6, nHead: 6, layerNormEps: 1e-5 },
  gpt2: { vocabSize: 50257, maxPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12, layerNormEps: 1e-5 },
  'tiny-llama': {
    architecture: 'llama',
    modelType: 'llama',
    vocabSize: BYTE_VOCAB,
    maxPositions: 64,
    nEmbd: 64,
    nLayer: 2,
    nHead: 4,
    numKvHeads: 2,
    headDim: 16,
    intermediateSize: 176,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
    qkvBias: false,
    oBias: false,
    qkNorm: false,
  },
} as const satisfies Record<string, GptConfig>;

export type PresetName = keyof typeof presets;

/** A preset with some fields replaced, validated. */
export function presetConfig(name: PresetName, overrides: Partial<GptConfig> = {}): GptConfig {
  const preset: GptConfig | undefined = presets[name];
  if (!preset) {
    throw new GptConfigError(`unknown preset "${name}" (known: ${Object.keys(presets).join(', ')})`);
  }
  return validateConfig({ ...preset, ...overrides } as GptConfig);
}

function checkPositiveInts(config: object, fields: readonly string[]): void {
  for (const field of fields) {
    const value = (config as Record<string, unknown>)[field];
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw new GptConfigError(`${field} must be a positive integer, got ${value}`);
    }
  }
}

function checkPositive(config: object, field: string): void {
  const value = (config as Record<string, unknown>)[field];
  if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    throw new GptConfigError(`${field} must be a positive number, got ${value}`);
  }
}

function checkBoolean(config: object, field: string, optional = false): void {
  const value = (config as Record<string, unknown>)[field];
  if (optional && value === undefined) return;
  if (typeof value !== 'boolean')
    throw new GptConfigError(`${field} must be a boolean, got ${String(value)}`);
}

const MODEL_TYPES: readonly LlamaModelType[] = ['llama', 'mistral', 'qwen2', 'qwen3'];

function validateLlama(config: LlamaConfig): void {
  checkPositiveInts(config, ['intermediateSize', 'numKvHeads', 'headDim']);
  if (config.nHead % config.numKvHeads !== 0) {
    throw new GptConfigError(
      `nHead (${config.nHead}) must be divisible by numKvHeads (${config.numKvHeads}) to group the query heads`,
    );
  }
  if (config.headDim % 2 !== 0) {
    throw new GptConfigError(`headDim must be even for rotary embeddings, got ${config.headDim}`);
  }
  checkPositive(config, 'rmsNormEps');
  checkPositive(config, 'ropeTheta');
  for (const field of ['tieWordEmbeddings', 'qkvBias', 'oBias', 'qkNorm']) checkBoolean(config, field);
  if (config.slidingWindow !== undefined) checkPositiveInts(config, ['slidingWindow']);
  if (config.modelType !== undefined && !MODEL_TYPES.includes(config.modelType)) {
    throw new GptConfigError(`modelType "${config.modelType}" is not one of ${MODEL_TYPES.join(', ')}`);
  }
  const scaling = config.ropeScaling;
  if (scaling === undefined) return;
  const type = (scaling as { type?: unknown }).type;
  if (type !== 'linear' && type !== 'dynamic' && type !== 'llama3') {
    throw new GptConfigError(`ropeScaling.type "${String(type)}" is not supported (linear, dynamic, llama3)`);
  }
  const fields = {
    linear: ['factor'],
    dynamic: ['factor', 'originalMaxPositions'],
    llama3: ['factor', 'lowFreqFactor', 'highFreqFactor', 'originalMaxPositions'],
  }[type];
  for (const field of fields) {
    const value = (scaling as unknown as Record<string, unknown>)[field];
    if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
      throw new GptConfigError(`ropeScaling.${field} must be a positive number, got ${value}`);
    }
  }
  if (scaling.type === 'llama3' && !(scaling.highFreqFactor > scaling.lowFreqFactor)) {
    throw new GptConfigError(
      `ropeScaling.highFreqFactor (${scaling.highFreqFactor}) must exceed lowFreqFactor (${scaling.lowFreqFactor})`,
    );
  }
}

/** Throws GptConfigError naming the first bad field; returns the config unchanged when valid. */
export function validateConfig<C extends GptConfig>(config: C): C {
  const arch = (config as { architecture?: unknown }).architecture;
  if (arch !== undefined && arch !== 'gpt2' && arch !== 'llama') {
    throw new GptConfigError(`architecture "${String(arch)}" is not supported (gpt2, llama)`);
  }
  checkPositiveInts(config, ['vocabSize', 'maxPositions', 'nEmbd', 'nHead']);
  if (!Number.isSafeInteger(config.nLayer) || config.nLayer < 0) {
    throw new GptConfigError(`nLayer must be a non-negative integer, got ${config.nLayer}`);
  }
  if (isLlama(config)) {
    validateLlama(config);
  } else {
    if (config.nEmbd % config.nHead !== 0) {
      throw new GptConfigError(
        `nEmbd (${config.nEmbd}) must be divisible by nHead (${config.nHead}) to split it into heads`,
      );
    }
    if (!(Number.isFinite(config.layerNormEps) && config.layerNormEps > 0)) {
      throw new GptConfigError(`layerNormEps must be a positive number, got ${config.layerNormEps}`);
    }
  }
  checkBoolean(config, 'scalarHead', true);
  return config;
}

/**
 * Every parameter in a fixed order. GPT-2: HF names without `transformer.`, Conv1D orientation [in, out]
 * (y = x @ W + b). Llama family: HF names and nn.Linear orientation [out, in] (y = x @ Wᵀ + b), so an HF
 * state dict is a rename-free copy.
 */
export function paramShapes(config: GptConfig): ParamShape[] {
  validateConfig(config);
  return isLlama(config) ? llamaParamShapes(config) : gpt2ParamShapes(config);
}

function gpt2ParamShapes(config: Gpt2Config): ParamShape[] {
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

/**
 * HF Llama/Mistral/Qwen2/Qwen3 names. The scalar head is `score.weight` [1, d] as in HF
 * *ForSequenceClassification, plus our `score.bias` [1] (zero when the checkpoint has none); a scalar-head
 * model keeps its LM head, as the GPT-2 one does.
 */
function llamaParamShapes(config: LlamaConfig): ParamShape[] {
  const { vocabSize: V, nEmbd: d, nHead: H, numKvHeads: G, headDim: hd, intermediateSize: I } = config;
  const shapes: ParamShape[] = [{ name: 'model.embed_tokens.weight', shape: [V, d] }];
  for (let i = 0; i < config.nLayer; i++) {
    const l = `model.layers.${i}`;
    shapes.push({ name: `${l}.input_layernorm.weight`, shape: [d] });
    for (const [proj, out] of [
      ['q_proj', H * hd],
      ['k_proj', G * hd],
      ['v_proj', G * hd],
    ] as const) {
      shapes.push({ name: `${l}.self_attn.${proj}.weight`, shape: [out, d] });
      if (config.qkvBias) shapes.push({ name: `${l}.self_attn.${proj}.bias`, shape: [out] });
    }
    shapes.push({ name: `${l}.self_attn.o_proj.weight`, shape: [d, H * hd] });
    if (config.oBias) shapes.push({ name: `${l}.self_attn.o_proj.bias`, shape: [d] });
    if (config.qkNorm) {
      shapes.push(
        { name: `${l}.self_attn.q_norm.weight`, shape: [hd] },
        { name: `${l}.self_attn.k_norm.weight`, shape: [hd] },
      );
    }
    shapes.push(
      { name: `${l}.post_attention_layernorm.weight`, shape: [d] },
      { name: `${l}.mlp.gate_proj.weight`, shape: [I, d] },
      { name: `${l}.mlp.up_proj.weight`, shape: [I, d] },
      { name: `${l}.mlp.down_proj.weight`, shape: [d, I] },
    );
  }
  shapes.push({ name: 'model.norm.weight', shape: [d] });
  if (!config.tieWordEmbeddings) shapes.push({ name: 'lm_head.weight', shape: [V, d] });
  if (config.scalarHead) {
    shapes.push({ name: 'score.weight', shape: [1, d] }, { name: 'score.bias', shape: [1] });
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

const INIT_STD = 0.02; // HF `initializer_range` (GPT-2 and the Llama family)

/**
 * GPT-2 initialisation (Radford et al. 2019 §2.3; HF `GPT2PreTrainedModel._init_weights`):
 * weights and embeddings ~ N(0, 0.02), residual projections (`c_proj.weight`) ~ N(0, 0.02/sqrt(2·nLayer)),
 * biases 0, LayerNorm weight 1. Llama family (HF `LlamaPreTrainedModel._init_weights`): every weight
 * ~ N(0, 0.02), biases 0, RMSNorm weight 1. Each tensor draws from its own stream (seed, name), so adding
 * a scalar head leaves the other tensors unchanged.
 */
export function initParams(config: GptConfig, seed: number): Map<string, Float32Array> {
  const params = new Map<string, Float32Array>();
  const llama = isLlama(config);
  for (const { name, shape } of paramShapes(config)) {
    const data = new Float32Array(shapeSize(shape));
    const isNorm = llama ? /norm\.weight$/.test(name) : /(^|\.)ln_(1|2|f)\.weight$/.test(name);
    if (isNorm) {
      data.fill(1);
    } else if (name.endsWith('.weight')) {
      const residual = !llama && name.endsWith('c_proj.weight');
      const std = residual ? INIT_STD / Math.sqrt(2 * config.nLayer) : INIT_STD;
      const rng = createRng(seed, name);
      for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
    }
    params.set(name, data);
  }
  return params;
}
