import { describe, expect, test } from 'vitest';
import { clip, duration, keyMetrics, num, table } from './format.js';

describe('format', () => {
  test('numbers in few characters', () => {
    expect([
      num(3),
      num(0.123456),
      num(1234.5678),
      num(1e-5),
      num(25_000_000.5),
      num(null),
      num(Number.NaN),
    ]).toEqual(['3', '0.1235', '1235', '1.000e-5', '2.500e+7', '-', 'NaN']);
  });

  test('tables, durations, clipping, key metrics', () => {
    expect(
      table(
        ['A', 'BB'],
        [
          ['xyz', '1'],
          ['q', ''],
        ],
      ),
    ).toBe('A    BB\nxyz  1\nq\n');
    expect([duration(4_200), duration(185_000), duration(7_260_000)]).toEqual([
      '4 s',
      '3 m 05 s',
      '2 h 01 m',
    ]);
    expect(clip('a\nbcdef', 5)).toBe('a⏎bc…');
    expect(keyMetrics('sft', { 'eval/loss': 0.5, 'train/loss': 1, 'train/lr': 3 })).toBe(
      'train/loss 1  eval/loss 0.5',
    );
  });
});
