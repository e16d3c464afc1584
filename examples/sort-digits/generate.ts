// Writes the four sort-digits datasets: `npx tsx examples/sort-digits/generate.ts [--out dir] [--seed n]`.
// Without options it rewrites the committed files in data/ byte for byte.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type DatasetKind, formatJsonlError, validateJsonl } from '@rlhf/contracts';
import {
  DEFAULT_COUNTS,
  DEFAULT_SEEDS,
  generatePreferenceRows,
  generatePromptRows,
  generateRankedRows,
  generateSftRows,
  toJsonl,
} from './generators.js';
import { sortDigitsFiles } from './index.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: dirname(sortDigitsFiles.sft) },
    // base seed: the four files use seed, seed + 1, seed + 2, seed + 3 (default: the committed seeds 1..4)
    seed: { type: 'string' },
  },
});
const base = values.seed === undefined ? undefined : Number(values.seed);
const seed = (kind: keyof typeof DEFAULT_SEEDS) =>
  base === undefined ? DEFAULT_SEEDS[kind] : base + DEFAULT_SEEDS[kind] - 1;

const files: [DatasetKind, string, unknown[]][] = [
  ['sft', 'sft.jsonl', generateSftRows(DEFAULT_COUNTS.sft, { seed: seed('sft') })],
  [
    'preference',
    'preference.jsonl',
    generatePreferenceRows(DEFAULT_COUNTS.preference, { seed: seed('preference') }),
  ],
  ['ranked', 'ranked.jsonl', generateRankedRows(DEFAULT_COUNTS.ranked, { seed: seed('ranked') })],
  ['prompt', 'prompts.jsonl', generatePromptRows(DEFAULT_COUNTS.prompt, { seed: seed('prompt') })],
];

await mkdir(values.out, { recursive: true });
for (const [kind, name, rows] of files) {
  const text = toJsonl(rows);
  const result = await validateJsonl(kind, text, { keepRows: false });
  if (!result.ok)
    throw new Error(
      `${name} is not a valid ${kind} dataset: ${result.errors.map(formatJsonlError).join('; ')}`,
    );
  await writeFile(join(values.out, name), text);
  console.log(`${join(values.out, name)}: ${result.count} ${kind} rows`);
}
