// Dataset rows -> token sequences -> batches, all deterministic by seed: the same seed gives the same split and
// the same batch at every step, so a resumed stage needs nothing but its step to find its place in the data.
import { type ChatMessage, isPromptChatRow, type PromptRow } from '@rlhf/contracts';
import type { LrSchedule } from '@rlhf/graph';
import { chatPrompt, createRng, type GptConfig, templateGenerationPrompt, type Tokenizer } from '@rlhf/model';
import { float32, type HostTensor, int64 } from '@rlhf/runtime';
import { conversationTokens, type Framing, textEndsOf } from './framing.js';

/** [bos] + prompt tokens + response tokens + [eos] (bos / eos as framed), cut to a maximum length. */
export interface TokenizedExample {
  ids: number[];
  /** Tokens before the (first) response (bos included): ids[promptTokens] is the first response token. */
  promptTokens: number;
  /** The sequence was longer than the cap and lost its end. */
  truncated: boolean;
  /** Per id, 1 where the token is learned (a conversation's assistant turns); absent = ids from promptTokens on. */
  lossMask?: number[];
}

/** The sequence length a stage really uses: the requested one capped at the model's position count. */
export function effectiveMaxSeqLen(requested: number, config: GptConfig): number {
  return Math.min(requested, config.maxPositions);
}

/**
 * Tokenises prompt and response separately (the response's tokens are what the policy would generate after the
 * prompt) and frames them with bos (when the framing, by default the tokenizer, adds one) and eos. Sequences
 * longer than maxLen keep their start (TRL's `keep_start`).
 */
export function tokenizeExample(
  tokenizer: Tokenizer,
  prompt: string,
  response: string,
  maxLen: number,
  framing?: Framing,
): TokenizedExample {
  const ends = framing?.text ?? textEndsOf(tokenizer);
  const promptIds = [...(ends.bos ? [tokenizer.bosId] : []), ...tokenizer.encode(prompt)];
  const ids = [...promptIds, ...tokenizer.encode(response), ...(ends.eos ? [tokenizer.eosId] : [])];
  return {
    ids: ids.slice(0, maxLen),
    promptTokens: Math.min(promptIds.length, maxLen),
    truncated: ids.length > maxLen,
  };
}

/** A permutation of 0..n-1 (Fisher–Yates) from (seed, stream). */
export function permutation(n: number, seed: number, stream = ''): number[] {
  const rng = createRng(seed, stream);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Rows in a seeded random order. */
export function shuffled<T>(rows: readonly T[], seed: number, stream = 'shuffle'): T[] {
  return permutation(rows.length, seed, stream).map((i) => rows[i]);
}

/**
 * Seeded train/validation split: round(n·fraction) rows held out (at least one when fraction > 0 and n > 1,
 * never all). Both parts keep the rows' original order.
 */
export function splitTrainValidation<T>(
  rows: readonly T[],
  fraction: number,
  seed: number,
): { train: T[]; validation: T[] } {
  if (!(fraction >= 0 && fraction < 1))
    throw new RangeError(`validation fraction must be in [0, 1), got ${fraction}`);
  const n = rows.length;
  const held = fraction === 0 || n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  const heldOut = new Set(permutation(n, seed, 'validation-split').slice(0, held));
  return {
    train: rows.filter((_, i) => !heldOut.has(i)),
    validation: rows.filter((_, i) => heldOut.has(i)),
  };
}

/**
 * The held-out split of a stage: with validationRows = n > 0 the dataset's last n rows (a validation file sent
 * with the training rows), else the seeded validationFraction split. `source[i]` is the dataset row of rows[i]
 * (rows a stage dropped, e.g. too long, leave gaps).
 */
export function splitHeldOut<T>(
  rows: readonly T[],
  source: readonly number[],
  datasetRows: number,
  config: { validationRows?: number; validationFraction: number; seed: number },
): { train: T[]; validation: T[] } {
  const n = config.validationRows ?? 0;
  if (n === 0) return splitTrainValidation(rows, config.validationFraction, config.seed);
  if (n >= datasetRows)
    throw new RangeError(`validationRows ${n} leaves no training row of the dataset's ${datasetRows}`);
  const first = datasetRows - n;
  return {
    train: rows.filter((_, i) => source[i] < first),
    validation: rows.filter((_, i) => source[i] >= first),
  };
}

/**
 * Which training rows each optimizer step uses: the rows in a fresh seeded order every epoch, read batchSize at
 * a time as one endless stream (a batch may span two epochs). Step s reads stream positions s·B .. s·B + B − 1.
 */
export function batchOrder(size: number, batchSize: number, seed: number): (step: number) => number[] {
  if (size < 1) throw new RangeError('batchOrder: no training rows');
  const epochs = new Map<number, number[]>();
  const epochOrder = (epoch: number) => {
    let order = epochs.get(epoch);
    if (!order) {
      if (epochs.size > 2) epochs.delete(epochs.keys().next().value!);
      order = permutation(size, seed, `epoch-${epoch}`);
      epochs.set(epoch, order);
    }
    return order;
  };
  return (step) =>
    Array.from({ length: batchSize }, (_, j) => {
      const position = step * batchSize + j;
      return epochOrder(Math.floor(position / size))[position % size];
    });
}

/** Rows padded on the right to `length` with `pad`, flattened row-major ([rows.length, length]). */
export function padRight(rows: readonly (readonly number[])[], length: number, pad: number): number[] {
  const out = new Array<number>(rows.length * length).fill(pad);
  rows.forEach((row, r) => {
    if (row.length > length) throw new RangeError(`row ${r} has ${row.length} values, more than ${length}`);
    for (let i = 0; i < row.length; i++) out[r * length + i] = row[i];
  });
  return out;
}

/**
 * Stacks the K batches of one session run (each a record of int64 / float32 [...] tensors) into [K, 1, ...]:
 * the layout of packages/graph's fused train step with one micro-batch per step.
 */
export function stackSteps(batches: readonly Record<string, HostTensor>[]): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const name of Object.keys(batches[0])) {
    const parts = batches.map((b) => b[name]);
    const dims = [parts.length, 1, ...parts[0].dims];
    const size = parts[0].data.length;
    for (const p of parts)
      if (p.type !== parts[0].type || p.dims.join() !== parts[0].dims.join())
        throw new Error(`stackSteps: '${name}' differs in type or shape between steps`);
    if (parts[0].type === 'int64') {
      const data = new BigInt64Array(parts.length * size);
      for (const [i, p] of parts.entries()) data.set(p.data as BigInt64Array, i * size);
      out[name] = int64(dims, data);
    } else if (parts[0].type === 'float32') {
      const data = new Float32Array(parts.length * size);
      for (const [i, p] of parts.entries()) data.set(p.data as Float32Array, i * size);
      out[name] = float32(dims, data);
    } else throw new Error(`stackSteps: '${name}' is ${parts[0].type}; only int64 and float32 are stacked`);
  }
  return out;
}

