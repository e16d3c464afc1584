// The Llama family (Touvron et al. 2023; Mistral, Qwen2, Qwen3 are variants that config.json selects) as an
// ONNX graph, top to bottom: RMSNorm -> rotary embeddings -> grouped-query attention -> SwiGLU MLP -> block ->
// model. Parameters are HF's, named and shaped as in an HF state dict (nn.Linear weights [out, in]); like
// gpt.ts, they are graph inputs and the float dtype comes from them. gpt.ts dispatches here.
import {
  add,
  cast,
  concat,
  div,
  exp,
  gather,
  greater,
  log,
  matmul,
  mul,
  neg,
  pow,
  reduceMax,
  reduceMean,
  reshape,
  sigmoid,
  softmax,
  split,
  sqrt,
  sub,
  type Tensor,
  transpose,
  transposeLast2,
  unsqueeze,
  where,
  cos as cosine,
  sin as sine,
} from '@rlhf/graph';
import type { LlamaConfig } from './config.js';
import {
  decoderLayer,
  forwardContext,
  type GptForwardOptions,
  type GptHidden,
  type GptParams,
  type KvCache,
  MASKED_SCORE,
  param,
  paramDtype,
  scaled,
  withAdapter,
  withVirtualTokens,
  dropVirtual,
} from './decoder.js';

/** y = x @ Wᵀ (+ b): nn.Linear, W is [out, in]; plus its LoRA adapter when params hold one. */
export function llamaLinear(params: GptParams, name: string, x: Tensor, bias = false): Tensor {
  const y = matmul(x, transpose(param(params, `${name}.weight`), [1, 0]));
  return withAdapter(params, name, x, bias ? add(y, param(params, `${name}.bias`)) : y);
}

/** RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x²) + eps) · weight over the last axis. */
function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const meanSquare = reduceMean(mul(x, x), [-1], true);
  return mul(div(x, sqrt(add(meanSquare, eps))), weight);
}

/** RoPE inverse frequencies θ^(-2i/d), i < d/2, with `linear` and `llama3` scaling (HF `ROPE_INIT_FUNCTIONS`). */
export function ropeInverseFrequencies(config: LlamaConfig): Float64Array {
  const d = config.headDim;
  const inv = Float64Array.from({ length: d / 2 }, (_, i) => config.ropeTheta ** (-(2 * i) / d));
  const scaling = config.ropeScaling;
  if (scaling?.type === 'linear') return inv.map((f) => f / scaling.factor);
  if (scaling?.type === 'llama3') {
    // Long wavelengths (low frequencies) are slowed by `factor`, short ones kept, the band between interpolated.
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions: context } = scaling;
    const lowFreqWavelen = context / lowFreqFactor;
    const highFreqWavelen = context / highFreqFactor;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highFreqWavelen) return f;
      if (wavelen > lowFreqWavelen) return f / factor;
      const smooth = (context / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  return inv;
}

/**
 * cos and sin of the rotation angles, [B or 1, 1, T, headDim], for int64 positions [B or 1, T]: angle
 * position · invFreq[i], repeated for both halves of the head (HF's rotate_half layout). Dynamic NTK scaling
 * recomputes the frequencies in the graph from the longest sequence (max position + 1), as HF does per call; in a
 * decode Loop that is the current length, so past the original context cached keys keep the frequencies they
 * were rotated with (HF's behaviour too) and cached decoding no longer equals one full forward.
 */
function rotaryAngles(
  config: LlamaConfig,
  positions: Tensor,
  dtype: Tensor['dtype'],
): { cos: Tensor; sin: Tensor } {
  const root = positions.graph.root;
  const d = config.headDim;
  const scaling = config.ropeScaling;
  let invFreq: Tensor;
  if (scaling?.type === 'dynamic') {
    const { factor, originalMaxPositions: context } = scaling;
    const length = cast(add(reduceMax(positions), 1), dtype);
    const grown = mul(config.ropeTheta, pow(sub(mul(length, factor / context), factor - 1), d / (d - 2)));
    const base = where(greater(length, context), grown, config.ropeTheta);
    const exponents = root.constant(
      Array.from({ length: d / 2 }, (_, i) => -(2 * i) / d),
      dtype,
      [d / 2],
    );
    invFreq = exp(mul(log(base), exponents));
  } else {
    invFreq = root.constant(Array.from(ropeInverseFrequencies(config)), dtype, [d / 2]);
  }
  const angles = mul(unsqueeze(cast(positions, dtype), [2]), invFreq); // [B, T, d/2]
  const full = unsqueeze(concat([angles, angles], -1), [1]); // [B, 1, T, d]
  return { cos: cosine(full), sin: sine(full) };
}

/** Rotary position embedding (Su et al. 2021), HF layout: x·cos + rotate_half(x)·sin, rotate_half = [−x₂, x₁]. */
function rotate(x: Tensor, angles: { cos: Tensor; sin: Tensor }): Tensor {
  const width = x.shape[3] as number;
  const [x1, x2] = split(x, [width / 2, width / 2], 3);
  return add(mul(x, angles.cos), mul(concat([neg(x2), x1], 3), angles.sin));
}

