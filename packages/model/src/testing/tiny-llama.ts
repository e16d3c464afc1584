// Test fixtures: tiny random Llama-family checkpoints as Hugging Face writes them (config.json + tensors named
// and shaped as in the HF state dict), one per variant. The tensor list is derived from the HF config here,
// independently of paramShapes, so loading them checks our naming.
import { createRng } from '../random.js';

export type HfConfig = Record<string, unknown>;

const base = { hidden_act: 'silu', initializer_range: 0.02, rms_norm_eps: 1e-6, attention_dropout: 0 };

/** Llama with grouped-query attention (4 query heads, 2 kv heads) and Llama 3.1 RoPE scaling, untied. */
export const llamaGqaLlama3: HfConfig = {
  ...base,
  model_type: 'llama',
  architectures: ['LlamaForCausalLM'],
  vocab_size: 37,
  hidden_size: 32,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rope_theta: 10000,
  // wavelengths 2π/invFreq = 6.3, 63, 628, 6283: one in the smoothed band (4, 16), three slowed by factor.
  rope_scaling: {
    rope_type: 'llama3',
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 16,
  },
  tie_word_embeddings: false,
  attention_bias: false,
  mlp_bias: false,
};

/** Qwen2: q/k/v biases (no o_proj bias), one kv head (multi-query attention). */
export const qwen2Biases: HfConfig = {
  ...base,
  model_type: 'qwen2',
  architectures: ['Qwen2ForCausalLM'],
  vocab_size: 29,
  hidden_size: 24,
  intermediate_size: 36,
  num_hidden_layers: 2,
  num_attention_heads: 3,
  num_key_value_heads: 1,
  max_position_embeddings: 32,
  rope_theta: 1000000,
  tie_word_embeddings: false,
  use_sliding_window: false,
  sliding_window: null,
};

/** Qwen3: per-head q/k RMSNorm, head_dim 12 ≠ hidden 32 / 4 heads, tied embeddings. */
export const qwen3QkNorm: HfConfig = {
  ...base,
  model_type: 'qwen3',
  architectures: ['Qwen3ForCausalLM'],
  vocab_size: 31,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 12,
  max_position_embeddings: 40,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  attention_bias: false,
  use_sliding_window: false,
  sliding_window: null,
};

/** Mistral (no sliding window within the context), GQA 4:2. */
export const mistral: HfConfig = {
  ...base,
  model_type: 'mistral',
  architectures: ['MistralForCausalLM'],
  vocab_size: 27,
  hidden_size: 32,
  intermediate_size: 56,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  max_position_embeddings: 32,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: false,
};

/** Mistral with a sliding window of 4 tokens inside its 32-token context. */
export const mistralWindow: HfConfig = { ...mistral, vocab_size: 21, sliding_window: 4 };

/** Llama with attention_bias (q/k/v/o biases) and linear RoPE scaling, tied. */
export const llamaBiasLinear: HfConfig = {
  ...llamaGqaLlama3,
  vocab_size: 23,
  num_key_value_heads: 4,
  rope_scaling: { type: 'linear', factor: 2 },
  tie_word_embeddings: true,
  attention_bias: true,
};

/** Llama with dynamic NTK RoPE: max_position_embeddings 8, used up to 16 tokens. */
export const llamaDynamic: HfConfig = {
  ...llamaGqaLlama3,
  vocab_size: 19,
  max_position_embeddings: 8,
  rope_scaling: { rope_type: 'dynamic', factor: 2 },
};

export const variants: [string, HfConfig][] = [
  ['llama (GQA, llama3 rope scaling)', llamaGqaLlama3],
  ['qwen2 (q/k/v biases, MQA)', qwen2Biases],
  ['qwen3 (q/k norm, head_dim != hidden/heads, tied)', qwen3QkNorm],
  ['mistral', mistral],
  ['mistral (sliding window 4)', mistralWindow],
  ['llama (attention_bias, linear rope scaling, tied)', llamaBiasLinear],
];

const n = (c: HfConfig, key: string) => c[key] as number;

/** HF state-dict names and shapes of a Llama-family config (modeling_{llama,mistral,qwen2,qwen3}.py). */
export function hfLlamaShapes(c: HfConfig): [string, number[]][] {
  const d = n(c, 'hidden_size');
  const heads = n(c, 'num_attention_heads');
  const kv = n(c, 'num_key_value_heads');
  const hd = (c.head_dim as number | undefined) ?? d / heads;
  const inter = n(c, 'intermediate_size');
  const V = n(c, 'vocab_size');
  const qkvBias = c.model_type === 'qwen2' || c.attention_bias === true;
  const oBias = c.model_type !== 'qwen2' && c.attention_bias === true;
  const out: [string, number[]][] = [['model.embed_tokens.weight', [V, d]]];
  for (let i = 0; i < n(c, 'num_hidden_layers'); i++) {
    const l = `model.layers.${i}`;
    out.push(
      [`${l}.self_attn.q_proj.weight`, [heads * hd, d]],
      [`${l}.self_attn.k_proj.weight`, [kv * hd, d]],
      [`${l}.self_attn.v_proj.weight`, [kv * hd, d]],
      [`${l}.self_attn.o_proj.weight`, [d, heads * hd]],
    );
    if (qkvBias)
      out.push(
        [`${l}.self_attn.q_proj.bias`, [heads * hd]],
        [`${l}.self_attn.k_proj.bias`, [kv * hd]],
        [`${l}.self_attn.v_proj.bias`, [kv * hd]],
      );
    if (oBias) out.push([`${l}.self_attn.o_proj.bias`, [d]]);
    if (c.model_type === 'qwen3')
      out.push([`${l}.self_attn.q_norm.weight`, [hd]], [`${l}.self_attn.k_norm.weight`, [hd]]);
    out.push(
      [`${l}.mlp.gate_proj.weight`, [inter, d]],
      [`${l}.mlp.up_proj.weight`, [inter, d]],
      [`${l}.mlp.down_proj.weight`, [d, inter]],
      [`${l}.input_layernorm.weight`, [d]],
      [`${l}.post_attention_layernorm.weight`, [d]],
    );
  }
  out.push(['model.norm.weight', [d]]);
  // *ForSequenceClassification: a `score` Linear without bias instead of the LM head.
  const classifier = (c.architectures as string[] | undefined)?.[0]?.endsWith('ForSequenceClassification');
  if (classifier) out.push(['score.weight', [1, d]]);
  else if (c.tie_word_embeddings !== true) out.push(['lm_head.weight', [V, d]]);
  return out;
}

/**
 * Random weights in HF layout: embeddings ~ N(0, 1), Linear weights ~ N(0, 1.5/sqrt(in)) (so attention is far
 * from uniform), biases ~ N(0, 0.3), norm weights 1 + N(0, 0.2).
 */
export function hfLlamaWeights(c: HfConfig, seed: number): Map<string, Float32Array> {
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of hfLlamaShapes(c)) {
    const rng = createRng(seed, name);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const norm = name.endsWith('norm.weight');
    const std = norm
      ? 0.2
      : name.endsWith('.bias')
        ? 0.3
        : name.includes('embed')
          ? 1
          : 1.5 / Math.sqrt(shape[1]);
    for (let i = 0; i < data.length; i++) data[i] = (norm ? 1 : 0) + std * rng.normal();
    weights.set(name, data);
  }
  return weights;
}
