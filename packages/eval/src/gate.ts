// Release gates and judge agreement: whether a run's win rate against a baseline clears its bar, and how often a
// judge's verdicts match a task's ground truth.
import type { Outcome, WinRate } from './win-rate.js';

/** A run's gate: its win rate against `against` must reach `minWinRate`. */
export interface Gate {
  against: string;
  minWinRate: number;
  /** 'lower' (default): the interval's lower bound must reach it; 'point': the estimate itself. */
  rule?: 'lower' | 'point';
}

export interface GateVerdict {
  pass: boolean;
  /** The number compared with minWinRate. */
  measured: number;
  rule: 'lower' | 'point';
  minWinRate: number;
}

/** Pass/fail of a gate on a measured win rate; the default asks the bar of the whole 95 % interval. */
export function gateVerdict(gate: Gate, result: WinRate): GateVerdict {
  if (!(gate.minWinRate >= 0 && gate.minWinRate <= 1)) {
    throw new RangeError(`minWinRate must be in [0, 1], got ${gate.minWinRate}`);
  }
  const rule = gate.rule ?? 'lower';
  const measured = rule === 'lower' ? result.interval.lower : result.winRate;
  return { pass: measured >= gate.minWinRate, measured, rule, minWinRate: gate.minWinRate };
}

export interface JudgeAgreement {
  n: number;
  /** Share of comparisons where the judge's outcome equals the truth's. */
  agreement: number;
  /** Agreement on the comparisons the truth decides (no tie in the truth). */
  decidedAgreement: number;
  decided: number;
  /** Cohen's κ over the three outcomes: (p_o − p_e) / (1 − p_e) (Cohen 1960). */
  kappa: number;
}

/** Cohen's κ: observed agreement corrected for the agreement the two marginals give by chance. */
export function cohenKappa(observed: number, chance: number): number {
  return chance === 1 ? 1 : (observed - chance) / (1 - chance);
}

/** How a judge's verdicts agree with the ground truth's on the same comparisons. */
export function judgeAgreement(judge: readonly Outcome[], truth: readonly Outcome[]): JudgeAgreement {
  if (judge.length !== truth.length) {
    throw new RangeError(`judge has ${judge.length} outcomes but truth has ${truth.length}`);
  }
  if (judge.length === 0) throw new RangeError('judgeAgreement needs at least one outcome');
  const n = judge.length;
  const kinds: Outcome[] = ['win', 'tie', 'loss'];
  let same = 0;
  let decided = 0;
  let decidedSame = 0;
  judge.forEach((o, i) => {
    if (o === truth[i]) same++;
    if (truth[i] !== 'tie') {
      decided++;
      if (o === truth[i]) decidedSame++;
    }
  });
  const share = (xs: readonly Outcome[], k: Outcome) => xs.filter((x) => x === k).length / n;
  const chance = kinds.reduce((s, k) => s + share(judge, k) * share(truth, k), 0);
  return {
    n,
    agreement: same / n,
    decidedAgreement: decided === 0 ? Number.NaN : decidedSame / decided,
    decided,
    kappa: cohenKappa(same / n, chance),
  };
}
