import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';

export interface DecodeOptions {
  /** Leave special tokens (bos/eos/pad, HF added specials) out of the text. Default false: they are rendered. */
  skipSpecialTokens?: boolean;
}

/**
 * Text <-> token ids. `encode` never inserts bos/eos: callers add them explicitly, so prompt and
 * response boundaries stay under the trainer's control.
 */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /**
   * Whether the tokenizer itself starts a sequence with bos (HF: its post-processor or `add_bos_token`); the
   * trainers frame text rows with bos only then. Absent = true (the ByteTokenizer presets' framing).
   */
  readonly addsBos?: boolean;
  encode(text: string): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** The Hugging Face files it was loaded from (loadHfTokenizer), so an export can write them again. */
  readonly hfFiles?: HfTokenizerFiles;
}

/** What loadHfTokenizer read, kept for exports (hfModelFiles). */
export interface HfTokenizerFiles {
  /** tokenizer.json's text, as read. */
  tokenizerJson: string;
  /** tokenizer_config.json ({} when the directory had none). */
  tokenizerConfig: Record<string, unknown>;
  /** The chat template: tokenizer_config.json's `chat_template` (a string) or chat_template.jinja. */
  chatTemplate?: string;
  /** The token strings of bosId, eosId, padId. */
  bosToken: string;
  eosToken: string;
  padToken: string;
}

/**
 * UTF-8 bytes as tokens 0..255 plus `<|bos|>`=256, `<|eos|>`=257, `<|pad|>`=258.
 * Exact round trip for any string; text that looks like a special token stays plain bytes.
 */
export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = 259;
  readonly bosId = 256;
  readonly eosId = 257;
  readonly padId = 258;
  readonly addsBos = true;
  private static readonly specialNames = ['<|bos|>', '<|eos|>', '<|pad|>'];

  encode(text: string): number[] {
    return Array.from(new TextEncoder().encode(text));
  }

  /** Bytes that are not valid UTF-8 (e.g. a cut-off generation) decode to U+FFFD. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    let text = '';
    let bytes: number[] = [];
    const flush = () => {
      text += new TextDecoder().decode(new Uint8Array(bytes));
      bytes = [];
    };
    for (const id of ids) {
      checkId(id, this.vocabSize);
      if (id < 256) {
        bytes.push(id);
        continue;
      }
      flush();
      if (!options.skipSpecialTokens) text += ByteTokenizer.specialNames[id - 256];
    }
    flush();
    return text;
  }
}

function checkId(id: number, vocabSize: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new RangeError(`token id ${id} is outside the vocabulary [0, ${vocabSize})`);
  }
}

/** tokenizer_config.json stores special tokens as a string or as a serialized AddedToken. */
function specialTokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** Tokenizer classes whose transformers implementation adds bos unless `add_bos_token: false` (their default). */
const BOS_BY_DEFAULT = new Set([
  'LlamaTokenizer',
  'LlamaTokenizerFast',
  'GemmaTokenizer',
  'GemmaTokenizerFast',
]);

/**
 * The special token the tokenizer puts first in a single sequence, as transformers would encode: an explicit
 * `add_bos_token` in tokenizer_config.json decides (Llama-style classes default to true), else tokenizer.json's
 * post-processor: a TemplateProcessing (alone or in a Sequence) whose `single` starts with a SpecialToken.
 * GPT-2 / Qwen tokenizers (a ByteLevel post-processor) add none. Returns that token's string, or null.
 */
function leadingSpecialToken(
  tokenizerJson: Record<string, unknown>,
  config: Record<string, unknown>,
  bosToken: string | undefined,
): string | null {
  const flag =
    typeof config.add_bos_token === 'boolean'
      ? config.add_bos_token
      : BOS_BY_DEFAULT.has(String(config.tokenizer_class))
        ? true
        : undefined;
  if (flag !== undefined) return flag ? (bosToken ?? null) : null;
  const processor = tokenizerJson.post_processor as
    | { type?: unknown; processors?: unknown }
    | null
    | undefined;
  const processors =
    processor?.type === 'Sequence' && Array.isArray(processor.processors)
      ? processor.processors
      : [processor];
  for (const p of processors as { type?: unknown; single?: unknown }[]) {
    if (p?.type !== 'TemplateProcessing' || !Array.isArray(p.single)) continue;
    const first = p.single[0] as { SpecialToken?: { id?: unknown } } | undefined;
    return typeof first?.SpecialToken?.id === 'string' ? first.SpecialToken.id : null;
  }
  return null;
}

