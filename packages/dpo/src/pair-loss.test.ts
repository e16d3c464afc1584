// The held-out pair loss on the host (eval/loss) against hand-computed values.
import { resolveDpoConfig } from '@rlhf/contracts';
import { describe, expect, it } from 'vitest';
import { pairLoss } from './dpo.js';

describe('pairLoss', () => {
  it('sigmoid: −log σ(m); m = 0 → ln 2, m = 2 → ln(1 + e⁻²) = 0.126928', () => {
    const config = resolveDpoConfig({});
    expect(pairLoss(config, 0)).toBeCloseTo(Math.LN2, 12);
    expect(pairLoss(config, 2)).toBeCloseTo(0.12692801104297263, 12);
    expect(pairLoss(config, -40)).toBeCloseTo(40, 9); // no overflow far on the wrong side
  });
  it('label smoothing 0.1 at m = 2: 0.9 · 0.126928 + 0.1 · 2.126928 = 0.326928', () => {
    expect(pairLoss(resolveDpoConfig({ labelSmoothing: 0.1 }), 2)).toBeCloseTo(0.3269280110429726, 12);
  });
  it('hinge: max(0, 1 − m); SimPO: −log σ(m − γ)', () => {
    expect(pairLoss(resolveDpoConfig({ lossType: 'hinge' }), 0.4)).toBeCloseTo(0.6, 12);
    expect(pairLoss(resolveDpoConfig({ lossType: 'hinge' }), 3)).toBe(0);
    expect(pairLoss(resolveDpoConfig({ lossType: 'simpo', simpoGamma: 0.5 }), 0.5)).toBeCloseTo(Math.LN2, 12);
  });
});
