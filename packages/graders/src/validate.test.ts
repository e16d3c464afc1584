// Validation: every bad spec is refused before anything runs, with a JSON Pointer to the field.
import { ContractError, MAX_GRADERS, type PromptRow } from '@rlhf/contracts';
import { describe, expect, it } from 'vitest';
import { createGrader } from './create.js';
import { graderErrors, referencedFields, rowFieldErrors } from './validate.js';

const paths = (spec: unknown, context = {}) => graderErrors(spec, context).map((e) => e.path);
const messageAt = (spec: unknown, path: string, context = {}) =>
  graderErrors(spec, context).find((e) => e.path === path)?.message;

describe('graderErrors', () => {
  it('accepts one valid spec of each type', () => {
    const valid = [
      { type: 'string_check', operation: 'eq', reference: '{{item.answer}}' },
      { type: 'regex', pattern: '^\\d+$', mode: 'full_match', flags: 'i' },
      { type: 'text_similarity', metric: 'bleu', reference: 'the {{ item.answer }} is here' },
      {
        type: 'json',
        schema: { type: 'object', required: ['a'] },
        fields: { '/a': 1, '/b': '{{item.answer}}' },
      },
      { type: 'numeric', reference: '{{item.answer}}', tolerance: { absolute: 0.01 } },
      { type: 'numeric', reference: 3.5, extract: 'first' },
      { type: 'length', max: 10, penaltyPerUnit: 0.1 },
      { type: 'reward_model' },
    ];
    for (const spec of valid)
      expect(graderErrors(spec, { fields: ['answer'], rewardModel: true }), spec.type).toEqual([]);
  });

  it('names the field of a shape error', () => {
    expect(paths({ type: 'nope' })).toEqual(['/type']);
    expect(paths('regex')).toEqual(['']);
    expect(paths({ type: 'string_check', operation: 'contains', reference: 'x' })).toEqual(['/operation']);
    expect(paths({ type: 'string_check', operation: 'eq' })).toEqual(['/reference']);
    expect(paths({ type: 'regex', pattern: 'a', mode: 'match', extra: 1 })).toEqual(['/extra']);
    expect(paths({ type: 'regex', pattern: 'a', mode: 'match', flags: 'g' })).toEqual(['/flags']);
    expect(paths({ type: 'regex', pattern: 'x'.repeat(513), mode: 'match' })).toEqual(['/pattern']);
    expect(paths({ type: 'length', min: -1, penaltyPerUnit: 0 })).toEqual(['/min']);
    expect(paths({ type: 'reward_model', name: 'Bad Name' })).toEqual(['/name']);
  });

  it('refuses unsafe or invalid regexes at /pattern with the reason', () => {
    expect(messageAt({ type: 'regex', pattern: '(a)\\1', mode: 'match' }, '/pattern')).toMatch(
      /backreferences/,
    );
    expect(messageAt({ type: 'regex', pattern: '(?=x)', mode: 'match' }, '/pattern')).toMatch(/lookahead/);
    expect(messageAt({ type: 'regex', pattern: '(', mode: 'match' }, '/pattern')).toMatch(
      /unterminated group/,
    );
    expect(messageAt({ type: 'regex', pattern: 'a', mode: 'match', flags: 'mm' }, '/flags')).toMatch(
      /duplicate/,
    );
  });

  it('refuses bad JSON Schemas at /schema, including unsafe patterns inside them', () => {
    const json = (schema: unknown) => ({ type: 'json', schema });
    expect(messageAt(json({ type: 'nope' }), '/schema')).toMatch(/invalid JSON Schema/);
    expect(messageAt(json({ properties: { a: { minimum: 'x' } } }), '/schema')).toMatch(
      /invalid JSON Schema/,
    );
    expect(messageAt(json({ unknownKeyword: 1 }), '/schema')).toMatch(/unknown keyword/);
    expect(messageAt(json({ type: 'string', pattern: '(a)\\1' }), '/schema')).toMatch(/backreferences/);
    expect(messageAt(json({ type: 'array', uniqueItems: true }), '/schema')).toMatch(
      /\/uniqueItems: uniqueItems is not supported/,
    );
    expect(messageAt(json({ $ref: 'https://example.com/s.json' }), '/schema')).toMatch(/invalid JSON Schema/);
    expect(messageAt(json({ enum: ['x'.repeat(20_000)] }), '/schema')).toMatch(/at most 16384 characters/);
    // The same $id in two specs does not clash (nothing is kept between compilations).
    expect(graderErrors(json({ $id: 'https://team/s', type: 'object' }))).toEqual([]);
    expect(graderErrors(json({ $id: 'https://team/s', type: 'object' }))).toEqual([]);
  });

  it('checks references: template syntax, numbers, fields the dataset has', () => {
    expect(
      messageAt({ type: 'string_check', operation: 'eq', reference: '{{answer}}' }, '/reference'),
    ).toMatch(/\{\{item.<field>\}\}/);
    expect(messageAt({ type: 'numeric', reference: 'forty-two' }, '/reference')).toMatch(/must be a number/);
    const spec = {
      type: 'multi',
      combine: 'min',
      graders: [
        { type: 'string_check', operation: 'eq', reference: '{{item.answer}}' },
        { type: 'text_similarity', metric: 'token_f1', reference: '{{item.solution}}' },
      ],
    };
    expect(graderErrors(spec)).toEqual([]); // fields unknown: not checked
    expect(graderErrors(spec, { fields: ['answer'] })).toEqual([
      {
        path: '/graders/1/reference',
        message: 'references field "solution", which the prompt rows do not have (they have: answer)',
      },
    ]);
    expect(referencedFields(spec as never)).toEqual(['answer', 'solution']);
  });

  it('says when a reward model or a tokenizer is needed and not there', () => {
    expect(messageAt({ type: 'reward_model' }, '', { rewardModel: false })).toMatch(/needs a reward model/);
    expect(graderErrors({ type: 'reward_model' })).toEqual([]); // not known here: accepted
    expect(
      messageAt({ type: 'length', max: 3, unit: 'tokens', penaltyPerUnit: 1 }, '/unit', { tokenizer: false }),
    ).toMatch(/tokenizer/);
    expect(messageAt({ type: 'length', penaltyPerUnit: 1 }, '')).toMatch(/needs min, max or both/);
    expect(messageAt({ type: 'length', min: 5, max: 2, penaltyPerUnit: 1 }, '/max')).toMatch(/≥ min/);
  });

  it('multi: unique names, weights naming children, depth and count limits', () => {
    const leaf = { type: 'regex', pattern: 'a', mode: 'match' };
    expect(paths({ type: 'multi', combine: 'min', graders: [leaf, leaf] })).toEqual(['/graders/1/name']);
    expect(paths({ type: 'multi', combine: 'weighted_sum', graders: [leaf], weights: { other: 1 } })).toEqual(
      ['/weights/other'],
    );
    expect(paths({ type: 'multi', combine: 'min', graders: [leaf], weights: { regex: 1 } })).toEqual([
      '/weights',
    ]);
    expect(paths({ type: 'multi', combine: 'min', graders: [] })).toEqual(['/graders']);
    const nest = (depth: number): unknown =>
      depth === 0 ? leaf : { type: 'multi', combine: 'min', graders: [nest(depth - 1)] };
    expect(graderErrors(nest(3))).toEqual([]);
    expect(paths(nest(4))).toEqual(['/graders/0/graders/0/graders/0']);
    const many = Array.from({ length: MAX_GRADERS }, (_, i) => ({ ...leaf, name: `g${i}` }));
    expect(messageAt({ type: 'multi', combine: 'min', graders: many }, '/graders/15')).toMatch(
      /too many graders/,
    );
    expect(
      paths({
        type: 'multi',
        combine: 'min',
        graders: [leaf, { type: 'regex', pattern: '\\1', mode: 'match', name: 'b' }],
      }),
    ).toEqual(['/graders/1/pattern']);
  });

  it('createGrader refuses an invalid spec with ContractError naming every field', () => {
    expect(() => createGrader({ type: 'regex', pattern: '(?<=a)', mode: 'match' })).toThrow(ContractError);
    expect(() => createGrader({ type: 'reward_model' })).toThrow(/needs a reward model/);
    expect(() => createGrader({ type: 'length', max: 3, unit: 'tokens', penaltyPerUnit: 1 })).toThrow(
      /\/unit: /,
    );
  });
});

