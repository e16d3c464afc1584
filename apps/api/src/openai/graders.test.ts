// OpenAI graders mapped onto ours: the mapped spec is compiled by @rlhf/graders and scores hand-computed values.
import { createGrader } from '@rlhf/graders';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.js';
import { openaiGrader } from './graders.js';

const exact = { type: 'string_check', name: 'exact', operation: 'eq', reference: '{{item.answer}}' };
const fuzzy = {
  type: 'text_similarity',
  name: 'fuzzy',
  evaluation_metric: 'fuzzy_match',
  reference: '{{item.answer}}',
};
const multi = (calculate_output: string) => ({
  type: 'multi',
  name: 'Both',
  graders: { exact, fuzzy },
  calculate_output,
});
// "kitten" against "sitting": exact 0, fuzzy 1 − 3/7 = 4/7; "sitting": both 1.
const rows = [{ prompt: 'p', answer: 'sitting' }];
const scoreOf = async (grader: Record<string, unknown>, response: string) =>
  (await createGrader(openaiGrader(grader))(rows, [response])).scores[0];
const paramOf = (grader: Record<string, unknown>) => {
  try {
    openaiGrader(grader);
  } catch (error) {
    if (error instanceof ApiError)
      return { status: error.statusCode, param: error.field, message: error.message };
    throw error;
  }
  throw new Error('accepted');
};

describe('openaiGrader', () => {
  it('multi: a weighted sum with parentheses and a divisor is Σ wᵢ·scoreᵢ', async () => {
    const grader = multi('(2 * exact + fuzzy) / 4');
    expect(openaiGrader(grader)).toMatchObject({
      type: 'multi',
      name: 'both',
      combine: 'weighted_sum',
      weights: { exact: 0.5, fuzzy: 0.25 },
    });
    expect(await scoreOf(grader, 'kitten')).toBeCloseTo((4 / 7) * 0.25, 12);
    expect(await scoreOf(grader, 'sitting')).toBeCloseTo(0.75, 12);
    expect(openaiGrader(multi('exact'))).toMatchObject({ weights: { exact: 1, fuzzy: 0 } }); // unused: weight 0
  });

  it('multi: min(…) and a product of every grader', async () => {
    expect(await scoreOf(multi('min(exact, fuzzy)'), 'kitten')).toBe(0);
    expect(await scoreOf(multi('fuzzy * exact'), 'sitting')).toBe(1);
    expect(await scoreOf(multi('fuzzy - 0.5 * exact'), 'kitten')).toBeCloseTo(4 / 7, 12);
  });

  it('multi: formulas outside what ours computes are 400s naming calculate_output', () => {
    for (const formula of [
      'exact + 1',
      'exact * fuzzy + fuzzy',
      'max(exact, fuzzy)',
      'exact / fuzzy',
      'nope',
    ])
      expect(paramOf(multi(formula)), formula).toMatchObject({
        status: 400,
        param: 'method.reinforcement.grader.calculate_output',
      });
  });

  it('model and code graders are 400s naming the type as unsupported', () => {
    for (const type of ['score_model', 'label_model', 'python', 'endpoint']) {
      const error = paramOf({ type, name: 'g', source: 'def grade(s, i): return 1' });
      expect(error).toMatchObject({ status: 400, param: 'method.reinforcement.grader.type' });
      expect(error.message).toContain(`${type} is not supported`);
    }
  });

  it('a bad child is named by its key', () => {
    const grader = { ...multi('a'), graders: { a: { type: 'python', source: 'x' } } };
    expect(paramOf(grader).param).toBe('method.reinforcement.grader.graders.a.type');
  });
});
