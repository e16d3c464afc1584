// A deliberately naive float64 GPT-2 forward pass (Radford et al. 2019; nanoGPT's model.py), written
// with plain loops straight from the definition. It is the ground truth for the ONNX-graph GPT:
// keep it independent of packages/graph and free of tricks.

import { type GptConfig, isLlama, paramShapes, shapeSize, validateConfig } from '../config.js';

export interface ReferenceForward {
  /** Next-token logits, row-major [T, V]. */
  logits: Float64Array;
  /** Scalar head output per position [T] (`score` on the final hidden state), or null without a head. */
  values: Float64Array | null;
  /** Attention probabilities per layer, row-major [nHead, T, T] (row = query, column = key). */
  attention: Float64Array[];
}

type Matrix = number[][]; // rows = positions

/**
 * Logits (and scalar values) of a GPT-2 for one token sequence, in float64. `prefix`: input embedding vectors
 * (length d each) that stand before the tokens' embeddings (prompt tuning's virtual tokens), at positions 0..P-1;
 * the outputs then cover all P + T positions.
 */
export function referenceGptForward(
  config: GptConfig,
  params: ReadonlyMap<string, Float32Array | Float64Array>,
  tokens: readonly number[],
  prefix: readonly (readonly number[])[] = [],
): ReferenceForward {
  validateConfig(config);
  if (isLlama(config)) throw new Error('referenceGptForward: a GPT-2 config is expected');
  const { vocabSize: V, nEmbd: d, nHead: H } = config;
  const P = prefix.length;
  if (prefix.some((v) => v.length !== d)) throw new Error(`every prefix vector must have length ${d}`);
  const T = P + tokens.length;
  if (T < 1 || T > config.maxPositions)
    throw new Error(`sequence length ${T} must be in [1, ${config.maxPositions}]`);
  for (const id of tokens) {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`token id ${id} is outside [0, ${V})`);
  }
  for (const { name, shape } of paramShapes(config)) {
    const p = params.get(name);
    if (!p || p.length !== shapeSize(shape))
      throw new Error(`parameter ${name} missing or not of shape [${shape}]`);
  }
  const p = (name: string): Float32Array | Float64Array => params.get(name)!;

  // Token embedding + position embedding.
  const wte = p('wte.weight');
  const wpe = p('wpe.weight');
  let x: Matrix = [];
  for (let t = 0; t < T; t++) {
    const row: number[] = [];
    for (let c = 0; c < d; c++)
      row.push((t < P ? prefix[t][c] : wte[tokens[t - P] * d + c]) + wpe[t * d + c]);
    x.push(row);
  }

  const attention: Float64Array[] = [];
  for (let layer = 0; layer < config.nLayer; layer++) {
    const h = `h.${layer}`;
    // Pre-LN block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)).
    const a = layerNorm(x, p(`${h}.ln_1.weight`), p(`${h}.ln_1.bias`), config.layerNormEps);
    const qkv = linear(a, p(`${h}.attn.c_attn.weight`), p(`${h}.attn.c_attn.bias`));
    const { out, probs } = causalSelfAttention(qkv, d, H);
    attention.push(probs);
    x = add(x, linear(out, p(`${h}.attn.c_proj.weight`), p(`${h}.attn.c_proj.bias`)));

    const m = layerNorm(x, p(`${h}.ln_2.weight`), p(`${h}.ln_2.bias`), config.layerNormEps);
    const hidden = linear(m, p(`${h}.mlp.c_fc.weight`), p(`${h}.mlp.c_fc.bias`)).map((row) =>
      row.map(geluTanh),
    );
    x = add(x, linear(hidden, p(`${h}.mlp.c_proj.weight`), p(`${h}.mlp.c_proj.bias`)));
  }
  const final = layerNorm(x, p('ln_f.weight'), p('ln_f.bias'), config.layerNormEps);

  // Tied LM head: logits[t][v] = final[t] · wte[v].
  const logits = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += final[t][c] * wte[v * d + c];
      logits[t * V + v] = s;
    }
  }

  let values: Float64Array | null = null;
  if (config.scalarHead) {
    const w = p('score.weight');
    const b = p('score.bias');
    values = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      let s = b[0];
      for (let c = 0; c < d; c++) s += final[t][c] * w[c];
      values[t] = s;
    }
  }
  return { logits, values, attention };
}

/** LayerNorm over each row (Ba et al. 2016): (x - mean) / sqrt(var + eps) · w + b, biased variance. */
function layerNorm(x: Matrix, w: ArrayLike<number>, b: ArrayLike<number>, eps: number): Matrix {
  return x.map((row) => {
    let mean = 0;
    for (const v of row) mean += v;
    mean /= row.length;
    let variance = 0;
    for (const v of row) variance += (v - mean) * (v - mean);
    variance /= row.length;
    return row.map((v, c) => ((v - mean) / Math.sqrt(variance + eps)) * w[c] + b[c]);
  });
}

/** y = x @ W + b with W stored [in, out] row-major (HF Conv1D). */
function linear(x: Matrix, w: ArrayLike<number>, b: ArrayLike<number>): Matrix {
  const nOut = b.length;
  return x.map((row) => {
    const y: number[] = [];
    for (let o = 0; o < nOut; o++) {
      let s = b[o];
      for (let i = 0; i < row.length; i++) s += row[i] * w[i * nOut + o];
      y.push(s);
    }
    return y;
  });
}

function add(x: Matrix, y: Matrix): Matrix {
  return x.map((row, t) => row.map((v, c) => v + y[t][c]));
}

/** GELU, tanh approximation (Hendrycks & Gimpel 2016): 0.5x(1 + tanh(sqrt(2/π)(x + 0.044715x³))). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

/**
 * Multi-head causal self-attention (Vaswani et al. 2017): qkv rows are [q | k | v], each split into
 * contiguous heads of size d/H; softmax(q kᵀ / sqrt(d/H)) over keys j <= i.
 */
function causalSelfAttention(qkv: Matrix, d: number, H: number): { out: Matrix; probs: Float64Array } {
  const T = qkv.length;
  const dh = d / H;
  const out: Matrix = qkv.map(() => new Array<number>(d).fill(0));
  const probs = new Float64Array(H * T * T);
  for (let head = 0; head < H; head++) {
    const q = (t: number, c: number) => qkv[t][head * dh + c];
    const k = (t: number, c: number) => qkv[t][d + head * dh + c];
    const v = (t: number, c: number) => qkv[t][2 * d + head * dh + c];
    for (let i = 0; i < T; i++) {
      const scores: number[] = [];
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let c = 0; c < dh; c++) s += q(i, c) * k(j, c);
        scores.push(s / Math.sqrt(dh));
      }
      const max = Math.max(...scores);
      const exps = scores.map((s) => Math.exp(s - max));
      const sum = exps.reduce((a, b) => a + b, 0);
      for (let j = 0; j <= i; j++) {
        const pij = exps[j] / sum;
        probs[(head * T + i) * T + j] = pij;
        for (let c = 0; c < dh; c++) out[i][head * dh + c] += pij * v(j, c);
      }
    }
  }
  return { out, probs };
}
