// The scoring formulas on hand-computed values.
import { describe, expect, it } from 'vitest';
import { combineScores } from './create.js';
import { atPointer, codePointCount, jsonEqual, lengthScore, stringCheck, wordCount } from './leaves.js';
import { extractNumber, parseNumber, withinTolerance } from './numbers.js';
import { bleu, editSimilarity, lcsLength, levenshtein, rougeL, tokenF1, words } from './similarity.js';

describe('edit similarity = 1 − lev / max length', () => {
  it('kitten → sitting: 3 edits over 7 → 4/7', () => {
    expect(levenshtein([...'kitten'], [...'sitting'])).toBe(3);
    expect(editSimilarity('kitten', 'sitting')).toBeCloseTo(4 / 7, 12);
  });
  it('empty texts: both empty 1, one empty 0', () => {
    expect(editSimilarity('', '')).toBe(1);
    expect(editSimilarity('abc', '')).toBe(0);
    expect(editSimilarity('', 'abc')).toBe(0);
  });
  it('counts code points after NFC: an emoji is one, a decomposed é equals a composed one', () => {
    expect(editSimilarity('😀a', '😀b')).toBe(0.5);
    expect(editSimilarity('café', 'cafe')).toBe(0.75);
    expect(editSimilarity('cafe\u0301', 'café')).toBe(1);
  });
});

describe('token F1 (SQuAD)', () => {
  it('"the cat sat" vs "the cat sat down": P = 1, R = 3/4 → 6/7', () => {
    expect(tokenF1('the cat sat', 'the cat sat down')).toBeCloseTo(6 / 7, 12);
  });
  it('lowercases and ignores punctuation; counts repeated words once each', () => {
    expect(tokenF1('The CAT!', 'the cat')).toBe(1);
    // response a a a, reference a b: common 1, P = 1/3, R = 1/2 → 2·(1/6)/(5/6) = 0.4
    expect(tokenF1('a a a', 'a b')).toBeCloseTo(0.4, 12);
  });
  it('no common words → 0; both without words → 1', () => {
    expect(tokenF1('x y', 'a b')).toBe(0);
    expect(tokenF1('', '...')).toBe(1);
    expect(tokenF1('', 'a')).toBe(0);
  });
  it('words are runs of letters, marks and digits in any script', () => {
    expect(words('Ärger, 日本語 und x2!')).toEqual(['ärger', '日本語', 'und', 'x2']);
  });
});

describe('sentence BLEU-4 with add-one smoothing for n ≥ 2', () => {
  it('identical texts → 1', () => {
    expect(bleu('the cat sat on the mat', 'the cat sat on the mat')).toBeCloseTo(1, 12);
  });
  it('a correct but short prefix pays only the brevity penalty: exp(1 − 6/3) = e⁻¹', () => {
    // p1 = 3/3, p2 = (2+1)/(2+1), p3 = (1+1)/(1+1), p4 = (0+1)/(0+1)
    expect(bleu('the cat sat', 'the cat sat on the mat')).toBeCloseTo(Math.exp(-1), 12);
  });
  it('"a b c d" vs "a b d c": (1 · 2/4 · 1/3 · 1/2)^(1/4) = 12^(−1/4)', () => {
    expect(bleu('a b c d', 'a b d c')).toBeCloseTo(12 ** -0.25, 12);
  });
  it('no unigram in common → 0; empty response → 0', () => {
    expect(bleu('x y z', 'a b c')).toBe(0);
    expect(bleu('', 'a b c')).toBe(0);
    expect(bleu('', '')).toBe(1);
  });
});

describe('ROUGE-L F-measure', () => {
  it('"a b c d" vs "a b d c": LCS 3 → P = R = 3/4', () => {
    expect(lcsLength([...'abcd'], [...'abdc'])).toBe(3);
    expect(rougeL('a b c d', 'a b d c')).toBeCloseTo(0.75, 12);
  });
  it('different lengths: LCS 2 of 4 and 3 words → 2·(1/2)(2/3)/(7/6) = 4/7', () => {
    expect(rougeL('the gunman killed police', 'the gunman fled')).toBeCloseTo(4 / 7, 12);
  });
  it('empty texts', () => {
    expect(rougeL('', '')).toBe(1);
    expect(rougeL('a', '')).toBe(0);
  });
});

