// HF config.json of the Llama family (model_type llama, mistral, qwen2, qwen3) to and from LlamaConfig. Fields
// absent from config.json take the defaults of the HF config class of that model_type; anything this
// implementation does not compute (another activation, sliding-window attention inside the context, yarn RoPE,
// ...) fails with one line naming the field and its value.
import { type LlamaConfig, type LlamaModelType, type RopeScaling, validateConfig } from './config.js';
import { CheckpointError } from './safetensors.js';

/** The HF class-name prefix of each model_type (LlamaForCausalLM, Qwen3ForSequenceClassification, ...). */
const CLASS_PREFIX: Record<LlamaModelType, string> = {
  llama: 'Llama',
  mistral: 'Mistral',
  qwen2: 'Qwen2',
  qwen3: 'Qwen3',
};

export const LLAMA_MODEL_TYPES = Object.keys(CLASS_PREFIX) as LlamaModelType[];

/** HF config-class defaults that differ between the model types. */
const DEFAULTS: Record<LlamaModelType, { maxPositions: number; kvHeads?: number; headDim?: number }> = {
  llama: { maxPositions: 2048 },
  mistral: { maxPositions: 4096 * 32, kvHeads: 8 },
  qwen2: { maxPositions: 32768, kvHeads: 32 },
  qwen3: { maxPositions: 32768, kvHeads: 32, headDim: 128 },
};

export function isLlamaModelType(value: unknown): value is LlamaModelType {
  return typeof value === 'string' && value in CLASS_PREFIX;
}

