// Grader spec shapes and prompt rows with messages and reference fields.
import { describe, expect, it } from 'vitest';
import { datasetRowErrors, MAX_PROMPT_FIELDS_CHARS } from './datasets.js';
import { schemaErrors } from './errors.js';
import { GraderSpec, graderName, graderSpecErrors, MAX_GRADERS } from './graders.js';

describe('graderSpecErrors', () => {
  it('checks each type by its own schema, naming the field', () => {
    expect(graderSpecErrors({ type: 'numeric', reference: 1, tolerance: { absolute: -1 } })).toEqual([
      { path: '/tolerance/absolute', message: 'must be >= 0' },
    ]);
    expect(
      graderSpecErrors({ type: 'text_similarity', metric: 'cosine', reference: 'x' }, '/reward'),
    ).toEqual([
      { path: '/reward/metric', message: 'must be one of "edit_distance", "token_f1", "bleu", "rouge_l"' },
    ]);
    expect(graderSpecErrors({ type: 'string_check', operation: 'eq', reference: 'a\u0000' })[0].path).toBe(
      '/reference',
    );
  });
  it('recurses into multi graders with names, weights, depth and count', () => {
    const leaf = (name?: string) => ({
      type: 'length',
      max: 3,
      penaltyPerUnit: 0.1,
      ...(name ? { name } : {}),
    });
    expect(graderSpecErrors({ type: 'multi', combine: 'product', graders: [leaf('a'), leaf('b')] })).toEqual(
      [],
    );
    expect(graderSpecErrors({ type: 'multi', combine: 'min', graders: [leaf(), { type: 'bogus' }] })).toEqual(
      [{ path: '/graders/1/type', message: expect.stringMatching(/^must be one of "string_check"/) }],
    );
    const many = {
      type: 'multi',
      combine: 'min',
      graders: Array.from({ length: MAX_GRADERS + 3 }, (_, i) => leaf(`g${i}`)),
    };
    // the array's maxItems and the tree's count both say so
    expect(graderSpecErrors(many).map((e) => e.path)).toEqual(['/graders']);
  });
  it('the unrolled JSON Schema accepts a nested spec and a name defaults to the type', () => {
    const spec = {
      type: 'multi',
      combine: 'weighted_sum',
      weights: { exact: 2 },
      graders: [
        { type: 'string_check', name: 'exact', operation: 'eq', reference: '{{item.answer}}' },
        { type: 'multi', combine: 'min', graders: [{ type: 'reward_model' }] },
      ],
    };
    expect(schemaErrors(GraderSpec, spec)).toEqual([]);
    expect(graderSpecErrors(spec)).toEqual([]);
    expect(graderName({ type: 'reward_model' })).toBe('reward_model');
    expect(graderName({ type: 'reward_model', name: 'rm' })).toBe('rm');
  });
});

describe('prompt rows', () => {
  const errors = (row: unknown) => datasetRowErrors('prompt', row);
  it('accepts {prompt}, {prompt, ...fields} and {messages, ...fields} ending in a user turn', () => {
    expect(errors({ prompt: 'p' })).toEqual([]);
    expect(
      errors({ prompt: 'p', answer: '42', n: 3, ok: true, none: null, list: [1, 'a'], obj: { x: { y: 1 } } }),
    ).toEqual([]);
    expect(
      errors({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
          { role: 'user', content: 'Sort 2 1' },
        ],
        answer: '1 2',
      }),
    ).toEqual([]);
  });
  it('names what is wrong', () => {
    expect(
      errors({
        messages: [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: 'b' },
        ],
      }),
    ).toEqual([
      { path: '/messages/1/role', message: 'the last message must be the user turn the policy answers' },
    ]);
    expect(
      errors({
        messages: [
          { role: 'user', content: 'a' },
          { role: 'system', content: 'b' },
          { role: 'user', content: 'c' },
        ],
      }),
    ).toEqual([{ path: '/messages/1/role', message: 'a system message may only come first' }]);
    expect(errors({ prompt: 'p', messages: [] })).toEqual([
      { path: '/prompt', message: 'a row has either prompt or messages, not both' },
    ]);
    expect(errors({ prompt: '' })).toEqual([{ path: '/prompt', message: 'must not be empty' }]);
    expect(errors({ answer: 'x' })).toEqual([{ path: '/prompt', message: 'required' }]);
    expect(errors({ prompt: 'p', '2nd': 1 })[0].path).toBe('/2nd');
    expect(errors({ prompt: 'p', a: { b: 'x\u0000' } })).toEqual([
      { path: '/a', message: 'must not contain a NUL character' },
    ]);
    expect(errors({ prompt: 'p', big: 'x'.repeat(MAX_PROMPT_FIELDS_CHARS) })[0].message).toMatch(
      /more than 16384 characters/,
    );
    expect(
      errors({ prompt: 'p', ...Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, i])) })[0]
        .message,
    ).toMatch(/at most 32 reference fields/);
    expect(errors('p')).toEqual([{ path: '', message: 'must be an object' }]);
    expect(errors({ prompt: 'p', response: 'r' })[0]).toEqual({
      path: '/response',
      message:
        'unknown field (response belongs to another dataset kind; name a reference field otherwise, e.g. answer)',
    });
    // nested far deeper than JSON.stringify's stack allows: refused, not thrown
    const deep = JSON.parse(`${'['.repeat(6000)}${']'.repeat(6000)}`);
    expect(errors({ prompt: 'p', deep })).toEqual([
      { path: '/deep', message: 'nests more than 32 levels of arrays and objects' },
    ]);
  });
});
