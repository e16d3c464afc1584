import { ByteTokenizer, presetConfig } from '@rlhf/model';
import { describe, expect, test } from 'vitest';
import {
  batchOrder,
  effectiveMaxSeqLen,
  lrScheduleOf,
  padRight,
  permutation,
  promptText,
  promptTokens,
  splitHeldOut,
  splitTrainValidation,
  tokenizeExample,
} from './data.js';

describe('tokenizeExample', () => {
  const tokenizer = new ByteTokenizer();
  test('frames prompt and response with bos and eos', () => {
    const ex = tokenizeExample(tokenizer, 'ab', 'c', 10);
    expect(ex).toEqual({ ids: [256, 97, 98, 99, 257], promptTokens: 3, truncated: false });
  });
  test('keeps the start of sequences longer than the cap', () => {
    expect(tokenizeExample(tokenizer, 'abc', 'de', 5)).toEqual({
      ids: [256, 97, 98, 99, 100],
      promptTokens: 4,
      truncated: true,
    });
  });
  test('the cap is the model context at most', () => {
    expect(effectiveMaxSeqLen(256, presetConfig('tiny'))).toBe(64);
    expect(effectiveMaxSeqLen(32, presetConfig('tiny'))).toBe(32);
  });
});

describe('splits and batch order', () => {
  test('permutation is a seeded permutation', () => {
    const p = permutation(50, 1);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(permutation(50, 1)).toEqual(p);
    expect(permutation(50, 2)).not.toEqual(p);
  });

  test('split holds out round(n * fraction) rows, the same ones for the same seed', () => {
    const rows = Array.from({ length: 100 }, (_, i) => i);
    const a = splitTrainValidation(rows, 0.1, 5);
    expect(a.validation).toHaveLength(10);
    expect(a.train).toHaveLength(90);
    expect([...a.train, ...a.validation].sort((x, y) => x - y)).toEqual(rows);
    expect(splitTrainValidation(rows, 0.1, 5)).toEqual(a);
    expect(splitTrainValidation(rows, 0.1, 6).validation).not.toEqual(a.validation);
    expect(splitTrainValidation(rows, 0, 5).validation).toEqual([]);
  });

  test('every epoch visits each row once; a step always gets the same rows', () => {
    const order = batchOrder(10, 4, 3);
    const stream = [0, 1, 2, 3, 4].flatMap((s) => order(s)); // 20 positions = 2 epochs
    expect([...stream.slice(0, 10)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...stream.slice(10)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(stream.slice(0, 10)).not.toEqual(stream.slice(10));
    expect(batchOrder(10, 4, 3)(3)).toEqual(order(3)); // a fresh order (a resumed stage) agrees
  });

  test('padRight pads rows to one length', () => {
    expect(padRight([[1, 2], [3]], 3, 9)).toEqual([1, 2, 9, 3, 9, 9]);
    expect(() => padRight([[1, 2, 3, 4]], 3, 0)).toThrow(/more than 3/);
  });

  test('lr schedules come from the stage config', () => {
    expect(lrScheduleOf({ lr: 1e-3, warmupSteps: 2, schedule: 'constant' }, 10)).toEqual({
      kind: 'constant',
      lr: 1e-3,
      warmupSteps: 2,
    });
    expect(lrScheduleOf({ lr: 1e-3, warmupSteps: 0, schedule: 'cosine' }, 10)).toEqual({
      kind: 'cosine',
      lr: 1e-3,
      warmupSteps: 0,
      totalSteps: 10,
    });
  });
});

describe('promptText / promptTokens', () => {
  const tokenizer = new ByteTokenizer();
  test('a text row is its prompt; a messages row is the chat template ending in the assistant header', () => {
    expect(promptText({ prompt: 'sort 2 1:', answer: ' 1 2' })).toBe('sort 2 1:');
    const chat = {
      messages: [
        { role: 'system' as const, content: 'Be brief.' },
        { role: 'user' as const, content: 'Hi' },
      ],
      answer: 'Hello',
    };
    expect(promptText(chat)).toBe('<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n');
  });
  test('[bos] + the last maxLen − 1 tokens, for a row or its text', () => {
    const row = { messages: [{ role: 'user' as const, content: 'Hi' }] };
    const text = '<|user|>\nHi\n<|assistant|>\n';
    const ids = [...text].map((c) => c.charCodeAt(0));
    expect(promptTokens(tokenizer, row, 100)).toEqual([tokenizer.bosId, ...ids]);
    expect(promptTokens(tokenizer, text, 4)).toEqual([tokenizer.bosId, ...ids.slice(-3)]);
    expect(promptTokens(tokenizer, { prompt: 'ab' }, 10)).toEqual([tokenizer.bosId, 97, 98]);
  });
});

describe('splitHeldOut', () => {
  const config = { validationFraction: 0.1, seed: 5 };
  test('validationRows: the dataset’s last rows are held out, whatever the stage dropped before', () => {
    // Dataset rows 0..9; the stage dropped rows 3 and 8 (too long): 7 and 9 remain of the last three.
    const source = [0, 1, 2, 4, 5, 6, 7, 9];
    const rows = source.map((i) => `row ${i}`);
    expect(splitHeldOut(rows, source, 10, { ...config, validationRows: 3 })).toEqual({
      train: ['row 0', 'row 1', 'row 2', 'row 4', 'row 5', 'row 6'],
      validation: ['row 7', 'row 9'],
    });
  });
  test('validationRows 0: the seeded fraction split; all rows held out is an error', () => {
    const rows = Array.from({ length: 20 }, (_, i) => i);
    expect(splitHeldOut(rows, rows, 20, { ...config, validationRows: 0 })).toEqual(
      splitTrainValidation(rows, 0.1, 5),
    );
    expect(() => splitHeldOut(rows, rows, 20, { ...config, validationRows: 20 })).toThrow(/no training row/);
  });
});
