// A GPT-2 decoder (Radford et al. 2019) as an ONNX graph, read top to bottom like nanoGPT's model.py:
// parameters -> attention -> MLP -> block -> model -> heads. Weights are graph inputs (never initializers)
// so one weight copy serves rollout, scoring and training graphs; the float dtype comes from the weights.
import {
  add,
  and,
  cast,
  clip,
  concat,
  cumsum,
  type DType,
  dimOf,
  equal,
  gather,
  type Graph,
  gelu,
  greater,
  layerNorm,
  lessOrEqual,
  matmul,
  mul,
  or,
  range,
  reshape,
  type Shape,
  slice,
  softmax,
  split,
  squeeze,
  sub,
  type Tensor,
  tanh,
  transpose,
  transposeLast2,
  unsqueeze,
  where,
} from '@rlhf/graph';
import { type GptConfig, paramShapes, validateConfig } from './config.js';

/** Parameter tensors by name (paramShapes names: HF GPT-2 without `transformer.`). */
export type GptParams = Map<string, Tensor>;

/** One layer's attention keys and values, [B, nHead, S, headDim] (S = tokens seen so far). */
export interface KvCache {
  key: Tensor;
  value: Tensor;
}

export interface GptForwardOptions {
  /**
   * [B, Tpast + T], 1 = real token, 0 = padding (left-padded prompts, right-padded responses); any numeric
   * dtype. Covers the cached tokens too, as in HF. Default: every token is real.
   */
  attentionMask?: Tensor;
  /** Keys and values of earlier tokens, one entry per layer. Default: none (Tpast = 0). */
  pastKv?: readonly KvCache[];
  /** int64 [B, T] or [1, T]. Default: cumsum(attentionMask) - 1 clipped at 0 (padding does not count). */
  positionIds?: Tensor;
}

export interface GptHidden {
  /** Final hidden states after ln_f, [B, T, d]: the input of the LM and scalar heads. */
  hidden: Tensor;
  /** Keys and values of past + current tokens per layer, [B, nHead, Tpast + T, headDim]. */
  presentKv: KvCache[];
}

export interface GptOutput extends GptHidden {
  /** Next-token logits [B, T, V]. */
  logits: Tensor;
  /** Scalar head per position [B, T] (reward / value models), when config.scalarHead. */
  values?: Tensor;
}

/** Score of a masked key: large and negative but finite (no inf - inf = NaN anywhere, also in gradients). */
const MASKED_SCORE = -1e9;

/** Declares every parameter as a graph input named and shaped exactly like paramShapes. */
export function gptParamInputs(graph: Graph, config: GptConfig, dtype: DType = 'float32'): GptParams {
  const params: GptParams = new Map();
  for (const { name, shape } of paramShapes(config)) params.set(name, graph.input(name, dtype, shape));
  return params;
}

function param(params: GptParams, name: string): Tensor {
  const p = params.get(name);
  if (!p) throw new Error(`GPT parameter "${name}" is missing`);
  return p;
}

/** y = x @ W + b (HF Conv1D orientation: W is [in, out]). */
function linear(params: GptParams, name: string, x: Tensor): Tensor {
  return add(matmul(x, param(params, `${name}.weight`)), param(params, `${name}.bias`));
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
  config: GptConfig,
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
  const scores = mul(matmul(q, transposeLast2(key)), 1 / Math.sqrt(headDim)); // [B, H, T, S]
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
  config: GptConfig,
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

/**
 * Which keys each query may attend to, bool [B or 1, 1, T, S]: earlier-or-same columns (causal, with Tpast
 * cached columns in front) that hold real tokens. A padding query still sees itself, so no row is empty and
 * padding never looks ahead (chunked decoding then equals one full forward everywhere).
 */
function attentionAllowed(tokens: Tensor, past: Tensor, mask: Tensor | undefined): Tensor {
  const queryPos = unsqueeze(add(range(0, tokens), past), [1]); // [T, 1]: columns Tpast .. Tpast+T-1
  const keyPos = unsqueeze(range(0, add(tokens, past)), [0]); // [1, S]
  const causal = lessOrEqual(keyPos, queryPos); // [T, S]
  if (!mask) return causal;
  const realKey = unsqueeze(greater(mask, 0), [1, 2]); // [B, 1, 1, S]
  return and(causal, or(realKey, equal(keyPos, queryPos)));
}

/** Positions of the current tokens: count of real tokens before each one (left padding does not shift them). */
function defaultPositions(tokens: Tensor, past: Tensor, mask: Tensor | undefined): Tensor {
  if (!mask) return unsqueeze(add(range(0, tokens), past), [0]); // [1, T]
  const positions = clip(sub(cumsum(mask, 1), 1), 0, null); // [B, S]
  return slice(positions, unsqueeze(past, [0]), unsqueeze(add(past, tokens), [0]), [1]);
}

/** The decoder trunk: embeddings, nLayer blocks, final LayerNorm. ids int64 [B, T]. */
export function gptHidden(
  params: GptParams,
  config: GptConfig,
  ids: Tensor,
  options: GptForwardOptions = {},
): GptHidden {
  validateConfig(config);
  const { pastKv } = options;
  if (pastKv && pastKv.length !== config.nLayer)
    throw new Error(`pastKv has ${pastKv.length} layers, the model has ${config.nLayer}`);
  const mask = options.attentionMask && cast(options.attentionMask, 'int64');
  const tokens = dimOf(ids, 1);
  const past = pastKv?.length ? dimOf(pastKv[0].key, 2) : ids.graph.root.constant(0, 'int64');
  const positions = options.positionIds ?? defaultPositions(tokens, past, mask);
  const allowed = attentionAllowed(tokens, past, mask);

  let x = add(gather(param(params, 'wte.weight'), ids), gather(param(params, 'wpe.weight'), positions));
  const presentKv: KvCache[] = [];
  for (let layer = 0; layer < config.nLayer; layer++) {
    const out = block(params, layer, config, x, allowed, pastKv?.[layer]);
    x = out.x;
    presentKv.push(out.present);
  }
  const hidden = layerNorm(x, param(params, 'ln_f.weight'), param(params, 'ln_f.bias'), config.layerNormEps);
  return { hidden, presentKv };
}

/** The tied LM head's weight wteᵀ [d, V]; a decode Loop computes it once, outside its body. */
export function lmHeadWeight(params: GptParams): Tensor {
  return transpose(param(params, 'wte.weight'), [1, 0]);
}

/** Tied LM head: logits = hidden @ wteᵀ, [..., V]. */
export function lmHead(params: GptParams, hidden: Tensor, weight: Tensor = lmHeadWeight(params)): Tensor {
  return matmul(hidden, weight);
}

/** Scalar head (reward / value): hidden @ score.weight + score.bias, [..., d] -> [...]. */
export function scalarHead(params: GptParams, hidden: Tensor): Tensor {
  return squeeze(linear(params, 'score', hidden), [hidden.rank - 1]);
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

/** Shape of one layer's cached keys/values with a symbolic length: [batch, nHead, length, headDim]. */
export function kvShape(config: GptConfig, batch: string | null, length: string | null): Shape {
  return [batch, config.nHead, length, config.nEmbd / config.nHead];
}
