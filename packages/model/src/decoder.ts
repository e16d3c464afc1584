// What the GPT-2 (gpt.ts) and Llama-family (llama.ts) decoders share: parameter lookup, the KV cache type,
// forward options, and which keys a query may attend to.
import {
  add,
  and,
  cast,
  checkpoint,
  clip,
  concat,
  constantOfShape,
  cumsum,
  type DType,
  dimOf,
  div,
  equal,
  expand,
  greater,
  greaterOrEqual,
  lessOrEqual,
  matmul,
  mul,
  or,
  randomUniformLike,
  range,
  slice,
  sub,
  type Tensor,
  transpose,
  unsqueeze,
} from '@rlhf/graph';
import { hashString } from './random.js';

/** Parameter tensors by name (paramShapes names). */
export type GptParams = Map<string, Tensor>;

/** One layer's attention keys and values, [B, kvHeads, S, headDim] (S = tokens seen so far). */
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
  /**
   * Recompute each layer's activations in the backward pass instead of keeping them (gradient checkpointing;
   * packages/graph checkpoint): training memory of one layer for about one more forward. Not with LoRA dropout.
   */
  recompute?: boolean;
}

/** One decoder layer, checkpointed when `recompute`: then only its input is kept for the backward pass. */
export function decoderLayer(
  recompute: boolean | undefined,
  x: Tensor,
  layer: (x: Tensor) => { x: Tensor; present: KvCache },
): { x: Tensor; present: KvCache } {
  if (!recompute) return layer(x);
  const [y, key, value] = checkpoint([x], ([input]) => {
    const out = layer(input);
    return [out.x, out.present.key, out.present.value];
  });
  return { x: y, present: { key, value } };
}

export interface GptHidden {
  /** Final hidden states after the last norm, [B, T, d]: the input of the LM and scalar heads. */
  hidden: Tensor;
  /** Keys and values of past + current tokens per layer, [B, kvHeads, Tpast + T, headDim]. */
  presentKv: KvCache[];
}

/** Score of a masked key: large and negative but finite (no inf - inf = NaN anywhere, also in gradients). */
export const MASKED_SCORE = -1e9;

export function param(params: GptParams, name: string): Tensor {
  const p = params.get(name);
  if (!p) throw new Error(`model parameter "${name}" is missing`);
  return p;
}

/** Params-map key of the LoRA scale s (a scalar: adapterScale · α/r); 0 turns every adapter off (the base model). */
export const LORA_SCALE = 'lora.scale';
/** Params-map key of the LoRA dropout probability (a scalar), present in training graphs only. */
export const LORA_DROPOUT = 'lora.dropout';

/**
 * A linear layer's output with its LoRA adapter (Hu et al. 2022 eq. 3): y + s·(dropout(x) Aᵀ) Bᵀ, A [r, in] and
 * B [out, r] as PEFT stores them, when `params` holds `${name}.lora_A.weight`; otherwise y as it is.
 */
export function withAdapter(params: GptParams, name: string, x: Tensor, y: Tensor): Tensor {
  const a = params.get(`${name}.lora_A.weight`);
  if (!a) return y;
  const b = param(params, `${name}.lora_B.weight`);
  const p = params.get(LORA_DROPOUT);
  // Inverted dropout on the adapter's input only (PEFT's lora_dropout); one seed per layer, advancing per run.
  const input = p
    ? div(
        mul(x, cast(greaterOrEqual(randomUniformLike(x, { seed: hashString(name) }), p), x.dtype)),
        sub(1, p),
      )
    : x;
  const delta = matmul(matmul(input, transpose(a, [1, 0])), transpose(b, [1, 0]));
  return add(y, mul(delta, param(params, LORA_SCALE)));
}

/** Params-map key of prompt tuning's virtual-token embeddings [P, d] (Lester et al. 2021; PEFT's key too). */
export const PROMPT_EMBEDDINGS = 'prompt_embeddings';

/**
 * Token embeddings [B, T, d] with the virtual tokens in front, [B, P + T, d], when params hold PROMPT_EMBEDDINGS;
 * as PEFT does for decoders, the mask gets P ones in front and positions are the default ones over the whole
 * sequence (virtual tokens take 0 .. P-1). Callers drop the first `virtual` rows of the hidden states.
 */
export function withVirtualTokens(
  params: GptParams,
  x: Tensor,
  options: GptForwardOptions,
): { x: Tensor; options: GptForwardOptions; virtual: number } {
  const prompt = params.get(PROMPT_EMBEDDINGS);
  if (!prompt) return { x, options, virtual: 0 };
  if (options.pastKv?.length || options.positionIds)
    throw new Error('prompt tuning: a forward with virtual tokens takes no pastKv or positionIds');
  const virtual = prompt.shape[0] as number;
  const batch = dimOf(x, 0);
  const front = expand(unsqueeze(prompt, [0]), [batch, virtual, prompt.shape[1] as number]);
  const mask = options.attentionMask;
  const attentionMask = mask && concat([constantOfShape([batch, virtual], mask.dtype, 1), mask], 1);
  return { x: concat([front, x], 1), options: { ...options, attentionMask }, virtual };
}

