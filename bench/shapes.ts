// Model shapes the benches share: Qwen/Qwen3-0.6B's config.json (architecture fields; the weights are random)
// and a tiny config of the same family that runs the same paths in seconds (the bench tests).

/** Qwen/Qwen3-0.6B's config.json (the architecture fields; weights random). */
export const QWEN3_0_6B = {
  architectures: ['Qwen3ForCausalLM'],
  model_type: 'qwen3',
  vocab_size: 151936,
  hidden_size: 1024,
  intermediate_size: 3072,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 8,
  head_dim: 128,
  max_position_embeddings: 40960,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  rope_scaling: null,
  tie_word_embeddings: true,
  attention_bias: false,
  hidden_act: 'silu',
  use_sliding_window: false,
  sliding_window: null,
  torch_dtype: 'bfloat16',
};

/** QWEN3_0_6B at a tiny size (2 layers, d 64, vocabulary 512). */
export const QWEN3_TINY = {
  ...QWEN3_0_6B,
  vocab_size: 512,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 32,
  max_position_embeddings: 256,
};
