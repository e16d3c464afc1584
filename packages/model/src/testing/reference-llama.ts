// A deliberately naive float64 forward pass of the Llama family (Llama: Touvron et al. 2023; Mistral:
// Jiang et al. 2023; Qwen2/Qwen3 technical reports), written with plain loops from Hugging Face
// `transformers` semantics (modeling_llama.py, modeling_mistral.py, modeling_qwen2.py, modeling_qwen3.py,
// modeling_rope_utils.py). It is the ground truth for the ONNX-graph Llama models: keep it independent of
// packages/graph and of the graph builders, and free of tricks.

type Tensor = Float32Array | Float64Array;
type Vec = number[];
type Matrix = number[][]; // rows = positions

const MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;
type ModelType = (typeof MODEL_TYPES)[number];

interface Dims {
  modelType: ModelType;
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  eps: number;
  tie: boolean;
  /** Keys further back than this are masked (Mistral), or null for plain causal attention. */
  slidingWindow: number | null;
}

/**
 * Logits [b][t] (each of length vocab_size) of a Llama / Mistral / Qwen2 / Qwen3 decoder, in float64. `prefix`:
 * input embedding vectors (hidden_size each) before every row's token embeddings (prompt tuning's virtual
 * tokens), at positions 0..P-1; each row's logits then cover all P + T positions.
 */
export function referenceLlamaForward(
  config: Record<string, unknown>,
  weights: ReadonlyMap<string, Float32Array | Float64Array>,
  tokens: readonly (readonly number[])[],
  prefix: readonly (readonly number[])[] = [],
): Float64Array[][] {
  const d = readDims(config);
  const T = tokens.length > 0 ? tokens[0].length : 0;
  for (const row of tokens) {
    if (row.length !== T)
      throw new Error(`all token rows must have the same length (${T}), got ${row.length}`);
    for (const id of row) {
      if (!Number.isInteger(id) || id < 0 || id >= d.vocab)
        throw new Error(`token id ${id} is outside [0, ${d.vocab})`);
    }
  }
  if (T < 1) throw new Error('need at least one token per row');

  const get = (name: string, size: number): Tensor => {
    const w = weights.get(name);
    if (!w) throw new Error(`missing weight ${name}`);
    if (w.length !== size) throw new Error(`weight ${name} has ${w.length} values, expected ${size}`);
    return w;
  };
  const getOpt = (name: string, size: number, required: boolean): Tensor | null =>
    required || weights.has(name) ? get(name, size) : null;

  const { hidden: H, heads, kvHeads, headDim: hd, intermediate: I, vocab: V, eps } = d;
  const attnBias = d.modelType === 'qwen2' || config['attention_bias'] === true;
  const mlpBias = config['mlp_bias'] === true;
  const embed = get('model.embed_tokens.weight', V * H);
  // HF tie_weights: with tie_word_embeddings the head *is* the embedding; otherwise lm_head.weight.
  const lmHead = d.tie ? embed : get('lm_head.weight', V * H);
  if (prefix.some((v) => v.length !== H)) throw new Error(`every prefix vector must have length ${H}`);
  const invFreq = rotaryInverseFrequencies(config, prefix.length + T);

  return tokens.map((row) => {
    let x: Matrix = [
      ...prefix.map((v) => [...v]),
      ...row.map((id) => Array.from(embed.subarray(id * H, (id + 1) * H))),
    ];
    for (let layer = 0; layer < d.layers; layer++) {
      const p = `model.layers.${layer}.`;
      const sa = `${p}self_attn.`;
      // Pre-norm block (modeling_llama.LlamaDecoderLayer): x += attn(norm(x)); x += mlp(norm(x)).
      const a = x.map((v) => rmsNorm(v, get(`${p}input_layernorm.weight`, H), eps));
      let q = linear(
        a,
        get(`${sa}q_proj.weight`, heads * hd * H),
        getOpt(`${sa}q_proj.bias`, heads * hd, attnBias),
      );
      let k = linear(
        a,
        get(`${sa}k_proj.weight`, kvHeads * hd * H),
        getOpt(`${sa}k_proj.bias`, kvHeads * hd, attnBias),
      );
      const v = linear(
        a,
        get(`${sa}v_proj.weight`, kvHeads * hd * H),
        getOpt(`${sa}v_proj.bias`, kvHeads * hd, attnBias),
      );
      if (d.modelType === 'qwen3') {
        q = q.map((r) => perHead(r, hd, (h) => rmsNorm(h, get(`${sa}q_norm.weight`, hd), eps)));
        k = k.map((r) => perHead(r, hd, (h) => rmsNorm(h, get(`${sa}k_norm.weight`, hd), eps)));
      }
      q = q.map((r, t) => perHead(r, hd, (h) => applyRotary(h, t, invFreq)));
      k = k.map((r, t) => perHead(r, hd, (h) => applyRotary(h, t, invFreq)));
      const o = attention(q, k, v, heads, kvHeads, hd, d.slidingWindow);
      x = add(
        x,
        linear(
          o,
          get(`${sa}o_proj.weight`, H * heads * hd),
          getOpt(`${sa}o_proj.bias`, H, attnBias && d.modelType !== 'qwen2'),
        ),
      );

      const m = x.map((r) => rmsNorm(r, get(`${p}post_attention_layernorm.weight`, H), eps));
      const mp = `${p}mlp.`;
      x = add(
        x,
        mlp(
          m,
          [get(`${mp}gate_proj.weight`, I * H), getOpt(`${mp}gate_proj.bias`, I, mlpBias)],
          [get(`${mp}up_proj.weight`, I * H), getOpt(`${mp}up_proj.bias`, I, mlpBias)],
          [get(`${mp}down_proj.weight`, H * I), getOpt(`${mp}down_proj.bias`, H, mlpBias)],
        ),
      );
    }
    const final = x.map((r) => rmsNorm(r, get('model.norm.weight', H), eps));
    // LM head: logits[v] = h · W[v], W = lm_head.weight or the tied embedding.
    return final.map((h) => {
      const out = new Float64Array(V);
      for (let vi = 0; vi < V; vi++) {
        let s = 0;
        for (let c = 0; c < H; c++) s += h[c] * lmHead[vi * H + c];
        out[vi] = s;
      }
      return out;
    });
  });
}

