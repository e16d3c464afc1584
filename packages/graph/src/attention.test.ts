// The full gradient of a 2-layer GPT-shaped attention network passes the finite-difference check:
// token + position embeddings (Gather), pre-LayerNorm blocks with causal softmax attention (Trilu + Where
// mask), a GELU MLP, a final LayerNorm, an LM head tied to the token embedding, masked cross-entropy.
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { checkGradients, type GradCheckInput } from './check.js';
import type { Tensor } from './graph.js';
import * as G from './index.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

const V = 7; // vocabulary
const D = 8; // model width
const H = 2; // heads
const T = 5; // sequence length
const B = 2; // batch
const LAYERS = 2;

const layerParams = (l: number) =>
  ({
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
  }) as Record<string, number[]>;

const paramShapes: Record<string, number[]> = {
  wte: [V, D],
  wpe: [T, D],
  ...Object.assign({}, ...Array.from({ length: LAYERS }, (_, l) => layerParams(l))),
  'lnf.w': [D],
  'lnf.b': [D],
};
const paramNames = Object.keys(paramShapes);

function attention(x: Tensor, p: Record<string, Tensor>, l: number): Tensor {
  const qkv = G.add(G.matmul(x, p[`h${l}.attn.w`]), p[`h${l}.attn.b`]);
  // [B, T, D] -> [B, H, T, D/H]
  const heads = (t: Tensor) => G.transpose(G.reshape(t, [0, 0, H, D / H]), [0, 2, 1, 3]);
  const [q, k, v] = G.split(qkv, [D, D, D], -1).map(heads);
  const scores = G.mul(G.matmul(q, G.transposeLast2(k)), 1 / Math.sqrt(D / H));
  const seq = G.dimOf(x, 1);
  const causal = G.cast(G.triangle(G.constantOfShape([seq, seq], 'int64', 1), false), 'bool');
  const att = G.softmax(G.where(causal, scores, -1e9), -1);
  const y = G.reshape(G.transpose(G.matmul(att, v), [0, 2, 1, 3]), [0, 0, D]);
  return G.add(G.matmul(y, p[`h${l}.proj.w`]), p[`h${l}.proj.b`]);
}

function gptLoss(tokens: Tensor, targets: Tensor, mask: Tensor, p: Record<string, Tensor>): Tensor {
  const positions = G.range(0, G.dimOf(tokens, 1));
  let x = G.add(G.gather(p.wte, tokens), G.gather(p.wpe, positions));
  for (let l = 0; l < LAYERS; l++) {
    x = G.add(x, attention(G.layerNorm(x, p[`h${l}.ln1.w`], p[`h${l}.ln1.b`]), p, l));
    const h = G.layerNorm(x, p[`h${l}.ln2.w`], p[`h${l}.ln2.b`]);
    const mlp = G.add(G.matmul(G.gelu(G.add(G.matmul(h, p[`h${l}.fc.w`]), p[`h${l}.fc.b`])), p[`h${l}.fc2.w`]), p[`h${l}.fc2.b`]);
    x = G.add(x, mlp);
  }
  const logits = G.matmul(G.layerNorm(x, p['lnf.w'], p['lnf.b']), G.transpose(p.wte)); // tied head
  return G.crossEntropy(logits, targets, mask);
}

test('2-layer GPT-shaped network: every parameter gradient matches finite differences', async () => {
  const tokens = [3, 1, 4, 1, 5, 2, 6, 5, 3, 5];
  const targets = [1, 4, 1, 5, 0, 6, 5, 3, 5, 0];
  const mask = [1, 1, 1, 1, 0, 1, 1, 1, 1, 0];
  const ints = (data: number[]): GradCheckInput => ({
    shape: [B, T],
    declared: ['batch', 'seq'],
    dtype: 'int64',
    data,
  });
  const params: GradCheckInput[] = paramNames.map((name) => ({
    shape: paramShapes[name],
    low: name.includes('ln') && name.endsWith('.w') ? 0.5 : -0.5,
    high: name.includes('ln') && name.endsWith('.w') ? 1.5 : 0.5,
  }));
  const result = await checkGradients(
    (tok, tgt, msk, ...ps) =>
      gptLoss(tok, tgt, G.cast(msk, 'float64'), Object.fromEntries(paramNames.map((n, i) => [n, ps[i]]))),
    [ints(tokens), ints(targets), ints(mask), ...params],
    { runtime },
  );
  const total = Object.values(paramShapes).reduce((s, d) => s + d.reduce((a, b) => a * b, 1), 0);
  expect(result.checked).toBe(total);
  expect(result.maxRelError, JSON.stringify(result.worst)).toBeLessThan(1e-6);
});
