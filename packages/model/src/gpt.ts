// A GPT-2 decoder (Radford et al. 2019) as an ONNX graph, read top to bottom like nanoGPT's model.py:
// parameters -> attention -> MLP -> block -> model -> heads. Weights are graph inputs (never initializers)
// so one weight copy serves rollout, scoring and training graphs; the float dtype comes from the weights.
// The public functions (gptHidden, gptForward, lmHead, scalarHead, kvShape) take either architecture and hand a
// Llama-family config to llama.ts, so generation, scoring, training and export serve both.
import {
  add,
  concat,
  type DType,
  gather,
  type Graph,
  gelu,
  layerNorm,
  matmul,
  mul,
  reshape,
  type Shape,
  softmax,
  split,
  squeeze,
  type Tensor,
  tanh,
  transpose,
  transposeLast2,
  where,
} from '@rlhf/graph';
import {
  type Gpt2Config,
  type GptConfig,
  headDimOf,
  isLlama,
  kvHeadsOf,
  paramShapes,
  validateConfig,
} from './config.js';
import {
  decoderLayer,
  forwardContext,
  type GptForwardOptions,
  type GptHidden,
  type GptParams,
  type KvCache,
  MASKED_SCORE,
  param,
  scaled,
  withAdapter,
  withVirtualTokens,
  dropVirtual,
} from './decoder.js';
import { llamaHidden, llamaLinear } from './llama.js';

export type { GptForwardOptions, GptHidden, GptParams, KvCache } from './decoder.js';

export interface GptOutput extends GptHidden {
  /** Next-token logits [B, T, V]. */
  logits: Tensor;
  /** Scalar head per position [B, T] (reward / value models), when config.scalarHead. */
  values?: Tensor;
}

/** Declares every parameter as a graph input named and shaped exactly like paramShapes. */
export function gptParamInputs(graph: Graph, config: GptConfig, dtype: DType = 'float32'): GptParams {
  const params: GptParams = new Map();
  for (const { name, shape } of paramShapes(config)) params.set(name, graph.input(name, dtype, shape));
  return params;
}

/** y = x @ W + b (HF Conv1D orientation: W is [in, out]), plus its LoRA adapter when params hold one. */
function linear(params: GptParams, name: string, x: Tensor): Tensor {
  const y = add(matmul(x, param(params, `${name}.weight`)), param(params, `${name}.bias`));
  return withAdapter(params, name, x, y);
}

/** [B, T, d] -> [B, nHead, T, headDim]: heads are contiguous column blocks (HF layout). */
function splitHeads(x: Tensor, nHead: number, headDim: number): Tensor {
  return transpose(reshape(x, [0, 0, nHead, headDim]), [0, 2, 1, 3]);
}

/**
 * Multi-head causal self-attention (Vaswani et al. 2017 §3.2): softmax(q kᵀ / sqrt(headDim)) v over the
 * keys `allowed` marks, with the cached keys/values of earlier tokens in front of the current ones.
 */
function causalSelfAttention(
  params: GptParams,
  prefix: string,
  config: Gpt2Config,
  x: Tensor,
  allowed: Tensor,
  past: KvCache | undefined,
): { y: Tensor; present: KvCache } {
  const d = config.nEmbd;
  const headDim = d / config.nHead;
  const [q, k, v] = split(linear(params, `${prefix}.c_attn`, x), [d, d, d], 2).map((t) =>
    splitHeads(t, config.nHead, headDim),
  );
  const key = past ? concat([past.key, k], 2) : k;
  const value = past ? concat([past.value, v], 2) : v;
  const scores = matmul(scaled(q, 1 / Math.sqrt(headDim)), transposeLast2(key)); // [B, H, T, S]
  const probs = softmax(where(allowed, scores, MASKED_SCORE), -1);
  const heads = matmul(probs, value); // [B, H, T, headDim]
  const y = reshape(transpose(heads, [0, 2, 1, 3]), [0, 0, d]);
  return { y: linear(params, `${prefix}.c_proj`, y), present: { key, value } };
}

/**
 * GELU, tanh form (Hendrycks & Gimpel 2016): 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³))). ORT's float64
 * Gelu kernel is only float32-accurate (~6e-9), so float64 graphs spell the formula out.
 */
function geluTanh(x: Tensor): Tensor {
  if (x.dtype !== 'float64') return gelu(x);
  const inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(tanh(inner), 1));
}

