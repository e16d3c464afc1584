// The linear-time engine: the same answers as V8's RegExp (u mode) on the syntax it accepts, refusals with
// the reason, and bounded time on patterns that make backtracking engines explode.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileLinearRegex, MAX_MATCH_WORK, RegexWorkLimitError } from './engine.js';
import { RegexSyntaxError } from './parse.js';

const PATTERNS: [string, string][] = [
  ['abc', ''],
  ['^abc$', ''],
  ['a|b|cd', ''],
  ['colou?r', 'i'],
  ['\\d{2,3}-\\d+', ''],
  ['^(?:\\w+\\s?)+$', ''],
  ['[^aeiou\\s]{3}', ''],
  ['(a|ab)(c|bcd)(d*)', ''],
  ['^$', ''],
  ['^a.c$', 's'],
  ['^a.c$', ''],
  ['^b$', 'm'],
  ['\\bcat\\b', ''],
  ['\\Bat\\B', ''],
  ['x{0}y', ''],
  ['(?<year>\\d{4})-(?<month>\\d\\d)', ''],
  ['[\\u{1F600}-\\u{1F64F}]+', ''],
  ['\\p{Lu}\\p{Ll}+', ''],
  ['é+', 'i'],
  ['[.*+?]', ''],
  ['\\.\\*\\(\\)\\[\\]\\{\\}\\/\\|\\\\', ''],
  ['a*?b+?', ''],
  ['(a*)*', ''],
  ['\\x41\\u0042\\n?', ''],
];
const TEXTS = [
  '',
  'abc',
  'xabcx',
  'ab',
  'cd',
  'COLOR',
  'colour',
  '12-3',
  '1-2',
  'one two three',
  'one two ',
  'strength',
  'abcd',
  'abbcdd',
  'a\nc',
  'a\nb\nc',
  'the cat sat',
  'concatenate',
  'y',
  '2024-05-17',
  'hi 😀😃!',
  'Élan vital',
  'ÉÉé',
  'a+b',
  '.*()[]{}/|\\',
  'aaab',
  'AB\n',
];

describe('compileLinearRegex', () => {
  it('answers like RegExp with the u flag: test (search) and full match', () => {
    for (const [pattern, flags] of PATTERNS) {
      const ours = compileLinearRegex(pattern, flags);
      const search = new RegExp(pattern, `u${flags}`);
      const whole = new RegExp(`^(?:${pattern})$`, `u${flags.replace('m', '')}`);
      for (const text of TEXTS) {
        expect(ours.test(text), `/${pattern}/${flags} test ${JSON.stringify(text)}`).toBe(search.test(text));
        expect(ours.fullMatch(text), `/${pattern}/${flags} full ${JSON.stringify(text)}`).toBe(
          whole.test(text),
        );
      }
    }
  });

  it('property: random patterns and texts get the same answers as RegExp', () => {
    const atom = fc.constantFrom('a', 'b', 'A', '.', '[ab]', '[^a]', '\\d', '\\w', '\\s', '\\W', 'ſ', '😀');
    const pattern = fc.letrec<{ node: string }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        atom,
        // no \B here: V8 also tries it between the two halves of a surrogate pair (a😀a matches /\B/u); we never split a code point
        fc.constantFrom('^', '$', '\\b'),
        fc.tuple(tie('node'), tie('node')).map(([x, y]) => `${x}${y}`),
        fc.tuple(tie('node'), tie('node')).map(([x, y]) => `(?:${x}|${y})`),
        fc
          .tuple(tie('node'), fc.constantFrom('*', '+', '?', '{2}', '{0,2}', '{1,}', '*?'))
          .map(([x, q]) => `(?:${x})${q}`),
        tie('node').map((x) => `(${x})`),
      ),
    })).node;
    const text = fc
      .array(fc.constantFrom('a', 'b', 'A', '1', ' ', '\n', 'ſ', 'K', '😀', '-'), { maxLength: 8 })
      .map((cs) => cs.join(''));
    fc.assert(
      fc.property(
        pattern,
        fc.constantFrom('', 'i', 'm', 's', 'im'),
        fc.array(text, { minLength: 1, maxLength: 6 }),
        (source, flags, texts) => {
          const ours = compileLinearRegex(source, flags);
          const search = new RegExp(source, `u${flags}`);
          for (const t of texts) {
            expect(ours.test(t), `/${source}/${flags} on ${JSON.stringify(t)}`).toBe(search.test(t));
            if (!flags.includes('m')) {
              const whole = new RegExp(`^(?:${source})$`, `u${flags}`);
              expect(ours.fullMatch(t), `full /${source}/${flags} on ${JSON.stringify(t)}`).toBe(
                whole.test(t),
              );
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses what needs backtracking, naming it and where', () => {
    const refused: [string, RegExp][] = [
      ['(a)\\1', /at 3: backreferences/],
      ['(?<x>a)\\k<x>', /named backreferences/],
      ['(?=a)a', /at 0: lookahead and lookbehind/],
      ['(?!a)b', /lookahead/],
      ['(?<=a)b', /lookbehind/],
      ['(?<!a)b', /lookbehind/],
      ['a{1001}', /at most 1000/],
      ['(?:a{100}){100}', /too large/],
      ['a{3,2}', /out of order/],
      ['a**', /two quantifiers/],
      ['*a', /nothing to repeat/],
      ['^*', /assertion cannot be quantified/],
      ['(ab', /unterminated group/],
      ['ab)', /unmatched/],
      ['[ab', /unterminated character class/],
      ['a{', /quantifier/],
      ['\\q', /unknown escape/],
      ['(?i:a)', /unsupported group/],
      ['[z-a]', /invalid "\[z-a\]"/],
      ['a\\', /lone "\\"/],
    ];
    for (const [pattern, reason] of refused) {
      expect(() => compileLinearRegex(pattern), pattern).toThrow(RegexSyntaxError);
      expect(() => compileLinearRegex(pattern), pattern).toThrow(reason);
    }
    expect(() => compileLinearRegex('a', 'g')).toThrow(/unsupported flag "g"/);
    expect(() => compileLinearRegex('a', 'ii')).toThrow(/a duplicate in "ii"/);
  });

  it('answers catastrophic-backtracking patterns on long texts in linear time', () => {
    const cases: [string, string, boolean][] = [
      ['(a+)+$', `${'a'.repeat(100_000)}!`, false],
      ['(a|a)*b', 'a'.repeat(100_000), false],
      ['(a|aa)+$', `${'a'.repeat(100_000)}b`, false],
      ['(.*a){12}', 'a'.repeat(50_000), true],
      ['^(\\w+\\s?)*$', `${'word '.repeat(20_000)}!`, false],
      ['\\d*\\d*\\d*x', '1'.repeat(100_000), false],
    ];
    for (const [pattern, text, expected] of cases) {
      const started = performance.now();
      expect(compileLinearRegex(pattern).test(text), pattern).toBe(expected);
      expect(performance.now() - started, pattern).toBeLessThan(5000);
    }
  });

  it('stops with RegexWorkLimitError when pattern × text exceeds the work bound', () => {
    const regex = compileLinearRegex('(?:a?){500}b');
    const started = performance.now();
    expect(() => regex.test('a'.repeat(1_000_000))).toThrow(RegexWorkLimitError);
    expect(() => regex.test('a'.repeat(1_000_000))).toThrow(`more than ${MAX_MATCH_WORK} steps`);
    expect(performance.now() - started).toBeLessThan(20_000);
    // The same pattern on an ordinary response is answered.
    expect(regex.test(`${'a'.repeat(300)}b`)).toBe(true);
  });
});
