import { describe, expect, it } from 'vitest';
import { convertFile, FormatError } from './formats.js';

const jsonl = (...rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n');
const sys = { role: 'system', content: 'Be brief.' };
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string, weight?: 0 | 1) => ({
  role: 'assistant',
  content,
  ...(weight === undefined ? {} : { weight }),
});

describe('OpenAI fine-tuning files as our rows', () => {
  it('supervised: one sft row per trained assistant turn, earlier assistant turns as weight 0 context', () => {
    const { format, rows } = convertFile(
      jsonl({ messages: [sys, user('a'), assistant('A', 0), user('b'), assistant('B')] }),
    );
    expect(format).toBe('supervised');
    expect(rows).toEqual([{ messages: [sys, user('a'), assistant('A', 0), user('b'), assistant('B')] }]);
    const both = convertFile(jsonl({ messages: [user('a'), assistant('A'), user('b'), assistant('B', 1)] }));
    expect(both.rows).toEqual([
      { messages: [user('a'), assistant('A')] },
      { messages: [user('a'), assistant('A', 0), user('b'), assistant('B')] },
    ]);
  });

  it('dpo: the input conversation stays turns (the stage renders it with the model template)', () => {
    const { format, rows } = convertFile(
      jsonl({
        input: { messages: [sys, user('sort 2 1')] },
        preferred_output: [assistant('1 2')],
        non_preferred_output: [assistant('2 1')],
      }),
    );
    expect(format).toBe('dpo');
    expect(rows).toEqual([{ prompt: [sys, user('sort 2 1')], chosen: '1 2', rejected: '2 1' }]);
  });

  it('reinforcement rows pass through with their reference fields; bad lines name line and field', () => {
    const row = { messages: [user('sort 3 1')], answer: '1 3' };
    expect(convertFile(jsonl(row))).toEqual({ format: 'reinforcement', rows: [row] });
    const bad = jsonl({
      input: { messages: [{ role: 'robot', content: 'x' }] },
      preferred_output: [],
      non_preferred_output: [],
    });
    expect(() => convertFile(bad)).toThrow(FormatError);
    expect(() => convertFile(bad)).toThrow(/line 1: input\/messages/);
  });
});