/** Hidden states [B, P + T, d] without the P virtual-token rows: the real tokens' [B, T, d]. */
export function dropVirtual(hidden: Tensor, virtual: number): Tensor {
  if (virtual === 0) return hidden;
  return slice(hidden, [virtual], [Number.MAX_SAFE_INTEGER], [1]);
}

/** The float dtype the model is built in: that of its parameters. */
export function paramDtype(params: GptParams): DType {
  const first = params.values().next().value;
  if (!first) throw new Error('the model has no parameters');
  return first.dtype;
}

/**
 * Which keys each query may attend to, bool [B or 1, 1, T, S]: earlier-or-same columns (causal, with Tpast
 * cached columns in front) that hold real tokens. A padding query still sees itself, so no row is empty and
 * padding never looks ahead (chunked decoding then equals one full forward everywhere). A sliding window
 * (Mistral) keeps the keys less than `window` real tokens back: HF counts left padding inside the window, we
 * count real tokens only, so a left-padded row still equals its unpadded forward.
 */
export function attentionAllowed(
  tokens: Tensor,
  past: Tensor,
  mask: Tensor | undefined,
  window?: number,
): Tensor {
  const queryPos = unsqueeze(add(range(0, tokens), past), [1]); // [T, 1]: columns Tpast .. Tpast+T-1
  const keyPos = unsqueeze(range(0, add(tokens, past)), [0]); // [1, S]
  const causal = lessOrEqual(keyPos, queryPos); // [T, S]
  if (!mask) return window === undefined ? causal : and(causal, greater(keyPos, sub(queryPos, window)));
  const realKey = unsqueeze(greater(mask, 0), [1, 2]); // [B, 1, 1, S]
  const allowed = and(causal, or(realKey, equal(keyPos, queryPos)));
  if (window === undefined) return allowed;
  const realCount = cumsum(mask, 1); // [B, S]: real tokens up to and including each column
  const queryCount = slice(realCount, unsqueeze(past, [0]), unsqueeze(add(past, tokens), [0]), [1]); // [B, T]
  const inWindow = greater(unsqueeze(realCount, [1, 2]), sub(unsqueeze(queryCount, [1, 3]), window)); // [B,1,T,S]
  return and(allowed, inWindow);
}

/** Positions of the current tokens: count of real tokens before each one (left padding does not shift them). */
export function defaultPositions(tokens: Tensor, past: Tensor, mask: Tensor | undefined): Tensor {
  if (!mask) return unsqueeze(add(range(0, tokens), past), [0]); // [1, T]
  const positions = clip(sub(cumsum(mask, 1), 1), 0, null); // [B, S]
  return slice(positions, unsqueeze(past, [0]), unsqueeze(add(past, tokens), [0]), [1]);
}

/** What every layer of a forward reads: positions of the current tokens, the attention pattern, Tpast. */
export interface ForwardContext {
  /** int64 [B or 1, T]. */
  positions: Tensor;
  /** bool [T, S] or [B, 1, T, S] (attentionAllowed). */
  allowed: Tensor;
  /** int64 scalar: cached tokens. */
  past: Tensor;
}

/** `ids` is any tensor whose axis 1 is the sequence: token ids [B, T] or embeddings [B, T, d]. */
export function forwardContext(
  nLayer: number,
  ids: Tensor,
  options: GptForwardOptions,
  window?: number,
): ForwardContext {
  const { pastKv } = options;
  if (pastKv && pastKv.length !== nLayer)
    throw new Error(`pastKv has ${pastKv.length} layers, the model has ${nLayer}`);
  const mask = options.attentionMask && cast(options.attentionMask, 'int64');
  const tokens = dimOf(ids, 1);
  const past = pastKv?.length ? dimOf(pastKv[0].key, 2) : ids.graph.root.constant(0, 'int64');
  const positions = options.positionIds ?? defaultPositions(tokens, past, mask);
  return { positions, allowed: attentionAllowed(tokens, past, mask, window), past };
}

/**
 * x · c, for the 1/sqrt(headDim) of attention scores (applied to the queries). ORT folds a scalar factor of a
 * MatMul into FusedMatMul's float32 `alpha`, which rounds 1/sqrt(headDim) in float64 graphs (logit errors ~1e-8
 * when headDim is not a power of 4); a per-column factor [headDim] is not folded.
 */
export function scaled(x: Tensor, c: number): Tensor {
  if (x.dtype !== 'float64') return mul(x, c);
  const width = x.shape[x.rank - 1] as number;
  return mul(x, x.graph.root.constant(new Array(width).fill(c), 'float64', [width]));
}
