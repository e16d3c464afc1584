// The grader corpus: each type through createGrader on hand-written (row, response, score) cases, including
// unicode, empty strings, rows missing a referenced field, pathological regexes and 1 MB responses.
import { MAX_RESPONSE_CHARS, type PromptRow } from '@rlhf/contracts';
import { describe, expect, it } from 'vitest';
import { createGrader, GraderError } from './create.js';
import { graderErrors } from './validate.js';

type Case = [row: PromptRow, response: string, score: number];

async function expectScores(spec: unknown, cases: Case[]): Promise<void> {
  const grade = createGrader(spec);
  const { scores } = await grade(
    cases.map((c) => c[0]),
    cases.map((c) => c[1]),
  );
  for (const [i, [, response, score]] of cases.entries()) {
    const label = `${JSON.stringify(spec)} on ${JSON.stringify(response.slice(0, 60))}`;
    expect(scores[i], label).toBeCloseTo(score, 10);
  }
}

const row = (fields: Record<string, unknown> = {}): PromptRow => ({ prompt: 'Q', ...fields }) as PromptRow;
const MB = 1024 * 1024;

describe('string_check', () => {
  it('eq / ne / like / ilike against a field or a literal', async () => {
    const answer = row({ answer: '42' });
    await expectScores({ type: 'string_check', operation: 'eq', reference: '{{item.answer}}' }, [
      [answer, '42', 1],
      [answer, ' 42', 0],
      [row({ answer: 42 }), '42', 1], // a number field's text
      [row({ answer: '' }), '', 1],
      [row({ answer: 'Ünïcødé 😀' }), 'Ünïcødé 😀', 1],
    ]);
    await expectScores({ type: 'string_check', operation: 'ne', reference: 'no' }, [
      [answer, 'no', 0],
      [answer, 'No', 1],
    ]);
    await expectScores({ type: 'string_check', operation: 'like', reference: 'is {{item.answer}}' }, [
      [answer, 'The answer is 42.', 1],
      [answer, 'The answer: 42', 0],
    ]);
    await expectScores({ type: 'string_check', operation: 'ilike', reference: 'ÉCOLE' }, [
      [answer, "à l'école", 1],
      [answer, 'ecole', 0],
    ]);
  });
});

describe('regex', () => {
  it('match and full_match, flags, unicode', async () => {
    await expectScores({ type: 'regex', pattern: '\\d+', mode: 'match' }, [
      [row(), 'abc 12', 1],
      [row(), 'abc', 0],
      [row(), '', 0],
    ]);
    await expectScores({ type: 'regex', pattern: '(?: \\d)+', mode: 'full_match' }, [
      [row(), ' 1 3 7 9', 1],
      [row(), ' 1 3 7 9 ', 0],
      [row(), '', 0],
    ]);
    await expectScores({ type: 'regex', pattern: '^ja$', mode: 'match', flags: 'im' }, [
      [row(), 'Nein\nJA\n', 1],
    ]);
    await expectScores({ type: 'regex', pattern: '^\\p{Script=Han}{2}$', mode: 'full_match' }, [
      [row(), '日本', 1],
      [row(), '日本語', 0],
    ]);
  });
  it('pathological patterns are refused at validation or answered in bounded time', async () => {
    expect(graderErrors({ type: 'regex', pattern: '(a*)\\1b', mode: 'match' })[0].message).toMatch(
      /backreferences/,
    );
    expect(graderErrors({ type: 'regex', pattern: '(?=(a+))a*b', mode: 'match' })[0].message).toMatch(
      /lookahead/,
    );
    const evil = `${'a'.repeat(MB - 1)}!`;
    for (const pattern of ['(a+)+$', '^(a|a)*$', '(a|aa)+$', '^(a?){30}a{30}$']) {
      const started = performance.now();
      await expectScores({ type: 'regex', pattern, mode: 'match' }, [[row(), evil, 0]]);
      expect(performance.now() - started, pattern).toBeLessThan(10_000);
    }
  });
  it('a match past the work bound fails with GraderError naming the grader and the sample', async () => {
    const grade = createGrader({
      type: 'multi',
      combine: 'min',
      graders: [{ type: 'regex', pattern: '(?:a?){500}b', mode: 'match' }],
    });
    const run = grade([row(), row()], ['ab', 'a'.repeat(MB)]);
    await expect(run).rejects.toThrow(GraderError);
    await expect(grade([row(), row()], ['ab', 'a'.repeat(MB)])).rejects.toThrow(
      /grader \/graders\/0, sample 1: matching would take more than/,
    );
  });
});