describe('numbers', () => {
  it('parses whole texts strictly', () => {
    expect(parseNumber(' 42 ')).toBe(42);
    expect(parseNumber('-3.5')).toBe(-3.5);
    expect(parseNumber('1,234')).toBe(1234);
    expect(parseNumber('6.02e23')).toBe(6.02e23);
    for (const bad of ['', 'abc', '0x10', 'Infinity', '1.2.3', '12 apples'])
      expect(parseNumber(bad)).toBeNull();
  });
  it('extracts the first or the last number', () => {
    expect(extractNumber('from 3 to -5.', 'first')).toBe(3);
    expect(extractNumber('from 3 to -5.', 'last')).toBe(-5);
    expect(extractNumber('total: 1,024 items', 'last')).toBe(1024);
    expect(extractNumber('#### 42', 'last')).toBe(42);
    expect(extractNumber('no digits here', 'last')).toBeNull();
    expect(extractNumber('', 'first')).toBeNull();
  });
  it('tolerance: |x − ref| ≤ max(absolute, relative·|ref|)', () => {
    expect(withinTolerance(41.99, 42, 0.05)).toBe(true);
    expect(withinTolerance(41.9, 42, 0.05)).toBe(false);
    expect(withinTolerance(101, 100, 0, 0.01)).toBe(true);
    expect(withinTolerance(102, 100, 0, 0.01)).toBe(false);
    expect(withinTolerance(0.3, 0.3)).toBe(true);
    expect(withinTolerance(0.30000001, 0.3)).toBe(false);
  });
});

describe('length, string checks, JSON helpers, combine', () => {
  it('length: 1 inside, minus the penalty per unit outside, clamped at 0', () => {
    const spec = { min: 2, max: 5, penaltyPerUnit: 0.1 };
    expect(lengthScore(3, spec)).toBe(1);
    expect(lengthScore(8, spec)).toBeCloseTo(0.7, 12);
    expect(lengthScore(0, spec)).toBeCloseTo(0.8, 12);
    expect(lengthScore(100, { max: 5, penaltyPerUnit: 0.5 })).toBe(0);
    expect(lengthScore(1, { min: 4, penaltyPerUnit: 0.25 })).toBeCloseTo(0.25, 12);
  });
  it('counts code points and whitespace-separated words', () => {
    expect(codePointCount('😀😀😀')).toBe(3);
    expect(codePointCount('')).toBe(0);
    expect(codePointCount('\ud800x')).toBe(2); // a lone surrogate counts as one
    expect(wordCount('  a b\n\tc  ')).toBe(3);
    expect(wordCount('')).toBe(0);
  });
  it('string checks', () => {
    expect(stringCheck('eq', '42', '42')).toBe(1);
    expect(stringCheck('eq', ' 42', '42')).toBe(0);
    expect(stringCheck('ne', ' 42', '42')).toBe(1);
    expect(stringCheck('like', 'the answer is 42.', '42')).toBe(1);
    expect(stringCheck('like', 'the answer is 4 2', '42')).toBe(0);
    expect(stringCheck('ilike', 'L’ÉCOLE est là', 'école')).toBe(1);
    expect(stringCheck('like', 'anything', '')).toBe(1);
    expect(stringCheck('eq', '', '')).toBe(1);
  });
  it('JSON Pointers and equality', () => {
    const doc = { a: [10, { 'b/c': 1, 'd~e': 2 }] };
    expect(atPointer(doc, '')).toBe(doc);
    expect(atPointer(doc, '/a/0')).toBe(10);
    expect(atPointer(doc, '/a/1/b~1c')).toBe(1);
    expect(atPointer(doc, '/a/1/d~0e')).toBe(2);
    expect(atPointer(doc, '/a/01')).toBeUndefined();
    expect(atPointer(doc, '/missing/x')).toBeUndefined();
    expect(atPointer({}, '/constructor')).toBeUndefined();
    expect(jsonEqual({ x: [1, { y: null }], z: 'a' }, { z: 'a', x: [1, { y: null }] })).toBe(true);
    expect(jsonEqual({ x: 1 }, { x: 1, y: 2 })).toBe(false);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
  });
  it('combine: weighted_sum Σ w·s, min, product', () => {
    expect(combineScores('weighted_sum', [1, 0.5], [2, 0.5])).toBeCloseTo(2.25, 12);
    expect(combineScores('min', [1, 0.5, 0.75], [1, 1, 1])).toBe(0.5);
    expect(combineScores('product', [0.5, 0.5, 0.8], [1, 1, 1])).toBeCloseTo(0.2, 12);
  });
});