/** Reads an HF config.json object of model_type llama / mistral / qwen2 / qwen3. */
export function llamaConfigFromHf(hf: Record<string, unknown>, source: string): LlamaConfig {
  const modelType = hf.model_type;
  if (!isLlamaModelType(modelType))
    throw new CheckpointError(
      `${source}: model_type ${JSON.stringify(modelType)} is not of the Llama family`,
    );
  const fail = (field: string, value: unknown, why: string): never => {
    throw new CheckpointError(`${source}: ${field} ${JSON.stringify(value)} ${why}`);
  };
  const int = (field: string, fallback?: number): number => {
    const value = hf[field] ?? fallback;
    if (!Number.isSafeInteger(value) || (value as number) < 1)
      fail(field, value, 'must be a positive integer');
    return value as number;
  };
  const num = (field: string, fallback: number, from: Record<string, unknown> = hf): number => {
    const value = from[field] ?? fallback;
    if (!(typeof value === 'number' && Number.isFinite(value) && value > 0))
      fail(field, value, 'must be a positive number');
    return value as number;
  };
  const layers = (): number => {
    const value = hf.num_hidden_layers;
    if (!Number.isSafeInteger(value) || (value as number) < 0)
      fail('num_hidden_layers', value, 'must be a non-negative integer');
    return value as number;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const value = hf[field] ?? fallback;
    if (typeof value !== 'boolean') fail(field, value, 'must be a boolean');
    return value as boolean;
  };

  const prefix = CLASS_PREFIX[modelType];
  let scalarHead = false;
  if (hf.architectures !== undefined && hf.architectures !== null) {
    const archs = hf.architectures;
    if (!Array.isArray(archs) || archs.length !== 1)
      fail('architectures', archs, 'must name one architecture');
    const arch = (archs as unknown[])[0];
    if (arch === `${prefix}ForSequenceClassification`) scalarHead = true;
    else if (arch !== `${prefix}ForCausalLM`)
      fail(
        'architectures',
        arch,
        `is not supported for model_type ${modelType} (${prefix}ForCausalLM, ${prefix}ForSequenceClassification)`,
      );
  }
  if (scalarHead) {
    const labels = hf.num_labels ?? (hf.id2label ? Object.keys(hf.id2label as object).length : 1);
    if (labels !== 1) fail('num_labels', labels, 'is not supported (a scalar head has 1 label)');
  }
  const act = hf.hidden_act ?? hf.hidden_activation ?? 'silu';
  if (act !== 'silu') fail('hidden_act', act, 'is not supported (silu only)');
  if (hf.mlp_bias === true) fail('mlp_bias', true, 'is not supported');
  if (hf.partial_rotary_factor != null && hf.partial_rotary_factor !== 1)
    fail('partial_rotary_factor', hf.partial_rotary_factor, 'is not supported (1 only)');

  const defaults = DEFAULTS[modelType];
  const nEmbd = int('hidden_size');
  const nHead = int('num_attention_heads');
  const maxPositionEmbeddings = int('max_position_embeddings', defaults.maxPositions);
  const numKvHeads = int('num_key_value_heads', defaults.kvHeads ?? nHead);
  const headDim = int('head_dim', defaults.headDim ?? Math.floor(nEmbd / nHead));

  // Mistral's sliding window is computed (when shorter than the context); Qwen2/3's (use_sliding_window, from
  // layer max_window_layers on) is refused unless it covers the whole context.
  const window =
    modelType === 'mistral' ? (hf.sliding_window === undefined ? 4096 : hf.sliding_window) : null;
  if (window !== null && !(Number.isSafeInteger(window) && (window as number) >= 1))
    fail('sliding_window', window, 'must be a positive integer or null');
  const slidingWindow =
    window !== null && (window as number) < maxPositionEmbeddings ? (window as number) : undefined;
  const qwenWindow =
    (modelType === 'qwen2' || modelType === 'qwen3') && hf.use_sliding_window === true
      ? (hf.sliding_window ?? 4096)
      : null;
  if (qwenWindow !== null && !(typeof qwenWindow === 'number' && qwenWindow >= maxPositionEmbeddings))
    fail(
      'sliding_window',
      qwenWindow,
      `is not supported with use_sliding_window: sliding-window attention inside the context (max_position_embeddings ${maxPositionEmbeddings})`,
    );
  if (Array.isArray(hf.layer_types) && hf.layer_types.some((t) => t !== 'full_attention')) {
    const other = hf.layer_types.find((t) => t !== 'full_attention');
    fail('layer_types', other, 'is not supported (full_attention only)');
  }

  // RoPE: rope_theta + rope_scaling (transformers 4.x) or rope_parameters (5.x).
  const ropeParameters = (hf.rope_parameters ?? null) as Record<string, unknown> | null;
  const scalingJson = (ropeParameters ?? hf.rope_scaling ?? null) as Record<string, unknown> | null;
  const ropeTheta = num(
    'rope_theta',
    10000,
    ropeParameters && 'rope_theta' in ropeParameters ? ropeParameters : hf,
  );
  let ropeScaling: RopeScaling | undefined;
  let maxPositions = maxPositionEmbeddings;
  if (scalingJson !== null) {
    if (typeof scalingJson !== 'object') fail('rope_scaling', scalingJson, 'must be an object');
    const type = scalingJson.rope_type ?? scalingJson.type ?? 'default';
    const field = `rope_scaling.${'rope_type' in scalingJson ? 'rope_type' : 'type'}`;
    const factor = () =>
      num('rope_scaling.factor', Number.NaN, { 'rope_scaling.factor': scalingJson.factor });
    const original = (): number => {
      const value = scalingJson.original_max_position_embeddings;
      if (!Number.isSafeInteger(value) || (value as number) < 1)
        fail('rope_scaling.original_max_position_embeddings', value, 'must be a positive integer');
      return value as number;
    };
    if (type === 'linear') ropeScaling = { type: 'linear', factor: factor() };
    else if (type === 'dynamic') {
      // HF grows θ past max_position_embeddings; the usable context is max_position_embeddings · factor.
      ropeScaling = { type: 'dynamic', factor: factor(), originalMaxPositions: maxPositionEmbeddings };
      maxPositions = Math.floor(maxPositionEmbeddings * ropeScaling.factor);
    } else if (type === 'llama3') {
      ropeScaling = {
        type: 'llama3',
        factor: factor(),
        lowFreqFactor: num('rope_scaling.low_freq_factor', Number.NaN, {
          'rope_scaling.low_freq_factor': scalingJson.low_freq_factor,
        }),
        highFreqFactor: num('rope_scaling.high_freq_factor', Number.NaN, {
          'rope_scaling.high_freq_factor': scalingJson.high_freq_factor,
        }),
        originalMaxPositions: original(),
      };
    } else if (type !== 'default') fail(field, type, 'is not supported (default, linear, dynamic, llama3)');
  }

  const attentionBias =
    modelType === 'llama' || modelType === 'qwen3' ? bool('attention_bias', false) : false;
  if (modelType === 'mistral' && hf.attention_bias === true)
    fail('attention_bias', true, 'is not supported for mistral');
  const config: LlamaConfig = {
    architecture: 'llama',
    modelType,
    vocabSize: int('vocab_size'),
    maxPositions,
    nEmbd,
    nLayer: layers(),
    nHead,
    numKvHeads,
    headDim,
    intermediateSize: int('intermediate_size'),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta,
    ...(ropeScaling ? { ropeScaling } : {}),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    qkvBias: modelType === 'qwen2' || attentionBias,
    oBias: attentionBias,
    qkNorm: modelType === 'qwen3',
    ...(slidingWindow ? { slidingWindow } : {}),
    ...(scalarHead ? { scalarHead } : {}),
  };
  try {
    return validateConfig(config);
  } catch (error) {
    throw new CheckpointError(`${source}: ${(error as Error).message}`);
  }
}