describe('text_similarity', () => {
  it('each metric against a field, with empty strings and unicode', async () => {
    const ref = row({ answer: 'the cat sat on the mat' });
    const spec = (metric: string) => ({ type: 'text_similarity', metric, reference: '{{item.answer}}' });
    await expectScores(spec('edit_distance'), [
      [row({ answer: 'sitting' }), 'kitten', 4 / 7],
      [row({ answer: '' }), '', 1],
      [row({ answer: 'naïve' }), 'naive', 0.8],
    ]);
    await expectScores(spec('token_f1'), [
      [ref, 'the cat sat on the mat', 1],
      [ref, 'The Cat.', (2 * 1 * (2 / 6)) / (1 + 2 / 6)],
      [ref, '', 0],
    ]);
    await expectScores(spec('bleu'), [
      [ref, 'the cat sat', Math.exp(-1)],
      [ref, 'dog', 0],
    ]);
    await expectScores(spec('rouge_l'), [
      [ref, 'the mat', (2 * 1 * (2 / 6)) / (1 + 2 / 6)],
      [row({ answer: 'Über alles' }), 'über ALLES', 1],
    ]);
  });
});

describe('json', () => {
  const spec = {
    type: 'json',
    schema: {
      type: 'object',
      required: ['a'],
      properties: { a: { type: 'integer' }, tag: { pattern: '^[a-z]+$' } },
    },
    fields: { '/a': '{{item.answer}}', '/meta/ok': true },
  };
  it('score = the fraction of checks passed; unparsable → 0', async () => {
    const r = row({ answer: 3 });
    await expectScores(spec, [
      [r, '{"a": 3, "meta": {"ok": true}}', 1],
      [r, '{"a": 4, "meta": {"ok": true}}', 2 / 3],
      [r, '{"a": "3"}', 0], // schema fails, "3" ≠ 3, no /meta/ok
      [r, '{"a": 3, "tag": "ÄÖ"}', 1 / 3], // the tag fails the schema, /meta/ok is missing
      [r, 'not json', 0],
      [r, '', 0],
    ]);
    await expectScores({ type: 'json' }, [
      [r, '[1, 2]', 1],
      [r, '{"unterminated": ', 0],
    ]);
  });
  it('compares a whole-field template by JSON value, a text template as text', async () => {
    await expectScores({ type: 'json', fields: { '/x': '{{item.obj}}', '/y': 'id-{{item.n}}' } }, [
      [row({ obj: { k: [1, 2] }, n: 7 }), '{"x": {"k": [1, 2]}, "y": "id-7"}', 1],
      [row({ obj: { k: [1, 2] }, n: 7 }), '{"x": {"k": [2, 1]}, "y": "id-7"}', 0.5],
    ]);
  });
  it('unknown formats are a validation error (none are defined)', () => {
    expect(graderErrors({ type: 'json', schema: { type: 'string', format: 'email' } })[0].message).toMatch(
      /unknown format/,
    );
  });
});

