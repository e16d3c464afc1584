// A tiny GPT-shaped network for tests and benchmarks of this package (the real model lives in @rlhf/model):
// token + position embeddings (Gather), pre-LayerNorm blocks with causal softmax attention (Trilu + Where
// mask), a GELU MLP, a final LayerNorm, an LM head tied to the token embedding, masked cross-entropy.
import type { Tensor } from '../graph.js';
import * as G from '../index.js';

export interface TinyGptConfig {
  vocab: number;
  width: number;
  heads: number;
  layers: number;
  /** Maximum sequence length (rows of the position embedding). */
  context: number;
}

/** Parameter names and shapes, in a fixed order. */
export function tinyGptParams(c: TinyGptConfig): Record<string, number[]> {
  const D = c.width;
  const shapes: Record<string, number[]> = { wte: [c.vocab, D], wpe: [c.context, D] };
  for (let l = 0; l < c.layers; l++) {
    Object.assign(shapes, {
      [`h${l}.ln1.w`]: [D],
      [`h${l}.ln1.b`]: [D],
      [`h${l}.attn.w`]: [D, 3 * D],
      [`h${l}.attn.b`]: [3 * D],
      [`h${l}.proj.w`]: [D, D],
      [`h${l}.proj.b`]: [D],
      [`h${l}.ln2.w`]: [D],
      [`h${l}.ln2.b`]: [D],
      [`h${l}.fc.w`]: [D, 4 * D],
      [`h${l}.fc.b`]: [4 * D],
      [`h${l}.fc2.w`]: [4 * D, D],
      [`h${l}.fc2.b`]: [D],
    });
  }
  return { ...shapes, 'lnf.w': [D], 'lnf.b': [D] };
}

function attention(c: TinyGptConfig, x: Tensor, p: Record<string, Tensor>, l: number): Tensor {
  const D = c.width;
  const qkv = G.add(G.matmul(x, p[`h${l}.attn.w`]), p[`h${l}.attn.b`]);
  // [B, T, D] -> [B, H, T, D/H]
  const heads = (t: Tensor) => G.transpose(G.reshape(t, [0, 0, c.heads, D / c.heads]), [0, 2, 1, 3]);
  const [q, k, v] = G.split(qkv, [D, D, D], -1).map(heads);
  const scores = G.mul(G.matmul(q, G.transposeLast2(k)), 1 / Math.sqrt(D / c.heads));
  const seq = G.dimOf(x, 1);
  const causal = G.cast(G.triangle(G.constantOfShape([seq, seq], 'int64', 1), false), 'bool');
  const att = G.softmax(G.where(causal, scores, -1e9), -1);
  const y = G.reshape(G.transpose(G.matmul(att, v), [0, 2, 1, 3]), [0, 0, D]);
  return G.add(G.matmul(y, p[`h${l}.proj.w`]), p[`h${l}.proj.b`]);
}

/** Logits [B, T, vocab] of int64 tokens [B, T]. */
export function tinyGptLogits(c: TinyGptConfig, p: Record<string, Tensor>, tokens: Tensor): Tensor {
  const positions = G.range(0, G.dimOf(tokens, 1));
  let x = G.add(G.gather(p.wte, tokens), G.gather(p.wpe, positions));
  for (let l = 0; l < c.layers; l++) {
    x = G.add(x, attention(c, G.layerNorm(x, p[`h${l}.ln1.w`], p[`h${l}.ln1.b`]), p, l));
    const h = G.layerNorm(x, p[`h${l}.ln2.w`], p[`h${l}.ln2.b`]);
    const hidden = G.gelu(G.add(G.matmul(h, p[`h${l}.fc.w`]), p[`h${l}.fc.b`]));
    x = G.add(x, G.add(G.matmul(hidden, p[`h${l}.fc2.w`]), p[`h${l}.fc2.b`]));
  }
  return G.matmul(G.layerNorm(x, p['lnf.w'], p['lnf.b']), G.transpose(p.wte)); // tied head
}

/** Mean next-token cross-entropy over mask = 1 positions (mask has the parameters' dtype). */
export function tinyGptLoss(
  c: TinyGptConfig,
  p: Record<string, Tensor>,
  tokens: Tensor,
  targets: Tensor,
  mask: Tensor,
): Tensor {
  return G.crossEntropy(tinyGptLogits(c, p, tokens), targets, mask);
}
