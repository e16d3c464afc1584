import { describe, expect, test } from 'vitest';
import { createJsonlValidator, formatJsonlError, validateJsonl } from './jsonl.js';

const lines = (...rows: unknown[]) =>
  rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n');
const messages = async (...args: Parameters<typeof validateJsonl>) =>
  (await validateJsonl(...args)).errors.map(formatJsonlError);

describe('validateJsonl', () => {
  test('accepts every row shape and returns the rows', async () => {
    const sft = await validateJsonl(
      'sft',
      lines(
        { prompt: 'sort 3 1:', response: ' 1 3' },
        {
          messages: [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'hi' },
            { role: 'assistant', content: 'hello' },
          ],
        },
      ),
    );
    expect(sft).toMatchObject({ ok: true, count: 2, errors: [] });
    expect(sft.rows[1]).toEqual({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
      ],
    });
    expect((await validateJsonl('preference', lines({ prompt: 'p', chosen: 'a', rejected: 'b' }))).ok).toBe(
      true,
    );
    expect((await validateJsonl('ranked', lines({ prompt: 'p', responses: ['a', 'b', 'c'] }))).count).toBe(1);
    expect((await validateJsonl('prompt', lines({ prompt: 'p' }, { prompt: 'q' }))).rows).toEqual([
      { prompt: 'p' },
      { prompt: 'q' },
    ]);
  });

  test('names the 1-based line and the field of each error', async () => {
    const text = lines(
      { prompt: 'p', responses: ['a', 'b'] },
      { prompt: 'p', responses: ['a', 'b', 'a'] },
      'not json',
      { prompt: 'p', responses: ['a'], extra: 1 },
      { prompt: '', responses: ['a', 7] },
      [1, 2],
    );
    expect(await messages('ranked', text)).toEqual([
      'line 2: /responses/2: duplicate response (ties are not allowed)',
      'line 3: invalid JSON',
      'line 4: /extra: unknown field',
      'line 4: /responses: must have at least 2 items',
      'line 5: /prompt: must not be empty',
      'line 5: /responses/1: must be a string',
      'line 6: must be an object',
    ]);
  });

  test('refuses ties, missing fields and bad conversations', async () => {
    expect(await messages('preference', lines({ prompt: 'p', chosen: 'same', rejected: 'same' }))).toEqual([
      'line 1: /rejected: same text as chosen (ties are not allowed)',
    ]);
    expect(
      await messages(
        'sft',
        lines({ prompt: 'p' }, { messages: [] }, { prompt: 'p', response: 'r', messages: [] }),
      ),
    ).toEqual([
      'line 1: /response: required',
      'line 2: /messages: must have at least 1 item',
      'line 3: /prompt: unknown field',
      'line 3: /response: unknown field',
      'line 3: /messages: must have at least 1 item',
    ]);
    const chat = {
      messages: [
        { role: 'user', content: 'a' },
        { role: 'system', content: 'b' },
        { role: 'robot', content: 'c' },
      ],
    };
    expect(await messages('sft', lines(chat))).toEqual([
      'line 1: /messages/2/role: must be one of "system", "user", "assistant"',
    ]);
    chat.messages[2].role = 'user';
    expect(await messages('sft', lines(chat))).toEqual([
      'line 1: /messages/1/role: a system message may only come first',
      'line 1: /messages/2: the last message must be the assistant turn to learn',
    ]);
    // OpenAI's per-turn weight: assistant turns only, and the last (the turn to learn) cannot be 0.
    const weighted = {
      messages: [
        { role: 'user', content: 'a', weight: 1 },
        { role: 'assistant', content: 'b', weight: 0 },
        { role: 'user', content: 'c' },
        { role: 'assistant', content: 'd', weight: 0 },
      ],
    };
    expect(await messages('sft', lines(weighted))).toEqual([
      'line 1: /messages/0/weight: only assistant turns have a weight',
      'line 1: /messages/3/weight: the last assistant turn is the one to learn: its weight cannot be 0',
    ]);
    expect(await messages('prompt', lines({ prompt: 'x'.repeat(16_385) }))).toEqual([
      'line 1: /prompt: must have at most 16384 characters',
    ]);
  });

  test('skips blank lines, accepts CRLF and a BOM, refuses an empty file', async () => {
    const result = await validateJsonl(
      'prompt',
      '\uFEFF{"prompt":"a"}\r\n\r\n  \n{"prompt":"b"}\r\n{"prompt":""}\n',
    );
    expect(result.count).toBe(3);
    expect(result.errors.map(formatJsonlError)).toEqual(['line 5: /prompt: must not be empty']);
    expect(await messages('prompt', '\n\n')).toEqual(['file: no rows']);
  });

  test('reads lines from an async iterable (e.g. readline)', async () => {
    async function* source() {
      yield '{"prompt":"a"}';
      yield '';
      yield '{"prompt":1}';
    }
    expect(await messages('prompt', source())).toEqual(['line 3: /prompt: must be a string']);
  });
});

describe('createJsonlValidator', () => {
  const text = lines(
    { prompt: 'héllo ✓', chosen: 'ünïcode', rejected: 'b' },
    { prompt: 'p', chosen: 'c', rejected: 'r' },
  );

  test('gives the same verdict whatever the chunk boundaries, even inside a UTF-8 character', () => {
    const bytes = new TextEncoder().encode(text);
    for (const size of [1, 2, 3, 7, bytes.length]) {
      const validator = createJsonlValidator('preference', { keepRows: true });
      for (let i = 0; i < bytes.length; i += size) validator.push(bytes.subarray(i, i + size));
      const result = validator.end();
      expect(result.ok).toBe(true);
      expect(result.rows[0]).toEqual({ prompt: 'héllo ✓', chosen: 'ünïcode', rejected: 'b' });
      expect(result.count).toBe(2);
    }
  });

  test('stops at maxErrors so an upload can be refused early', () => {
    const validator = createJsonlValidator('prompt', { maxErrors: 2 });
    expect(validator.push('{"prompt":"ok"}\nbad\n')).toBe(true);
    expect(validator.push('bad\n{"prompt":"never checked"}\n')).toBe(false);
    expect(validator.push('bad\n')).toBe(false);
    const result = validator.end();
    expect(result.errors.map(formatJsonlError)).toEqual(['line 2: invalid JSON', 'line 3: invalid JSON']);
    expect(result.rows).toEqual([]); // streaming validators keep no rows unless asked
  });

  test('refuses a line longer than maxLineLength without buffering it, then goes on', () => {
    const validator = createJsonlValidator('prompt', { maxLineLength: 20 });
    validator.push('{"prompt":"a"}\n{"prompt":"');
    validator.push('x'.repeat(100));
    validator.push('"}\n{"prompt":""}');
    expect(validator.end().errors.map(formatJsonlError)).toEqual([
      'line 2: line longer than 20 characters',
      'line 3: /prompt: must not be empty',
    ]);
  });

  test('refuses rows beyond maxRows and pushes after end', () => {
    const validator = createJsonlValidator('prompt', { maxRows: 1 });
    validator.push('{"prompt":"a"}\n{"prompt":"b"}\n');
    expect(validator.end().errors.map(formatJsonlError)).toEqual(['line 2: more than 1 rows']);
    expect(() => validator.push('x')).toThrow('push() after end()');
  });
});
