import { describe, expect, it } from 'vitest';
import { applyRotary, referenceLlamaForward, rotaryInverseFrequencies } from './reference-llama.js';

type Config = Record<string, unknown>;
type Weights = Map<string, Float64Array>;

/** Every HF tensor name and shape the config implies. */
function shapes(c: Config): [string, number[]][] {
  const [V, H, I, nh] = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_attention_heads'].map(
    (k) => c[k] as number,
  );
  const kv = (c['num_key_value_heads'] as number | undefined) ?? nh;
  const hd = (c['head_dim'] as number | undefined) ?? H / nh;
  const out: [string, number[]][] = [
    ['model.embed_tokens.weight', [V, H]],
    ['model.norm.weight', [H]],
  ];
  if (c['tie_word_embeddings'] !== true) out.push(['lm_head.weight', [V, H]]);
  for (let i = 0; i < (c['num_hidden_layers'] as number); i++) {
    const p = `model.layers.${i}.`;
    out.push(
      [`${p}input_layernorm.weight`, [H]],
      [`${p}post_attention_layernorm.weight`, [H]],
      [`${p}self_attn.q_proj.weight`, [nh * hd, H]],
      [`${p}self_attn.k_proj.weight`, [kv * hd, H]],
      [`${p}self_attn.v_proj.weight`, [kv * hd, H]],
      [`${p}self_attn.o_proj.weight`, [H, nh * hd]],
      [`${p}mlp.gate_proj.weight`, [I, H]],
      [`${p}mlp.up_proj.weight`, [I, H]],
      [`${p}mlp.down_proj.weight`, [H, I]],
    );
    if (c['model_type'] === 'qwen2')
      for (const [n, s] of [
        ['q', nh],
        ['k', kv],
        ['v', kv],
      ] as const)
        out.push([`${p}self_attn.${n}_proj.bias`, [s * hd]]);
    if (c['model_type'] === 'qwen3')
      out.push([`${p}self_attn.q_norm.weight`, [hd]], [`${p}self_attn.k_norm.weight`, [hd]]);
  }
  return out;
}

/** All zeros except norm weights (1) and the given tensors (which may add optional ones, e.g. biases). */
function handWeights(c: Config, set: Record<string, number[]>): Weights {
  const w: Weights = new Map();
  for (const [name, shape] of shapes(c)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = set[name] ? Float64Array.from(set[name]) : new Float64Array(size);
    if (data.length !== size) throw new Error(`${name}: ${data.length} values for [${shape}]`);
    if (!set[name] && /norm\.weight$/.test(name)) data.fill(1);
    w.set(name, data);
  }
  for (const [name, values] of Object.entries(set)) if (!w.has(name)) w.set(name, Float64Array.from(values));
  return w;
}

/** Deterministic pseudo-random weights in [-0.5, 0.5) (norm weights around 1). */
function randomWeights(c: Config, seed = 1): Weights {
  let s = seed;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  const w: Weights = new Map();
  for (const [name, shape] of shapes(c)) {
    const data = Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, next);
    if (/norm\.weight$/.test(name)) for (let i = 0; i < data.length; i++) data[i] += 1;
    w.set(name, data);
  }
  return w;
}

const silu = (z: number) => z / (1 + Math.exp(-z));
const close = (xs: ArrayLike<number>) => Array.from(xs, (v) => expect.closeTo(v, 12));

// V = 3, H = 2, one head of size 2 (inv_freq = [1]); eps = 3 makes RMSNorm of a ±1 vector exactly x / 2.
const tiny: Config = {
  model_type: 'llama',
  vocab_size: 3,
  hidden_size: 2,
  intermediate_size: 2,
  num_hidden_layers: 1,
  num_attention_heads: 1,
  rms_norm_eps: 3,
  rope_theta: 10000,
  tie_word_embeddings: false,
};
const L = 'model.layers.0.';
const I2 = [1, 0, 0, 1];
const tinySet = {
  'model.embed_tokens.weight': [1, 1, 1, -1, 0, 2], // e0 = [1, 1], e1 = [1, -1]
  'lm_head.weight': [1, 0, 0, 1, 1, 1],
  [`${L}input_layernorm.weight`]: [2, 2], // so the attention input a_t = e_t
  [`${L}post_attention_layernorm.weight`]: [2, 2],
};
const attnSet = {
  ...tinySet,
  [`${L}self_attn.q_proj.weight`]: I2,
  [`${L}self_attn.k_proj.weight`]: I2,
  [`${L}self_attn.v_proj.weight`]: I2,
  [`${L}self_attn.o_proj.weight`]: I2,
};
/** Final norm (weight 1, eps 3) then lm_head rows [1,0], [0,1], [1,1]. */
function head(x: number[]): number[] {
  const r = Math.sqrt((x[0] * x[0] + x[1] * x[1]) / 2 + 3);
  return [x[0] / r, x[1] / r, (x[0] + x[1]) / r];
}
/**
 * Tokens [0, 1] with q = k = v = o = I, zero MLP. Position 0 sees only itself: x0 = e0 + a0 = [2, 2].
 * Position 1: q1 = k1 = rot1(a1) = [cos1 + sin1, sin1 - cos1], k0 = a0, so scores are q1·k0/√2 = √2 sin 1
 * and |a1|²/√2 = √2; out = p0 [1, 1] + p1 [1, -1], x1 = e1 + out.
 */
