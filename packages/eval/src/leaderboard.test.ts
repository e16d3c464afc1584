import { createRng } from '@rlhf/model';
import { describe, expect, it } from 'vitest';
import { eloExpectedScore } from './bradley-terry.js';
import { comparisonsOf, leaderboard } from './leaderboard.js';
import type { Outcome } from './win-rate.js';

describe('leaderboard', () => {
  it('sorts a team’s models best first with intervals, games and records', () => {
    const rng = createRng(3, 'leaderboard');
    const truth: Record<string, number> = { sft: 1000, dpo: 1080, ppo: 1160, base: 850 };
    const play = (a: string, b: string, n: number): Outcome[] =>
      Array.from({ length: n }, () =>
        rng.uniform() < eloExpectedScore(truth[a], truth[b]) ? 'win' : 'loss',
      );
    // Not a round robin: evaluations as a team runs them, each against the previous model or SFT.
    const comparisons = [
      ...comparisonsOf('sft', 'base', play('sft', 'base', 200)),
      ...comparisonsOf('dpo', 'sft', play('dpo', 'sft', 300)),
      ...comparisonsOf('ppo', 'sft', play('ppo', 'sft', 300)),
      ...comparisonsOf('ppo', 'dpo', play('ppo', 'dpo', 300)),
    ];
    const board = leaderboard(comparisons, { anchor: { model: 'sft', rating: 1000 }, resamples: 300 });
    console.log(
      board.rows
        .map(
          (r) =>
            `${r.rank}. ${r.model} ${r.rating.toFixed(0)} [${r.interval.lower.toFixed(0)}, ${r.interval.upper.toFixed(0)}] ${r.games} games`,
        )
        .join('; '),
    );
    expect(board.rows.map((r) => r.model)).toEqual(['ppo', 'dpo', 'sft', 'base']);
    expect(board.rows.map((r) => r.rank)).toEqual([1, 2, 3, 4]);
    expect(board.rows.map((r) => r.games)).toEqual([600, 600, 800, 200]);
    expect(board.comparisons).toBe(1100);
    for (const row of board.rows) {
      expect(row.wins + row.ties + row.losses).toBe(row.games);
      expect(Math.abs(row.rating - truth[row.model])).toBeLessThan(50);
      if (row.model !== 'sft') expect(row.interval.upper - row.interval.lower).toBeGreaterThan(10);
    }
  });
  it('gives equal ratings the same rank', () => {
    const board = leaderboard(
      [...comparisonsOf('x', 'y', ['win', 'loss']), ...comparisonsOf('z', 'x', ['loss'])],
      {
        resamples: 10,
      },
    );
    expect(board.rows.map((r) => [r.model, r.rank])).toEqual([
      ['x', 1],
      ['y', 2],
      ['z', 3],
    ]);
    const even = leaderboard(comparisonsOf('p', 'q', ['win', 'loss']), { resamples: 10 });
    expect(even.rows.map((r) => r.rank)).toEqual([1, 1]);
  });
});