/** Position-wise feed-forward network: GELU(x W_fc + b) W_proj + b, width 4d. */
function mlp(params: GptParams, prefix: string, x: Tensor): Tensor {
  return linear(params, `${prefix}.c_proj`, geluTanh(linear(params, `${prefix}.c_fc`, x)));
}

/** Pre-LN transformer block (GPT-2 §2.3): x + attn(ln_1(x)), then + mlp(ln_2(x)). */
function block(
  params: GptParams,
  layer: number,
  config: Gpt2Config,
  x: Tensor,
  allowed: Tensor,
  past: KvCache | undefined,
): { x: Tensor; present: KvCache } {
  const h = `h.${layer}`;
  const eps = config.layerNormEps;
  const ln = (name: string, t: Tensor) =>
    layerNorm(t, param(params, `${h}.${name}.weight`), param(params, `${h}.${name}.bias`), eps);
  const attn = causalSelfAttention(params, `${h}.attn`, config, ln('ln_1', x), allowed, past);
  const afterAttn = add(x, attn.y);
  return { x: add(afterAttn, mlp(params, `${h}.mlp`, ln('ln_2', afterAttn))), present: attn.present };
}

/** The decoder trunk: embeddings, nLayer blocks, final norm. ids int64 [B, T]. Either architecture. */
export function gptHidden(
  params: GptParams,
  config: GptConfig,
  ids: Tensor,
  options: GptForwardOptions = {},
): GptHidden {
  validateConfig(config);
  if (isLlama(config)) return llamaHidden(params, config, ids, options);
  // Prompt tuning's virtual tokens (when params hold them) go in front of the token embeddings.
  const virtual = withVirtualTokens(params, gather(param(params, 'wte.weight'), ids), options);
  const { pastKv } = options;
  const { positions, allowed } = forwardContext(config.nLayer, virtual.x, virtual.options);

  let x = add(virtual.x, gather(param(params, 'wpe.weight'), positions));
  const presentKv: KvCache[] = [];
  for (let layer = 0; layer < config.nLayer; layer++) {
    const out = decoderLayer(options.recompute, x, (input) =>
      block(params, layer, config, input, allowed, pastKv?.[layer]),
    );
    x = out.x;
    presentKv.push(out.present);
  }
  const hidden = layerNorm(x, param(params, 'ln_f.weight'), param(params, 'ln_f.bias'), config.layerNormEps);
  return { hidden: dropVirtual(hidden, virtual.virtual), presentKv };
}

/**
 * The LM head's weight [d, V]: `lm_head.weight`ᵀ when the model has one (untied Llama family), else the tied
 * embedding's transpose (wteᵀ, embed_tokensᵀ). A decode Loop computes it once, outside its body.
 */
export function lmHeadWeight(params: GptParams): Tensor {
  const untied = params.get('lm_head.weight');
  if (untied) return transpose(untied, [1, 0]);
  const embedding = params.has('wte.weight') ? 'wte.weight' : 'model.embed_tokens.weight';
  return transpose(param(params, embedding), [1, 0]);
}

/** LM head: logits = hidden @ lmHeadWeight, [..., V]. */
export function lmHead(params: GptParams, hidden: Tensor, weight: Tensor = lmHeadWeight(params)): Tensor {
  return matmul(hidden, weight);
}

/**
 * Scalar head (reward / value): hidden @ score.weight + score.bias, [..., d] -> [...]; the Llama family's
 * `score.weight` is [1, d] (nn.Linear), GPT-2's [d, 1] (Conv1D).
 */
export function scalarHead(params: GptParams, hidden: Tensor): Tensor {
  const score = params.has('wte.weight')
    ? linear(params, 'score', hidden)
    : llamaLinear(params, 'score', hidden, true);
  return squeeze(score, [hidden.rank - 1]);
}

/** The whole model: trunk plus LM head (and the scalar head when the config has one). */
export function gptForward(
  params: GptParams,
  config: GptConfig,
  ids: Tensor,
  options: GptForwardOptions = {},
): GptOutput {
  const { hidden, presentKv } = gptHidden(params, config, ids, options);
  const logits = lmHead(params, hidden);
  return config.scalarHead
    ? { logits, hidden, values: scalarHead(params, hidden), presentKv }
    : { logits, hidden, presentKv };
}

/** Shape of one layer's cached keys/values with a symbolic length: [batch, kvHeads, length, headDim]. */
export function kvShape(config: GptConfig, batch: string | null, length: string | null): Shape {
  return [batch, kvHeadsOf(config), length, headDimOf(config)];
}
