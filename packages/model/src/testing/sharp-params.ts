// Test parameters: the GPT-2 init scaled up (so attention and logits are far from uniform and errors cannot
// hide) with non-zero biases and LayerNorm gains, so every parameter is exercised.
import { type GptConfig, initParams } from '../config.js';

export function sharpParams(config: GptConfig, seed: number, scale = 5): Map<string, Float32Array> {
  const params = initParams(config, seed);
  for (const [name, p] of params) {
    const norm = /ln_(1|2|f)\.weight$/.test(name);
    for (let i = 0; i < p.length; i++) {
      if (!norm) p[i] *= scale;
      if (norm || name.endsWith('.bias')) p[i] += 0.1 * Math.sin(7 * i + name.length);
    }
  }
  return params;
}

/** log softmax(logits / temperature) of one row. */
export function logSoftmaxRow(logits: ArrayLike<number>, temperature = 1): number[] {
  const scaled = Array.from(logits, (l) => l / temperature);
  const max = Math.max(...scaled);
  const logSum = Math.log(scaled.reduce((s, l) => s + Math.exp(l - max), 0)) + max;
  return scaled.map((l) => l - logSum);
}