function handAttention(): number[][] {
  const s0 = Math.SQRT2 * Math.sin(1);
  const s1 = Math.SQRT2;
  const p0 = Math.exp(s0) / (Math.exp(s0) + Math.exp(s1));
  const p1 = 1 - p0;
  return [head([2, 2]), head([2, -1 + p0 - p1])];
}

describe('referenceLlamaForward', () => {
  it('0 layers: logits = RMSNorm(e) · Wᵀ by hand', () => {
    const c = { ...tiny, num_hidden_layers: 0 };
    const w = handWeights(c, { ...tinySet, 'model.norm.weight': [2, 4] });
    // e0 = [1, 1]: mean square 1, eps 3 → e0 / 2 · [2, 4] = [1, 2]; rows [1,0], [0,1], [1,1].
    const [[logits]] = referenceLlamaForward(c, w, [[0]]);
    expect(Array.from(logits)).toEqual(close([1, 2, 3]));
  });

  it('attention with rotary at position 1, by hand', () => {
    const out = referenceLlamaForward(tiny, handWeights(tiny, attnSet), [[0, 1]]);
    const want = handAttention();
    expect(out[0].map((l) => Array.from(l))).toEqual(want.map(close));
  });

  it('SwiGLU MLP by hand: down(silu(gate m) ⊙ up m)', () => {
    const w = handWeights(tiny, {
      ...tinySet,
      [`${L}mlp.gate_proj.weight`]: [1, 0, 0, 2],
      [`${L}mlp.up_proj.weight`]: [1, 1, 0, -1],
      [`${L}mlp.down_proj.weight`]: I2,
    });
    // Attention is zero; m = [1, 1], gate = [1, 2], up = [2, -1].
    const [[logits]] = referenceLlamaForward(tiny, w, [[0]]);
    expect(Array.from(logits)).toEqual(close(head([1 + 2 * silu(1), 1 - silu(2)])));
  });

  it('qwen2: q/k/v biases are required and added (v bias passes straight through uniform attention)', () => {
    const c = { ...tiny, model_type: 'qwen2' };
    const w = handWeights(c, {
      ...tinySet,
      [`${L}self_attn.v_proj.bias`]: [1, 2],
      [`${L}self_attn.o_proj.weight`]: I2,
    });
    const out = referenceLlamaForward(c, w, [[0, 1]]);
    expect(out[0].map((l) => Array.from(l))).toEqual([head([2, 3]), head([2, 1])].map(close));
    w.delete(`${L}self_attn.k_proj.bias`);
    expect(() => referenceLlamaForward(c, w, [[0]])).toThrow(`missing weight ${L}self_attn.k_proj.bias`);
  });

  it('llama attention_bias: o_proj bias is added', () => {
    const c = { ...tiny, attention_bias: true };
    const w = handWeights(c, { ...tinySet, [`${L}self_attn.o_proj.bias`]: [1, -1] });
    for (const n of ['q', 'k', 'v']) w.set(`${L}self_attn.${n}_proj.bias`, new Float64Array(2));
    const [[logits]] = referenceLlamaForward(c, w, [[0]]);
    expect(Array.from(logits)).toEqual(close(head([2, 0])));
  });

  it('qwen3: q_norm / k_norm act per head before rotary', () => {
    const c = { ...tiny, model_type: 'qwen3' };
    // Weight 2 with eps 3 maps a ±1 head to itself, so the result equals the hand-computed llama case.
    const same = handWeights(c, {
      ...attnSet,
      [`${L}self_attn.q_norm.weight`]: [2, 2],
      [`${L}self_attn.k_norm.weight`]: [2, 2],
    });
    expect(referenceLlamaForward(c, same, [[0, 1]])[0].map((l) => Array.from(l))).toEqual(
      handAttention().map(close),
    );
    // k_norm weight 0 zeroes every key: uniform attention, x1 = e1 + (a0 + a1) / 2 = [2, -1].
    const flat = handWeights(c, { ...attnSet, [`${L}self_attn.k_norm.weight`]: [0, 0] });
    expect(referenceLlamaForward(c, flat, [[0, 1]])[0].map((l) => Array.from(l))).toEqual(
      [head([2, 2]), head([2, -1])].map(close),
    );
  });

  it('mistral sliding_window: 1 attends only to itself; a wide window is plain causal', () => {
    const w = handWeights(tiny, attnSet);
    const one = referenceLlamaForward({ ...tiny, model_type: 'mistral', sliding_window: 1 }, w, [[0, 1]]);
    expect(one[0].map((l) => Array.from(l))).toEqual([head([2, 2]), head([2, -2])].map(close));
    const wide = referenceLlamaForward({ ...tiny, model_type: 'mistral', sliding_window: 4096 }, w, [[0, 1]]);
    expect(wide[0].map((l) => Array.from(l))).toEqual(handAttention().map(close));
  });

  const small: Config = {
    model_type: 'llama',
    vocab_size: 5,
    hidden_size: 4,
    intermediate_size: 6,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 100,
  };

  it('causal: changing a later token leaves earlier logits unchanged; batch rows are independent', () => {
    const w = randomWeights(small);
    const [a, b] = referenceLlamaForward(small, w, [
      [0, 1, 2, 3],
      [0, 1, 2, 4],
    ]);
    for (let t = 0; t < 3; t++) expect(Array.from(b[t])).toEqual(close(a[t]));
    expect(Math.abs(a[3][0] - b[3][0])).toBeGreaterThan(1e-6);
    const [single] = referenceLlamaForward(small, w, [[0, 1, 2, 4]]);
    for (let t = 0; t < 4; t++) expect(Array.from(single[t])).toEqual(close(b[t]));
  });

  it('GQA: kv_heads 2 equals kv_heads 4 with each kv head repeated', () => {
    const w = randomWeights(small);
    const full = new Map(w);
    for (let i = 0; i < 2; i++) {
      for (const n of ['k', 'v']) {
        const name = `model.layers.${i}.self_attn.${n}_proj.weight`;
        const src = w.get(name)!; // [2 heads × 2, 4]
        const rows = 2 * 4; // values per kv head
        const rep = new Float64Array(4 * rows);
        for (let h = 0; h < 4; h++)
          rep.set(src.subarray(Math.floor(h / 2) * rows, (Math.floor(h / 2) + 1) * rows), h * rows);
        full.set(name, rep);
      }
    }
    const toks = [[3, 1, 4, 1, 0]];
    const gqa = referenceLlamaForward(small, w, toks);
    const mha = referenceLlamaForward({ ...small, num_key_value_heads: 4 }, full, toks);
    for (let t = 0; t < 5; t++) expect(Array.from(gqa[0][t])).toEqual(close(mha[0][t]));
  });

  it('tied embeddings equal an explicit lm_head copied from embed_tokens', () => {
    const tied = { ...small, tie_word_embeddings: true };
    const w = randomWeights(tied);
    expect(w.has('lm_head.weight')).toBe(false);
    const explicit = new Map(w).set('lm_head.weight', w.get('model.embed_tokens.weight')!);
    const toks = [[1, 2, 3]];
    const a = referenceLlamaForward(tied, w, toks);
    const b = referenceLlamaForward(small, explicit, toks);
    for (let t = 0; t < 3; t++) expect(Array.from(a[0][t])).toEqual(close(b[0][t]));
  });

  it('dynamic NTK = unscaled while T <= max_position_embeddings', () => {
    const w = randomWeights(small);
    const dyn = { ...small, max_position_embeddings: 4, rope_scaling: { rope_type: 'dynamic', factor: 2 } };
    const toks = [[0, 1, 2, 3]];
    const a = referenceLlamaForward(dyn, w, toks);
    const b = referenceLlamaForward(small, w, toks);
    for (let t = 0; t < 4; t++) expect(Array.from(a[0][t])).toEqual(close(b[0][t]));
  });

  it('throws on a missing weight (named), unsupported model_type and unknown rope type', () => {
    const w = randomWeights(small);
    w.delete('model.layers.1.mlp.up_proj.weight');
    expect(() => referenceLlamaForward(small, w, [[0]])).toThrow(
      'missing weight model.layers.1.mlp.up_proj.weight',
    );
    expect(() => referenceLlamaForward({ ...small, model_type: 'gpt2' }, w, [[0]])).toThrow(
      /unsupported model_type gpt2/,
    );
    const odd = { ...small, rope_scaling: { rope_type: 'mystery', factor: 2 } };
    expect(() => referenceLlamaForward(odd, randomWeights(small), [[0]])).toThrow(
      /unsupported rope_scaling type mystery/,
    );
  });
});