/** The lr settings of a stage config. */
export interface LrSettings {
  lr: number;
  warmupSteps: number;
  schedule: 'cosine' | 'linear' | 'constant';
}

/** The packages/graph lrSchedule of a stage config: warm-up, then constant or decaying to 0 at totalSteps. */
export function lrScheduleOf(settings: LrSettings, totalSteps: number): LrSchedule {
  const { lr, warmupSteps } = settings;
  return settings.schedule === 'constant'
    ? { kind: 'constant', lr, warmupSteps }
    : { kind: settings.schedule, lr, warmupSteps, totalSteps };
}

/**
 * A conversation for training (framing.ts conversationTokens) cut to maxLen like tokenizeExample; `field` names the
 * row in errors (e.g. 'rows[3].messages').
 */
export function tokenizeConversation(
  framing: Framing,
  messages: readonly ChatMessage[],
  maxLen: number,
  completionOnly: boolean,
  field = 'messages',
): TokenizedExample {
  const { ids, mask } = conversationTokens(framing, messages, completionOnly, field);
  const first = mask.indexOf(1);
  return {
    ids: ids.slice(0, maxLen),
    promptTokens: Math.min(first === -1 ? ids.length : first, maxLen),
    truncated: ids.length > maxLen,
    lossMask: mask.slice(0, maxLen),
  };
}

/** The text a prompt row gives the policy: its `prompt`, or its `messages` in the built-in chat format (ending in the assistant header). */
export function promptText(row: PromptRow): string {
  return isPromptChatRow(row) ? chatPrompt(row.messages) : row.prompt;
}

/** promptText in a stage's framing: `messages` rendered by the model's own chat template when the framing has one. */
export function framedPromptText(row: PromptRow, framing: Framing): string {
  return isPromptChatRow(row) && framing.chatTemplate
    ? templateGenerationPrompt(framing.chatTemplate, row.messages)
    : promptText(row);
}

/**
 * [bos] + the prompt's last tokens, maxLen in all (sampling stages keep the end of long prompts, where the question
 * is); bos as the framing (by default the tokenizer) adds it, none on top of a model chat template by default.
 */
export function promptTokens(
  tokenizer: Tokenizer,
  prompt: string | PromptRow,
  maxLen: number,
  framing?: Framing,
): number[] {
  const row = typeof prompt === 'string' ? undefined : prompt;
  const templated = row !== undefined && isPromptChatRow(row) && !!framing?.chatTemplate;
  const ends = framing ? (templated ? framing.templated : framing.text) : textEndsOf(tokenizer);
  const bos = ends.bos ? [tokenizer.bosId] : [];
  const text =
    row === undefined ? (prompt as string) : framing ? framedPromptText(row, framing) : promptText(row);
  const ids = tokenizer.encode(text);
  return [...bos, ...ids.slice(Math.max(0, ids.length - (maxLen - bos.length)))];
}