describe('rowFieldErrors', () => {
  it('names the row and the field a row lacks, and numeric references that are not numbers', () => {
    const spec = {
      type: 'multi' as const,
      combine: 'min' as const,
      graders: [
        { type: 'string_check' as const, operation: 'eq' as const, reference: '{{item.answer}}' },
        { type: 'numeric' as const, reference: '{{item.value}}' },
      ],
    };
    const rows: PromptRow[] = [
      { prompt: 'a', answer: 'x', value: 1 },
      { prompt: 'b', value: '2' },
      { messages: [{ role: 'user', content: 'c' }], answer: 'z', value: 'many' },
    ];
    expect(rowFieldErrors(spec, rows)).toEqual([
      { path: '/1/answer', message: 'row 2 has no field "answer" (referenced at /graders/0/reference)' },
      { path: '/2/value', message: 'row 3: /graders/1/reference gives "many", not a number' },
    ]);
    expect(rowFieldErrors(spec, [rows[0]])).toEqual([]);
  });
  it('stops after MAX_ROW_ERRORS', () => {
    const rows: PromptRow[] = Array.from({ length: 100 }, () => ({ prompt: 'p' }));
    expect(
      rowFieldErrors({ type: 'string_check', operation: 'eq', reference: '{{item.a}}' }, rows),
    ).toHaveLength(20);
  });
});