describe('rotary embeddings', () => {
  const vec = [0.3, -1.2, 0.7, 2.5, -0.4, 0.9];
  const inv = [1, 0.3, 0.01];
  const norm = (x: number[]) => Math.hypot(...x);

  it('position 0 is the identity and every rotation preserves the norm', () => {
    expect(applyRotary(vec, 0, inv)).toEqual(close(vec));
    expect(norm(applyRotary(vec, 7, inv))).toBeCloseTo(norm(vec), 12);
  });

  it('rotate_half pairs dimension j with j + head_dim/2 (not interleaved)', () => {
    // [1, 0, 0, 0] with inv_freq [1, f]: only the (0, 2) pair turns, by the angle = position.
    expect(applyRotary([1, 0, 0, 0], 2, [1, 0.5])).toEqual(close([Math.cos(2), 0, Math.sin(2), 0]));
    expect(applyRotary([0, 1, 0, 0], 2, [1, 0.5])).toEqual(close([0, Math.cos(1), 0, Math.sin(1)]));
  });

  it('q(m)·k(n) depends only on m − n', () => {
    const k = [1.1, 0.2, -0.5, 0.3, 0.8, -1.0];
    const dot = (m: number, n: number) => {
      const a = applyRotary(vec, m, inv);
      const b = applyRotary(k, n, inv);
      return a.reduce((s, v, i) => s + v * b[i], 0);
    };
    expect(dot(5, 2)).toBeCloseTo(dot(13, 10), 12);
  });

  // head_dim 8, theta 10⁴: inv_freq = 10^-j = [1, 0.1, 0.01, 0.001], wavelengths 2π·10^j.
  const c8: Config = { hidden_size: 8, num_attention_heads: 1, rope_theta: 10000 };

  it('default and linear: inv_freq = theta^(-2j/d), linear divides by factor (rope_type or legacy type)', () => {
    expect(rotaryInverseFrequencies(c8, 3)).toEqual(close([1, 0.1, 0.01, 0.001]));
    const lin = rotaryInverseFrequencies({ ...c8, rope_scaling: { type: 'linear', factor: 4 } }, 3);
    expect(lin).toEqual(close([0.25, 0.025, 0.0025, 0.00025]));
  });

  it('llama3 keeps high frequencies, divides the lowest by factor and blends the middle', () => {
    const rope_scaling = {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 1000,
    };
    // Wavelengths 6.28 and 62.8 < 1000/4 = 250 are kept; 6283 > 1000/1 is divided by 8;
    // 628 is in between: smooth = (1000/628.3 − 1) / (4 − 1), f = (1 − smooth)·f/8 + smooth·f.
    const smooth = (1000 / (2 * Math.PI * 100) - 1) / 3;
    const mid = ((1 - smooth) * 0.01) / 8 + smooth * 0.01;
    expect(rotaryInverseFrequencies({ ...c8, rope_scaling }, 3)).toEqual(close([1, 0.1, mid, 0.001 / 8]));
  });

  it('dynamic NTK: unscaled for T <= max_position_embeddings, base grows beyond', () => {
    const c = { ...c8, max_position_embeddings: 16, rope_scaling: { rope_type: 'dynamic', factor: 2 } };
    expect(rotaryInverseFrequencies(c, 16)).toEqual(close([1, 0.1, 0.01, 0.001]));
    // T = 32: base = 10⁴ · (2·32/16 − 1)^(8/6) = 10⁴ · 3^(4/3); inv_freq[j] = base^(−j/4).
    const base = 10000 * 3 ** (4 / 3);
    expect(rotaryInverseFrequencies(c, 32)).toEqual(close([0, 1, 2, 3].map((j) => base ** (-j / 4))));
  });
});