/** The model_type a config is written as: its own, else the one whose options it uses. */
function modelTypeOf(config: LlamaConfig): LlamaModelType {
  if (config.modelType) return config.modelType;
  if (config.qkNorm) return 'qwen3';
  if (config.qkvBias && !config.oBias) return 'qwen2';
  return 'llama';
}

/** The HF config.json of a Llama-family config (*ForCausalLM, or *ForSequenceClassification with a scalar head). */
export function llamaConfigToHf(config: LlamaConfig): Record<string, unknown> {
  validateConfig(config);
  const modelType = modelTypeOf(config);
  const unrepresentable = (what: string) => {
    throw new CheckpointError(`config cannot be written as model_type ${modelType}: ${what}`);
  };
  if (config.qkNorm !== (modelType === 'qwen3')) unrepresentable(`qkNorm ${config.qkNorm}`);
  if (modelType === 'qwen2' && !(config.qkvBias && !config.oBias))
    unrepresentable(`qkvBias ${config.qkvBias}, oBias ${config.oBias} (qwen2 has q/k/v biases only)`);
  if (modelType === 'mistral' && (config.qkvBias || config.oBias)) unrepresentable('mistral has no biases');
  if (config.slidingWindow !== undefined && modelType !== 'mistral')
    unrepresentable(`slidingWindow ${config.slidingWindow} (mistral only)`);
  if ((modelType === 'llama' || modelType === 'qwen3') && config.qkvBias !== config.oBias)
    unrepresentable(`qkvBias ${config.qkvBias} and oBias ${config.oBias} differ (attention_bias sets both)`);
  const prefix = CLASS_PREFIX[modelType];
  const scaling = config.ropeScaling;
  const ropeScaling =
    scaling === undefined
      ? null
      : scaling.type === 'linear'
        ? { rope_type: 'linear', factor: scaling.factor }
        : scaling.type === 'dynamic'
          ? { rope_type: 'dynamic', factor: scaling.factor }
          : {
              rope_type: 'llama3',
              factor: scaling.factor,
              low_freq_factor: scaling.lowFreqFactor,
              high_freq_factor: scaling.highFreqFactor,
              original_max_position_embeddings: scaling.originalMaxPositions,
            };
  return {
    model_type: modelType,
    architectures: [`${prefix}${config.scalarHead ? 'ForSequenceClassification' : 'ForCausalLM'}`],
    vocab_size: config.vocabSize,
    hidden_size: config.nEmbd,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.nLayer,
    num_attention_heads: config.nHead,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    hidden_act: 'silu',
    max_position_embeddings: scaling?.type === 'dynamic' ? scaling.originalMaxPositions : config.maxPositions,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: ropeScaling,
    tie_word_embeddings: config.tieWordEmbeddings,
    ...(modelType === 'llama' ? { attention_bias: config.oBias, mlp_bias: false } : {}),
    ...(modelType === 'qwen3' ? { attention_bias: config.oBias } : {}),
    ...(modelType === 'mistral' ? { sliding_window: config.slidingWindow ?? null } : {}),
    ...(modelType === 'qwen2' || modelType === 'qwen3'
      ? { use_sliding_window: false, sliding_window: null }
      : {}),
    attention_dropout: 0,
    initializer_range: 0.02,
    torch_dtype: 'float32',
    use_cache: true,
    ...(config.scalarHead ? { num_labels: 1 } : {}),
  };
}