function num(config: Record<string, unknown>, key: string, fallback?: number): number {
  const v = config[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`config.${key} must be a number, got ${String(v)}`);
  return v;
}

function readDims(config: Record<string, unknown>): Dims {
  const modelType = config['model_type'];
  if (!MODEL_TYPES.includes(modelType as ModelType))
    throw new Error(
      `unsupported model_type ${String(modelType)} (expected one of ${MODEL_TYPES.join(', ')})`,
    );
  const act = config['hidden_act'] ?? 'silu';
  if (act !== 'silu') throw new Error(`unsupported hidden_act ${String(act)} (only silu)`);
  if ((modelType === 'qwen2' || modelType === 'qwen3') && config['use_sliding_window'] === true)
    throw new Error('use_sliding_window is not supported by the reference');
  const hidden = num(config, 'hidden_size');
  const heads = num(config, 'num_attention_heads');
  const kvHeads = num(config, 'num_key_value_heads', heads);
  if (heads % kvHeads !== 0)
    throw new Error(`num_attention_heads ${heads} not divisible by kv heads ${kvHeads}`);
  const sw = config['sliding_window'];
  return {
    modelType: modelType as ModelType,
    vocab: num(config, 'vocab_size'),
    hidden,
    layers: num(config, 'num_hidden_layers'),
    heads,
    kvHeads,
    headDim: headDimOf(config),
    intermediate: num(config, 'intermediate_size'),
    eps: num(config, 'rms_norm_eps', 1e-6),
    tie: config['tie_word_embeddings'] === true,
    slidingWindow: modelType === 'mistral' && typeof sw === 'number' ? sw : null,
  };
}

function headDimOf(config: Record<string, unknown>): number {
  const hd = config['head_dim'];
  return typeof hd === 'number' ? hd : num(config, 'hidden_size') / num(config, 'num_attention_heads');
}

/** RMSNorm (Zhang & Sennrich 2019; HF LlamaRMSNorm): x / sqrt(mean(x²) + eps) · w. */
export function rmsNorm(x: readonly number[], w: ArrayLike<number>, eps: number): Vec {
  let ms = 0;
  for (const v of x) ms += v * v;
  ms /= x.length;
  const r = 1 / Math.sqrt(ms + eps);
  return x.map((v, c) => v * r * w[c]);
}

/**
 * RoPE inverse frequencies (Su et al. 2021; HF modeling_rope_utils ROPE_INIT_FUNCTIONS) for a sequence of
 * length `seqLen`: theta^(-2j/head_dim), j < head_dim/2, rescaled per `rope_scaling`. 'dynamic' (NTK) uses
 * seqLen = the row length T, as HF's dynamic update does for a forward pass over positions 0..T-1.
 */
export function rotaryInverseFrequencies(config: Record<string, unknown>, seqLen: number): Vec {
  const dim = headDimOf(config);
  const params = (config['rope_parameters'] ?? null) as Record<string, unknown> | null;
  const scaling = (config['rope_scaling'] ?? params) as Record<string, unknown> | null;
  let base = num(
    config,
    'rope_theta',
    typeof params?.['rope_theta'] === 'number' ? params['rope_theta'] : 10000,
  );
  const type = scaling ? (scaling['rope_type'] ?? scaling['type'] ?? 'default') : 'default';
  const factor = () => num(scaling ?? {}, 'factor');

  if (type === 'dynamic') {
    // HF _compute_dynamic_ntk_parameters: NTK-aware base change once T exceeds max_position_embeddings.
    const maxPos = num(config, 'max_position_embeddings');
    if (seqLen > maxPos) base *= ((factor() * seqLen) / maxPos - (factor() - 1)) ** (dim / (dim - 2));
  } else if (type !== 'default' && type !== 'linear' && type !== 'llama3') {
    throw new Error(`unsupported rope_scaling type ${String(type)}`);
  }
  const inv: Vec = [];
  for (let j = 0; j < dim / 2; j++) inv.push(base ** ((-2 * j) / dim));
  // HF _compute_linear_scaling_parameters: position / factor, i.e. inv_freq / factor.
  if (type === 'linear') return inv.map((f) => f / factor());
  if (type === 'llama3') return llama3Scale(inv, scaling ?? {});
  return inv;
}

