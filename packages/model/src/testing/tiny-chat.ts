// Test fixtures: tiny HF BPE tokenizers with chat templates in two real-world styles, written by hand after the
// formats Qwen2.5 (ChatML, no bos) and Llama 3 (a bos the post-processor adds and the template writes) ship.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHfTokenizer, type Tokenizer } from '../tokenizer.js';
import { tinyGpt2TokenizerJson } from './tiny-hf.js';

/** ChatML as Qwen2.5 writes it: a default system turn when none is given, `<|im_end|>\n` after every turn. */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}{%- if loop.first and message['role'] != 'system' %}" +
  "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** Llama 3's layout: bos_token first, headers, trimmed content, `<|eot_id|>` ends a turn; system only first. */
export const LLAMA3_TEMPLATE =
  '{{- bos_token }}{%- for message in messages %}' +
  "{%- if message['role'] == 'system' and not loop.first %}{{- raise_exception('System role only first') }}{%- endif %}" +
  "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + (message['content'] | trim) + '<|eot_id|>' }}" +
  "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

export type TinyChatStyle = 'chatml' | 'llama3';

/** The special tokens each style adds after the tiny GPT-2 vocabulary (ids 0..260), in id order from 261. */
export const TINY_CHAT_SPECIALS: Record<TinyChatStyle, string[]> = {
  chatml: ['<|im_start|>', '<|im_end|>'],
  llama3: ['<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
};

/** One more than the largest id of a style's tokenizer (a model over it needs at least this many rows). */
export const tinyChatVocabSize = (style: TinyChatStyle) => 261 + TINY_CHAT_SPECIALS[style].length;

const added = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/** tokenizer.json: the tiny GPT-2 BPE plus the style's specials; llama3 prepends <|begin_of_text|> when encoding. */
export function tinyChatTokenizerJson(style: TinyChatStyle): Record<string, unknown> {
  const base = tinyGpt2TokenizerJson();
  const specials = TINY_CHAT_SPECIALS[style].map((content, i) => added(261 + i, content));
  const json: Record<string, unknown> = {
    ...base,
    added_tokens: [...(base.added_tokens as unknown[]), ...specials],
  };
  if (style === 'llama3') {
    const bos = '<|begin_of_text|>';
    json.post_processor = {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos, type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { SpecialToken: { id: bos, type_id: 1 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [bos]: { id: bos, ids: [261], tokens: [bos] } },
        },
      ],
    };
  }
  return json;
}

/** tokenizer_config.json of a style, with its chat template (Qwen: no bos; Llama 3: bos and eot as eos). */
export function tinyChatTokenizerConfig(style: TinyChatStyle): Record<string, unknown> {
  return style === 'chatml'
    ? {
        bos_token: null,
        eos_token: '<|im_end|>',
        pad_token: '<|endoftext|>',
        model_max_length: 1024,
        chat_template: CHATML_TEMPLATE,
      }
    : {
        bos_token: '<|begin_of_text|>',
        eos_token: '<|eot_id|>',
        model_max_length: 1024,
        chat_template: LLAMA3_TEMPLATE,
      };
}

/** Writes a style's tokenizer.json and tokenizer_config.json into `dir`. */
export async function writeTinyChatTokenizer(dir: string, style: TinyChatStyle): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tinyChatTokenizerJson(style)));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(tinyChatTokenizerConfig(style)));
}

/** A style's tokenizer as loadHfTokenizer reads it (its files written to a temporary directory, then removed). */
export async function tinyChatTokenizer(style: TinyChatStyle): Promise<Tokenizer> {
  const dir = await mkdtemp(join(tmpdir(), `tiny-${style}-`));
  try {
    await writeTinyChatTokenizer(dir, style);
    return await loadHfTokenizer(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
