// Ranked lists, shared by every stage that learns from rankings (reward model, DPO, PRO/RRHF): a prompt with K
// responses best → worst yields all C(K,2) (better, worse) pairs, trained together in one batch, each prompt
// weighing the same whatever its K (the 1/C(K,2) factor of InstructGPT's eq. 1). A preference row is K = 2.
import type { ChatMessage, PreferenceRow, RankedRow } from '@rlhf/contracts';
import {
  chatPrompt,
  longest,
  type ScoreResult,
  type Scorer,
  templatePromptResponse,
  type Tokenizer,
} from '@rlhf/model';
import { tokenizeExample } from './data.js';
import type { Framing } from './framing.js';

export type RankingRow = PreferenceRow | RankedRow;

/** A prompt (text, or a conversation ending in a user turn) and its responses best → worst. */
export function rankedResponses(row: RankingRow): { prompt: string | ChatMessage[]; responses: string[] } {
  return 'responses' in row
    ? { prompt: row.prompt, responses: [...row.responses] }
    : { prompt: row.prompt, responses: [row.chosen, row.rejected] };
}

/** Every (better, worse) index pair of a ranking of k responses: C(k, 2) pairs. */
export function rankedPairs(k: number): [number, number][] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) pairs.push([i, j]);
  return pairs;
}

/** A tokenized ranking: prompt tokens (bos first, if framed so) and each response's tokens (eos last, unless truncated). */
export interface RankedExample {
  prompt: number[];
  responses: number[][];
}

/**
 * One response to a ranking's prompt as [bos] + prompt + response + [eos] within maxLen: text prompts framed as text
 * rows; a conversation in the model's chat template when the framing has one (the response then ends with the
 * template's turn end, no bos/eos added unless the run asks), else in the built-in format as a text row.
 */
function tokenizeRankedResponse(
  tokenizer: Tokenizer,
  prompt: string | ChatMessage[],
  response: string,
  maxLen: number,
  framing: Framing | undefined,
  field: string,
) {
  if (typeof prompt === 'string') return tokenizeExample(tokenizer, prompt, response, maxLen, framing);
  if (!framing?.chatTemplate)
    return tokenizeExample(tokenizer, chatPrompt(prompt, field), response, maxLen, framing);
  const text = templatePromptResponse(framing.chatTemplate, prompt, response, field);
  const ends = framing.templated;
  const promptIds = [...(ends.bos ? [tokenizer.bosId] : []), ...tokenizer.encode(text.prompt)];
  const ids = [...promptIds, ...tokenizer.encode(text.response), ...(ends.eos ? [tokenizer.eosId] : [])];
  return {
    ids: ids.slice(0, maxLen),
    promptTokens: Math.min(promptIds.length, maxLen),
    truncated: ids.length > maxLen,
  };
}

/**
 * Tokenizes a ranking within maxSeqLen (bos when the framing, by default the tokenizer's text framing, adds one;
 * a conversation prompt as tokenizeRankedResponse says); null when a response would be cut away entirely (it cannot
 * be scored). `field` names the row in errors.
 */
export function tokenizeRanking(
  tokenizer: Tokenizer,
  row: RankingRow,
  maxSeqLen: number,
  framing?: Framing,
  field = 'prompt',
): { example: RankedExample; truncated: number } | null {
  const { prompt, responses } = rankedResponses(row);
  const tokenized = responses.map((r) =>
    tokenizeRankedResponse(tokenizer, prompt, r, maxSeqLen, framing, field),
  );
  if (tokenized.some((t) => t.ids.length <= t.promptTokens)) return null;
  return {
    example: {
      prompt: tokenized[0].ids.slice(0, tokenized[0].promptTokens),
      responses: tokenized.map((t) => t.ids.slice(t.promptTokens)),
    },
    truncated: tokenized.filter((t) => t.truncated).length,
  };
}

/** Most responses of any ranking (a loop: datasets can exceed V8's argument limit for a spread). */
export function maxResponses(examples: readonly RankedExample[]): number {
  let k = 0;
  for (const e of examples) if (e.responses.length > k) k = e.responses.length;
  return k;
}

/** One batch of B rankings laid out as B × K response slots (slot b·K + k), with the pairs between slots. */
export interface RankedBatch {
  /** B·K slots: which ranking and which of its responses; null where a ranking shorter than K leaves a gap. */
  slots: ({ example: number; response: number } | null)[];
  better: number[];
  worse: number[];
  /** Per pair: 1 / C(k, 2) of its ranking (each prompt weighs 1 in total), 0 for pairs with a gap. */
  weight: number[];
}

/** The slots and pairs of the rankings at `indices`, K slots each. */
export function rankedBatch(
  examples: readonly RankedExample[],
  indices: readonly number[],
  K: number,
): RankedBatch {
  const batch: RankedBatch = { slots: [], better: [], worse: [], weight: [] };
  const pairs = rankedPairs(K);
  indices.forEach((index, b) => {
    const e = examples[index];
    const k = e.responses.length;
    for (let slot = 0; slot < K; slot++)
      batch.slots.push(slot < k ? { example: index, response: slot } : null);
    for (const [i, j] of pairs) {
      batch.better.push(b * K + i);
      batch.worse.push(b * K + j);
      batch.weight.push(j < k ? 2 / (k * (k - 1)) : 0);
    }
  });
  return batch;
}

const SCORE_BATCH = 64;

/**
 * Runs every response of every ranking through a scorer (packages/model's scoring graph), 64 at a time;
 * `read(out, row, response)` takes what a stage needs of row `row` of a batch. Returns it per ranking, per response.
 */
export async function scoreRankings<T>(
  scorer: Scorer,
  params: ReadonlyMap<string, Float32Array>,
  examples: readonly RankedExample[],
  padId: number,
  read: (out: ScoreResult, row: number, response: readonly number[]) => T,
): Promise<T[][]> {
  const items = examples.flatMap((e, i) => e.responses.map((r) => ({ i, prompt: e.prompt, response: r })));
  const values: T[][] = examples.map(() => []);
  for (let start = 0; start < items.length; start += SCORE_BATCH) {
    const batch = items.slice(start, start + SCORE_BATCH);
    const n = longest(batch.map((b) => b.response));
    const pad = <V>(row: readonly V[], value: V) => [...row, ...new Array<V>(n - row.length).fill(value)];
    const out = await scorer.score({
      params,
      prompts: batch.map((b) => b.prompt),
      padId,
      responses: batch.map((b) => pad(b.response, padId)),
      responseMask: batch.map((b) =>
        pad(
          b.response.map(() => 1),
          0,
        ),
      ),
    });
    batch.forEach((b, j) => {
      values[b.i].push(read(out, j, b.response));
    });
  }
  return values;
}