/** HF _compute_llama3_parameters: keep short wavelengths, divide long ones by factor, blend in between. */
function llama3Scale(inv: Vec, s: Record<string, unknown>): Vec {
  const factor = num(s, 'factor');
  const lo = num(s, 'low_freq_factor');
  const hi = num(s, 'high_freq_factor');
  const oldLen = num(s, 'original_max_position_embeddings');
  const lowFreqWavelen = oldLen / lo;
  const highFreqWavelen = oldLen / hi;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f;
    if (wavelen > lowFreqWavelen) return f / factor;
    const smooth = (oldLen / wavelen - lo) / (hi - lo);
    return ((1 - smooth) * f) / factor + smooth * f;
  });
}

/** HF apply_rotary_pos_emb: x·cos + rotate_half(x)·sin, halves [x1 | x2] → rotate_half = [-x2 | x1]. */
export function applyRotary(x: readonly number[], position: number, invFreq: readonly number[]): Vec {
  const half = x.length / 2;
  const out = new Array<number>(x.length);
  for (let j = 0; j < half; j++) {
    const angle = position * invFreq[j];
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    out[j] = x[j] * cos - x[j + half] * sin;
    out[j + half] = x[j + half] * cos + x[j] * sin;
  }
  return out;
}

/**
 * Causal grouped-query attention (Vaswani et al. 2017; Ainslie et al. 2023; HF eager_attention_forward):
 * query head h reads kv head floor(h / (heads / kvHeads)); softmax(q·kᵀ / sqrt(head_dim)) over keys
 * j <= i (and i - j < slidingWindow when set, HF sliding-window mask).
 */
function attention(
  q: Matrix,
  k: Matrix,
  v: Matrix,
  heads: number,
  kvHeads: number,
  hd: number,
  slidingWindow: number | null,
): Matrix {
  const T = q.length;
  const group = heads / kvHeads;
  const out: Matrix = q.map(() => new Array<number>(heads * hd).fill(0));
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < T; i++) {
      const first = slidingWindow === null ? 0 : Math.max(0, i - slidingWindow + 1);
      const scores: number[] = [];
      for (let j = first; j <= i; j++) {
        let s = 0;
        for (let c = 0; c < hd; c++) s += q[i][h * hd + c] * k[j][g * hd + c];
        scores.push(s / Math.sqrt(hd));
      }
      const max = Math.max(...scores);
      const exps = scores.map((s) => Math.exp(s - max));
      const sum = exps.reduce((acc, e) => acc + e, 0);
      for (let j = first; j <= i; j++) {
        const pij = exps[j - first] / sum;
        for (let c = 0; c < hd; c++) out[i][h * hd + c] += pij * v[j][g * hd + c];
      }
    }
  }
  return out;
}

/** SwiGLU MLP (Shazeer 2020; HF LlamaMLP): down(silu(gate(x)) ⊙ up(x)). */
function mlp(x: Matrix, gate: LinearParams, up: LinearParams, down: LinearParams): Matrix {
  const g = linear(x, ...gate);
  const u = linear(x, ...up);
  return linear(
    g.map((row, t) => row.map((z, c) => silu(z) * u[t][c])),
    ...down,
  );
}

type LinearParams = [Tensor, Tensor | null];

/** SiLU / swish (Elfwing et al. 2017; Ramachandran et al. 2017): z · sigmoid(z). */
export function silu(z: number): number {
  return z / (1 + Math.exp(-z));
}

/** y = W x + b with W stored [out, in] row-major (torch nn.Linear). */
function linear(x: Matrix, w: Tensor, b: Tensor | null): Matrix {
  return x.map((row) => {
    const nIn = row.length;
    const nOut = w.length / nIn;
    const y: Vec = [];
    for (let o = 0; o < nOut; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < nIn; i++) s += w[o * nIn + i] * row[i];
      y.push(s);
    }
    return y;
  });
}

/** Apply `f` to each contiguous head of size `hd` in `row`. */
function perHead(row: Vec, hd: number, f: (head: Vec) => Vec): Vec {
  const out: Vec = [];
  for (let h = 0; h < row.length / hd; h++) out.push(...f(row.slice(h * hd, (h + 1) * hd)));
  return out;
}

function add(x: Matrix, y: Matrix): Matrix {
  return x.map((row, t) => row.map((v, c) => v + y[t][c]));
}