/**
 * Loads a Hugging Face tokenizer from `dir/tokenizer.json` (+ optional `tokenizer_config.json`)
 * offline. eos = `eos_token` from the config, else `<|endoftext|>` (GPT-2); bos = `bos_token`, else the token the
 * post-processor puts first, else eos; pad defaults to eos. `addsBos` is whether encoding for the model starts with bos.
 * Decoding never applies HF's `clean_up_tokenization_spaces`, so decode(encode(text)) === text. With
 * `split_special_tokens: true` in tokenizer_config.json (as transformers reads it), special tokens are not
 * matched in text: text that looks like one encodes as ordinary text.
 */
export async function loadHfTokenizer(dir: string): Promise<Tokenizer> {
  const tokenizerPath = join(dir, 'tokenizer.json');
  const configPath = join(dir, 'tokenizer_config.json');
  const templatePath = join(dir, 'chat_template.jinja');
  const tokenizerText = await readFile(tokenizerPath, 'utf8');
  const tokenizerJson = JSON.parse(tokenizerText) as Record<string, unknown>;
  const config: Record<string, unknown> = existsSync(configPath)
    ? JSON.parse(await readFile(configPath, 'utf8'))
    : {};
  const hf = new HfTokenizer(tokenizerJson, config);
  // tokenizers.js always splits added tokens out of the text; without the special ones it cannot.
  const encoder =
    config.split_special_tokens === true && Array.isArray(tokenizerJson.added_tokens)
      ? new HfTokenizer(
          {
            ...tokenizerJson,
            added_tokens: (tokenizerJson.added_tokens as { special?: unknown }[]).filter((t) => !t.special),
          },
          config,
        )
      : hf;

  const idOf = (field: string, fallback: number | undefined): number | undefined => {
    const content = specialTokenContent(config[field]);
    if (content === undefined) return fallback;
    const id = hf.token_to_id(content);
    if (id === undefined) throw new Error(`${configPath}: ${field} "${content}" is not in the vocabulary`);
    return id;
  };
  const eosId = idOf('eos_token', hf.token_to_id('<|endoftext|>'));
  if (eosId === undefined) {
    throw new Error(`${dir}: no eos token (set eos_token in tokenizer_config.json or add <|endoftext|>)`);
  }
  const leading = leadingSpecialToken(tokenizerJson, config, specialTokenContent(config.bos_token));
  // A post-processor's leading token is the bos when tokenizer_config.json names none.
  const bosId = idOf('bos_token', (leading === null ? undefined : hf.token_to_id(leading)) ?? eosId) ?? eosId;
  const padId = idOf('pad_token', eosId) ?? eosId;
  let vocabSize = 0; // a loop, not Math.max(...ids): large vocabularies exceed V8's argument limit
  for (const id of hf.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);

  const chatTemplate =
    typeof config.chat_template === 'string'
      ? config.chat_template
      : existsSync(templatePath)
        ? await readFile(templatePath, 'utf8')
        : undefined;
  const hfFiles: HfTokenizerFiles = {
    tokenizerJson: tokenizerText,
    tokenizerConfig: config,
    ...(chatTemplate !== undefined ? { chatTemplate } : {}),
    bosToken: hf.id_to_token(bosId)!,
    eosToken: hf.id_to_token(eosId)!,
    padToken: hf.id_to_token(padId)!,
  };

  return {
    vocabSize,
    bosId,
    eosId,
    padId,
    addsBos: leading !== null,
    hfFiles,
    encode: (text) => encoder.encode(text, { add_special_tokens: false }).ids,
    decode: (ids, options = {}) => {
      for (const id of ids) {
        checkId(id, vocabSize);
        if (hf.id_to_token(id) === undefined) throw new RangeError(`token id ${id} has no token`);
      }
      if (ids.length === 0) return ''; // tokenizers.js rejects empty arrays
      return hf.decode([...ids], {
        skip_special_tokens: options.skipSpecialTokens ?? false,
        clean_up_tokenization_spaces: false,
      });
    },
  };
}
