import { describe, expect, test } from 'vitest';
import { createRng } from './random.js';
import { formatPrompt, groundTruthScore, idealResponse, parsePrompt, scoreParts } from './task.js';

describe('groundTruthScore', () => {
  const prompt = 'sort 7 3 9 1:';

  test('scores hand-computed answers in the designed order', () => {
    const scores = {
      ideal: groundTruthScore(prompt, ' 1 3 7 9'), // 0.5 + 0.4·1 + 0.1 = 1
      squashed: groundTruthScore(prompt, '1379'), // right digits, sorted, wrong format: 0.5 + 0.4 = 0.9
      swap: groundTruthScore(prompt, ' 1 3 9 7'), // 2 of 3 pairs ascending: 0.5 + 0.4·2/3 + 0.1
      echo: groundTruthScore(prompt, ' 7 3 9 1'), // only 3 ≤ 9 ascending: 0.5 + 0.4/3 + 0.1
      reverse: groundTruthScore(prompt, ' 9 7 3 1'), // no pair ascending: 0.5 + 0.1 = 0.6
      drop: groundTruthScore(prompt, ' 1 3 7'), // 3 of 4 digits: 0.4·3/4 = 0.3
      hack: groundTruthScore(prompt, ' 1 2 3 4'), // shares 1 and 3 only: 0.4·2/4 = 0.2
      junk: groundTruthScore(prompt, 'hello'), // no digits: 0
    };
    expect(scores.ideal).toBe(1);
    expect(scores.squashed).toBeCloseTo(0.9, 12);
    expect(scores.swap).toBeCloseTo(0.5 + 0.4 * (2 / 3) + 0.1, 12);
    expect(scores.echo).toBeCloseTo(0.5 + 0.4 / 3 + 0.1, 12);
    expect(scores.reverse).toBeCloseTo(0.6, 12);
    expect(scores.drop).toBeCloseTo(0.3, 12);
    expect(scores.hack).toBeCloseTo(0.2, 12);
    expect(scores.junk).toBe(0);
    const ordered = Object.values(scores);
    expect([...ordered].sort((a, b) => b - a)).toEqual(ordered);
  });

  test('counts repeated digits as a multiset', () => {
    expect(scoreParts('sort 4 4 1:', ' 1 4')).toEqual({
      sameDigits: false,
      overlap: 2 / 3,
      order: 1,
      format: true,
    });
    expect(groundTruthScore('sort 4 4 1:', ' 1 4 4')).toBe(1);
    expect(groundTruthScore('sort 4 4 1:', ' 1 4 4 4')).toBeCloseTo(0.4 * (3 / 4), 12); // one 4 too many
  });

  test('the ideal answer scores 1 and every answer stays in [0, 1]', () => {
    const rng = createRng(7);
    for (let i = 0; i < 200; i++) {
      const digits = Array.from({ length: 2 + rng.int(6) }, () => rng.int(10));
      const prompt = formatPrompt(digits);
      expect(groundTruthScore(prompt, idealResponse(prompt))).toBe(1);
      const noise = Array.from({ length: rng.int(12) }, () => ' 0123456789x'[rng.int(12)]).join('');
      const score = groundTruthScore(prompt, noise);
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
    }
  });

  test('parses task prompts and refuses anything else', () => {
    expect(parsePrompt('sort 7 3 9 1:')).toEqual([7, 3, 9, 1]);
    expect(idealResponse('sort 7 3 9 1:')).toBe(' 1 3 7 9');
    expect(() => parsePrompt('sort 7 3 9 1')).toThrow('not a sort-digits prompt');
    expect(() => groundTruthScore('sort 12 3:', ' 3 12')).toThrow('not a sort-digits prompt');
  });
});
