import { describe, expect, it } from 'vitest';
import { cohenKappa, gateVerdict, judgeAgreement } from './gate.js';
import { type Outcome, winRate } from './win-rate.js';

const repeat = (o: Outcome, n: number): Outcome[] => new Array<Outcome>(n).fill(o);

describe('gateVerdict', () => {
  const result = winRate([...repeat('win', 70), ...repeat('loss', 30)], { seed: 1 });
  it('passes on the interval’s lower bound by default, on the estimate with rule point', () => {
    expect(result.winRate).toBe(0.7);
    const lower = gateVerdict({ against: 'sft', minWinRate: 0.65 }, result);
    expect(lower).toMatchObject({ pass: false, rule: 'lower', measured: result.interval.lower });
    expect(result.interval.lower).toBeLessThan(0.65); // 0.7 − 1.96·√(0.21/100) ≈ 0.61
    expect(gateVerdict({ against: 'sft', minWinRate: 0.65, rule: 'point' }, result).pass).toBe(true);
    expect(gateVerdict({ against: 'sft', minWinRate: 0.55 }, result).pass).toBe(true);
    expect(() => gateVerdict({ against: 'sft', minWinRate: 1.5 }, result)).toThrow(/minWinRate/);
  });
});

describe('judgeAgreement', () => {
  it('matches hand-computed agreement and Cohen’s κ', () => {
    // judge: W W T L L L; truth: W T T L W L → same at 0, 2, 3, 5 → 4/6
    const judge: Outcome[] = ['win', 'win', 'tie', 'loss', 'loss', 'loss'];
    const truth: Outcome[] = ['win', 'tie', 'tie', 'loss', 'win', 'loss'];
    const result = judgeAgreement(judge, truth);
    // chance: win (2/6)(2/6) + tie (1/6)(2/6) + loss (3/6)(2/6) = (4 + 2 + 6) / 36 = 1/3; κ = (2/3 − 1/3)/(2/3) = 1/2
    expect(result.agreement).toBeCloseTo(2 / 3, 12);
    expect(result.kappa).toBeCloseTo(0.5, 12);
    expect(result.decided).toBe(4);
    expect(result.decidedAgreement).toBe(0.75);
  });
  it('gives κ = 1 for a perfect judge and ≈ 0 for one that ignores the truth', () => {
    const truth: Outcome[] = [...repeat('win', 50), ...repeat('loss', 50)];
    expect(judgeAgreement(truth, truth).kappa).toBe(1);
    const alternating = truth.map((_, i): Outcome => (i % 2 === 0 ? 'win' : 'loss'));
    expect(judgeAgreement(alternating, truth).kappa).toBeCloseTo(0, 12);
    expect(cohenKappa(1, 1)).toBe(1);
  });
  it('refuses mismatched or empty input', () => {
    expect(() => judgeAgreement(['win'], [])).toThrow(/judge has 1/);
    expect(() => judgeAgreement([], [])).toThrow(/at least one/);
  });
});