/**
 * Grouped-query causal self-attention (Ainslie et al. 2023): nHead query heads share numKvHeads key/value
 * heads, query head h reading kv head ⌊h / (nHead/numKvHeads)⌋ (HF repeat_kv). Queries and keys are rotated
 * by RoPE (after Qwen3's per-head RMSNorm); the cache holds rotated keys, [B, numKvHeads, S, headDim].
 */
function attention(
  params: GptParams,
  prefix: string,
  config: LlamaConfig,
  x: Tensor,
  angles: { cos: Tensor; sin: Tensor },
  allowed: Tensor,
  past: KvCache | undefined,
): { y: Tensor; present: KvCache } {
  const { nHead: H, numKvHeads: G, headDim: hd } = config;
  const project = (name: string, heads: number) => {
    let t = reshape(llamaLinear(params, `${prefix}.${name}_proj`, x, config.qkvBias), [0, 0, heads, hd]);
    if (config.qkNorm && name !== 'v')
      t = rmsNorm(t, param(params, `${prefix}.${name}_norm.weight`), config.rmsNormEps);
    return transpose(t, [0, 2, 1, 3]); // [B, heads, T, hd]
  };
  const q = rotate(project('q', H), angles);
  const k = rotate(project('k', G), angles);
  const v = project('v', G);
  const key = past ? concat([past.key, k], 2) : k;
  const value = past ? concat([past.value, v], 2) : v;
  // Queries grouped by the kv head they share: [B, G, H/G, T, hd] against keys [B, G, 1, S, hd].
  const grouped = reshape(q, [0, G, H / G, -1, hd]);
  const scores = matmul(scaled(grouped, 1 / Math.sqrt(hd)), transposeLast2(unsqueeze(key, [2])));
  const mask = allowed.rank === 4 ? unsqueeze(allowed, [1]) : allowed; // [B, 1, 1, T, S] or [T, S]
  const probs = softmax(where(mask, scores, MASKED_SCORE), -1);
  const heads = reshape(matmul(probs, unsqueeze(value, [2])), [0, H, -1, hd]); // [B, H, T, hd]
  const y = reshape(transpose(heads, [0, 2, 1, 3]), [0, 0, H * hd]);
  return { y: llamaLinear(params, `${prefix}.o_proj`, y, config.oBias), present: { key, value } };
}

/**
 * SiLU (Elfwing et al. 2017): z·sigmoid(z). ORT fuses that product into QuickGelu, which has no float64 kernel,
 * so float64 graphs spell it z / (1 + e^-z).
 */
function silu(z: Tensor): Tensor {
  return z.dtype === 'float64' ? div(z, add(exp(neg(z)), 1)) : mul(z, sigmoid(z));
}

/** SwiGLU feed-forward (Shazeer 2020): down(silu(gate(x)) · up(x)). */
function mlp(params: GptParams, prefix: string, x: Tensor): Tensor {
  const gate = llamaLinear(params, `${prefix}.gate_proj`, x);
  const up = llamaLinear(params, `${prefix}.up_proj`, x);
  return llamaLinear(params, `${prefix}.down_proj`, mul(silu(gate), up));
}

/** Pre-norm block: x + attn(input_layernorm(x)), then + mlp(post_attention_layernorm(x)). */
function block(
  params: GptParams,
  layer: number,
  config: LlamaConfig,
  x: Tensor,
  angles: { cos: Tensor; sin: Tensor },
  allowed: Tensor,
  past: KvCache | undefined,
): { x: Tensor; present: KvCache } {
  const l = `model.layers.${layer}`;
  const norm = (name: string, t: Tensor) =>
    rmsNorm(t, param(params, `${l}.${name}.weight`), config.rmsNormEps);
  const attn = attention(params, `${l}.self_attn`, config, norm('input_layernorm', x), angles, allowed, past);
  const afterAttn = add(x, attn.y);
  return {
    x: add(afterAttn, mlp(params, `${l}.mlp`, norm('post_attention_layernorm', afterAttn))),
    present: attn.present,
  };
}

/** The trunk: token embeddings (no position embedding: RoPE), nLayer blocks, final RMSNorm. ids int64 [B, T]. */
export function llamaHidden(
  params: GptParams,
  config: LlamaConfig,
  ids: Tensor,
  options: GptForwardOptions = {},
): GptHidden {
  // Prompt tuning's virtual tokens (when params hold them) go in front of the token embeddings.
  const virtual = withVirtualTokens(params, gather(param(params, 'model.embed_tokens.weight'), ids), options);
  const ctx = forwardContext(config.nLayer, virtual.x, virtual.options, config.slidingWindow);
  const { positions, allowed } = ctx;
  const angles = rotaryAngles(config, positions, paramDtype(params));
  let x = virtual.x;
  const presentKv: KvCache[] = [];
  for (let layer = 0; layer < config.nLayer; layer++) {
    const out = decoderLayer(options.recompute, x, (input) =>
      block(params, layer, config, input, angles, allowed, options.pastKv?.[layer]),
    );
    x = out.x;
    presentKv.push(out.present);
  }
  const hidden = rmsNorm(x, param(params, 'model.norm.weight'), config.rmsNormEps);
  return { hidden: dropVirtual(hidden, virtual.virtual), presentKv };
}