describe('numeric', () => {
  it('extracts the first or last number and compares with tolerance', async () => {
    await expectScores({ type: 'numeric', reference: '{{item.answer}}' }, [
      [row({ answer: '42' }), 'so the answer is 42', 1],
      [row({ answer: 42 }), 'step 1: 40 + 2 = 42', 1],
      [row({ answer: '42' }), '42 is wrong, it is 41', 0],
      [row({ answer: '1,234' }), 'Total: 1234', 1],
      [row({ answer: '42' }), '', 0],
      [row({ answer: '42' }), 'forty-two', 0],
    ]);
    await expectScores({ type: 'numeric', reference: 100, extract: 'first', tolerance: { relative: 0.01 } }, [
      [row(), 'about 101 or 500', 1],
      [row(), 'about 98.9', 0],
    ]);
    await expectScores({ type: 'numeric', reference: '3.14', tolerance: { absolute: 0.01 } }, [
      [row(), 'π ≈ 3.1416', 1],
    ]);
  });
});

describe('length', () => {
  it('chars (code points) and words with a penalty per unit outside the range', async () => {
    await expectScores({ type: 'length', min: 2, max: 4, penaltyPerUnit: 0.25 }, [
      [row(), 'abc', 1],
      [row(), '😀😀😀😀', 1],
      [row(), '', 0.5],
      [row(), 'abcdefg', 0.25],
      [row(), 'x'.repeat(100), 0],
    ]);
    await expectScores({ type: 'length', max: 3, unit: 'words', penaltyPerUnit: 0.1 }, [
      [row(), 'one two three four five', 0.8],
      [row(), '', 1],
    ]);
  });
  it('tokens with the injected tokenizer count', async () => {
    const grade = createGrader(
      { type: 'length', max: 2, unit: 'tokens', penaltyPerUnit: 0.5 },
      { countTokens: (text) => new TextEncoder().encode(text).length },
    );
    expect((await grade([row(), row()], ['ab', 'é!'])).scores).toEqual([1, 0.5]);
  });
});

describe('reward_model', () => {
  it('passes prompt texts (chat template for messages rows) and responses to the injected scorer', async () => {
    const seen: string[][] = [];
    const grade = createGrader(
      { type: 'reward_model', name: 'rm' },
      {
        rewardModel: async (prompts, responses) => {
          seen.push(prompts);
          return responses.map((r) => r.length / 10);
        },
      },
    );
    const rows: PromptRow[] = [row(), { messages: [{ role: 'user', content: 'Hi' }] }];
    expect(await grade(rows, ['abc', ''])).toEqual({ scores: [0.3, 0], parts: { rm: [0.3, 0] } });
    expect(seen).toEqual([['Q', '<|user|>\nHi\n<|assistant|>\n']]);
  });
  it('refuses a scorer that returns the wrong count or a non-finite score', async () => {
    const short = createGrader({ type: 'reward_model' }, { rewardModel: async () => [1] });
    await expect(short([row(), row()], ['a', 'b'])).rejects.toThrow(/gave 1 scores for 2 responses/);
    const nan = createGrader({ type: 'reward_model' }, { rewardModel: async () => [Number.NaN] });
    await expect(nan([row()], ['a'])).rejects.toThrow(/score is NaN/);
  });
});

describe('multi', () => {
  it('combines children and reports each by name; nested children as parent/child', async () => {
    const grade = createGrader({
      type: 'multi',
      combine: 'weighted_sum',
      weights: { exact: 2, style: 0.5 },
      graders: [
        { type: 'string_check', name: 'exact', operation: 'eq', reference: '{{item.answer}}' },
        {
          type: 'multi',
          name: 'style',
          combine: 'product',
          graders: [
            { type: 'length', max: 5, penaltyPerUnit: 0.1 },
            { type: 'regex', name: 'digits', pattern: '^\\d+$', mode: 'match' },
          ],
        },
      ],
    });
    const rows = [row({ answer: '42' }), row({ answer: '42' })];
    const { scores, parts } = await grade(rows, ['42', '4200000']);
    // '42': exact 1, style 1·1 → 2·1 + 0.5·1; '4200000': exact 0, style (1 − 0.2)·1 → 0.5·0.8
    expect(scores[0]).toBeCloseTo(2.5, 12);
    expect(scores[1]).toBeCloseTo(0.4, 12);
    expect(Object.keys(parts).sort()).toEqual(['exact', 'style', 'style/digits', 'style/length']);
    expect(parts.exact).toEqual([1, 0]);
    expect(parts['style/length'][1]).toBeCloseTo(0.8, 12);
    expect(parts.style[1]).toBeCloseTo(0.8, 12);
  });
  it('a single grader reports itself under its name, default its type', async () => {
    const grade = createGrader({ type: 'regex', pattern: 'a', mode: 'match' });
    expect(await grade([row()], ['a'])).toEqual({ scores: [1], parts: { regex: [1] } });
  });
});

