import { readFile } from 'node:fs/promises';
import { formatJsonlError, validateJsonl } from '@rlhf/contracts';
import { describe, expect, test } from 'vitest';
import {
  DEFAULT_COUNTS,
  generatePreferenceRows,
  generatePromptRows,
  generateRankedRows,
  generateSftRows,
  toJsonl,
} from './generators.js';
import { sortDigitsFiles } from './index.js';
import { groundTruthScore, idealResponse, parsePrompt } from './task.js';

const valid = async (kind: Parameters<typeof validateJsonl>[0], rows: unknown[]) => {
  const result = await validateJsonl(kind, toJsonl(rows), { keepRows: false });
  expect(result.errors.map(formatJsonlError)).toEqual([]);
  expect(result.count).toBe(rows.length);
};

describe('sort-digits generators', () => {
  test('every generated row is valid under the dataset contracts', async () => {
    await valid('sft', generateSftRows(300));
    await valid('preference', generatePreferenceRows(300));
    await valid('ranked', generateRankedRows(300, { k: 5 }));
    await valid('prompt', generatePromptRows(300));
  });

  test('SFT answers are ideal except for a noise share of near misses', () => {
    const share = (noise: number) => {
      const rows = generateSftRows(2000, { noise });
      return rows.filter((r) => r.response !== idealResponse(r.prompt)).length / rows.length;
    };
    expect(share(0)).toBe(0);
    // Some mistakes happen to equal the ideal answer (e.g. echoing an already sorted prompt).
    expect(share(0.3)).toBeGreaterThan(0.2);
    expect(share(0.3)).toBeLessThan(0.33);
    // All noise: mostly wrong answers, and every wrong one scores below the ideal 1.
    const wrong = generateSftRows(500, { noise: 1 }).filter((r) => r.response !== idealResponse(r.prompt));
    expect(wrong.length).toBeGreaterThan(400);
    for (const r of wrong) expect(groundTruthScore(r.prompt, r.response)).toBeLessThan(1);
  });

  test('chosen always outscores rejected; rankings are strictly best → worst', () => {
    for (const { prompt, chosen, rejected } of generatePreferenceRows(500)) {
      expect(groundTruthScore(prompt, chosen)).toBeGreaterThan(groundTruthScore(prompt, rejected));
    }
    for (const { prompt, responses } of generateRankedRows(300)) {
      expect(responses).toHaveLength(4);
      const scores = responses.map((r) => groundTruthScore(prompt, r));
      for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeLessThan(scores[i - 1]);
    }
  });

  test('prompts have minDigits..maxDigits digits', () => {
    const lengths = generatePromptRows(500, { minDigits: 2, maxDigits: 6 }).map(
      (r) => parsePrompt(r.prompt).length,
    );
    expect(Math.min(...lengths)).toBe(2);
    expect(Math.max(...lengths)).toBe(6);
    expect(() => generatePromptRows(1, { minDigits: 1 })).toThrow(RangeError);
  });

  test('the same seed gives the same rows, another seed other rows', () => {
    expect(generateRankedRows(50, { seed: 9 })).toEqual(generateRankedRows(50, { seed: 9 }));
    expect(generateSftRows(50, { seed: 9 })).toEqual(generateSftRows(50, { seed: 9 }));
    expect(generatePromptRows(50, { seed: 9 })).not.toEqual(generatePromptRows(50, { seed: 10 }));
  });

  test('the committed files are exactly what generate.ts writes', async () => {
    expect(await readFile(sortDigitsFiles.sft, 'utf8')).toBe(toJsonl(generateSftRows(DEFAULT_COUNTS.sft)));
    expect(await readFile(sortDigitsFiles.preference, 'utf8')).toBe(
      toJsonl(generatePreferenceRows(DEFAULT_COUNTS.preference)),
    );
    expect(await readFile(sortDigitsFiles.ranked, 'utf8')).toBe(
      toJsonl(generateRankedRows(DEFAULT_COUNTS.ranked)),
    );
    expect(await readFile(sortDigitsFiles.prompt, 'utf8')).toBe(
      toJsonl(generatePromptRows(DEFAULT_COUNTS.prompt)),
    );
  });
});