describe('inputs', () => {
  it('a row missing a referenced field fails with GraderError naming it (rowFieldErrors catches it before a run)', async () => {
    const grade = createGrader({ type: 'string_check', operation: 'eq', reference: '{{item.answer}}' });
    await expect(grade([row({ answer: 'x' }), row()], ['x', 'y'])).rejects.toThrow(
      'grader (root), sample 1: the prompt row has no field "answer"',
    );
    // Inherited properties are not fields.
    await expect(
      createGrader({ type: 'string_check', operation: 'eq', reference: '{{item.constructor}}' })(
        [row()],
        ['x'],
      ),
    ).rejects.toThrow(/no field "constructor"/);
  });
  it('refuses mismatched batches and responses over MAX_RESPONSE_CHARS', async () => {
    const grade = createGrader({ type: 'length', max: 1, penaltyPerUnit: 0 });
    await expect(grade([row()], [])).rejects.toThrow(/1 rows for 0 responses/);
    await expect(grade([row()], ['x'.repeat(MAX_RESPONSE_CHARS + 1)])).rejects.toThrow(/more than 1048576/);
  });
  it('every grader type scores a 1 MB response in bounded time', async () => {
    const long = row({ long: 'lorem ipsum 12 '.repeat(1000) }); // 15 000 characters: a field, not a literal
    const huge = `${'lorem ipsum 12 '.repeat(Math.floor((MB - 7) / 15))}{"a":1}`;
    const specs = [
      { type: 'string_check', operation: 'ilike', reference: 'IPSUM' },
      { type: 'regex', pattern: '(\\w+\\s?)+\\{', mode: 'match' },
      { type: 'regex', pattern: '(?:lorem ipsum \\d+ )+\\{"a":1\\}', mode: 'full_match' },
      { type: 'text_similarity', metric: 'edit_distance', reference: 'lorem ipsum' },
      { type: 'text_similarity', metric: 'edit_distance', reference: '{{item.long}}' },
      { type: 'text_similarity', metric: 'token_f1', reference: 'lorem ipsum' },
      { type: 'text_similarity', metric: 'bleu', reference: 'lorem ipsum 12' },
      { type: 'text_similarity', metric: 'rouge_l', reference: '{{item.long}}' },
      { type: 'json', schema: { type: 'object' } },
      { type: 'numeric', reference: 1 },
      { type: 'length', max: 10, unit: 'words', penaltyPerUnit: 0.001 },
    ];
    for (const spec of specs) {
      const started = performance.now();
      const { scores } = await createGrader(spec)([long], [huge]);
      expect(Number.isFinite(scores[0]) && scores[0] >= 0 && scores[0] <= 1, spec.type).toBe(true);
      expect(performance.now() - started, JSON.stringify(spec).slice(0, 80)).toBeLessThan(15_000);
    }
  });
});

describe('deep nesting', () => {
  it('a recursive schema on a document nested 200 000 deep fails the schema check instead of the run', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    await expectScores({ type: 'json', schema: { type: 'array', items: { $ref: '#' } } }, [
      [row(), deep, 0],
      [row(), '[[], [[]]]', 1],
    ]);
  });
  it('a schema nested thousands deep is a validation error, not a crash', () => {
    let schema: Record<string, unknown> = { type: 'array' };
    for (let i = 0; i < 5000; i++) schema = { items: schema };
    const errors = graderErrors({ type: 'json', schema });
    expect(errors).toEqual([{ path: '/schema', message: 'nests more than 32 levels of objects and arrays' }]);
  });
});
