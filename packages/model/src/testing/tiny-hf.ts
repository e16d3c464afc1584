// Test fixtures: a tiny GPT-2-style byte-level BPE tokenizer and HF GPT-2 checkpoint directories,
// written the way Hugging Face writes them, so loading code is tested without downloads.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type GptConfig, isLlama, paramShapes } from '../config.js';
import { type SafeTensor, writeSafetensors } from '../safetensors.js';

/**
 * GPT-2's byte -> printable character table (`bytes_to_unicode` in openai/gpt-2 encoder.py),
 * in vocabulary order: printable Latin-1 bytes keep their code point, the other bytes map to 256+n.
 */
export function byteLevelAlphabet(): { byte: number; char: string }[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const table: { byte: number; char: string }[] = [];
  for (let b = 0; b < 256; b++) if (printable(b)) table.push({ byte: b, char: String.fromCharCode(b) });
  let n = 0;
  for (let b = 0; b < 256; b++)
    if (!printable(b)) table.push({ byte: b, char: String.fromCharCode(256 + n++) });
  return table;
}

/**
 * A GPT-2-style tokenizer.json: the 256 byte tokens (ids 0..255, GPT-2 order), four merges
 * (`h e` -> 256, `l l` -> 257, `he ll` -> 258, `Ġ w` -> 259) and `<|endoftext|>` = 260.
 */
export function tinyGpt2TokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  for (const [id, { char }] of byteLevelAlphabet().entries()) vocab[char] = id;
  const merges = ['h e', 'l l', 'he ll', 'Ġ w'];
  for (const merge of merges) vocab[merge.replace(' ', '')] = Object.keys(vocab).length;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: 260,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

export interface HfTensorOptions {
  /** Prefix trunk names with `transformer.` as GPT2LMHeadModel.save_pretrained does (default true). */
  prefix?: boolean;
  /** Include the old `attn.bias` / `attn.masked_bias` buffers (default true). */
  buffers?: boolean;
  /** Include a tied `lm_head.weight` copy of wte (default true). */
  lmHead?: boolean;
}

/** Parameters as the tensors of an HF GPT-2 model.safetensors (F32). */
export function hfGpt2Tensors(
  config: GptConfig,
  params: Map<string, Float32Array>,
  options: HfTensorOptions = {},
): Map<string, SafeTensor> {
  const { prefix = true, buffers = true, lmHead = true } = options;
  const tensors = new Map<string, SafeTensor>();
  const name = (n: string) => (prefix ? `transformer.${n}` : n);
  for (const { name: param, shape } of paramShapes(config)) {
    if (param.startsWith('score.')) continue;
    tensors.set(name(param), { dtype: 'F32', shape, data: params.get(param)! });
  }
  const P = config.maxPositions;
  for (let i = 0; buffers && i < config.nLayer; i++) {
    const mask = new Uint8Array(P * P);
    for (let r = 0; r < P; r++) for (let c = 0; c <= r; c++) mask[r * P + c] = 1;
    tensors.set(name(`h.${i}.attn.bias`), { dtype: 'BOOL', shape: [1, 1, P, P], data: mask });
    tensors.set(name(`h.${i}.attn.masked_bias`), { dtype: 'F32', shape: [], data: new Float32Array([-1e4]) });
  }
  if (lmHead) {
    tensors.set('lm_head.weight', {
      dtype: 'F32',
      shape: [config.vocabSize, config.nEmbd],
      data: params.get('wte.weight')!,
    });
  }
  return tensors;
}

/** The config.json HF writes for GPT-2 (written out here independently of gptConfigToHf). */
export function hfGpt2ConfigJson(config: GptConfig): Record<string, unknown> {
  if (isLlama(config)) throw new Error('hfGpt2ConfigJson: a GPT-2 config is expected');
  return {
    activation_function: 'gelu_new',
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: 0.1,
    bos_token_id: 260,
    embd_pdrop: 0.1,
    eos_token_id: 260,
    initializer_range: 0.02,
    layer_norm_epsilon: config.layerNormEps,
    model_type: 'gpt2',
    n_ctx: config.maxPositions,
    n_embd: config.nEmbd,
    n_head: config.nHead,
    n_layer: config.nLayer,
    n_positions: config.maxPositions,
    resid_pdrop: 0.1,
    vocab_size: config.vocabSize,
  };
}

/** Writes an HF GPT-2 directory: config.json, model.safetensors, tokenizer.json, tokenizer_config.json. */
export async function writeHfGpt2Dir(
  dir: string,
  configJson: Record<string, unknown>,
  tensors: Map<string, SafeTensor>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(configJson));
  await writeFile(join(dir, 'model.safetensors'), writeSafetensors(tensors, { format: 'pt' }));
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tinyGpt2TokenizerJson()));
  await writeFile(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', model_max_length: 1024 }),
  );
}

/**
 * The state-dict names and shapes HF GPT2LMHeadModel / GPT2ForSequenceClassification save for an HF GPT-2
 * config.json (modeling_gpt2.py; written from the HF config, independently of paramShapes). Conv1D weights are
 * [in, out]; the LM head is tied (not saved); the classifier's `score` is a Linear without bias, [1, n_embd]; the
 * causal-mask buffers are not persistent.
 */
export function hfGpt2Shapes(c: Record<string, unknown>): [string, number[]][] {
  const d = c.n_embd as number;
  const inner = (c.n_inner as number | null | undefined) ?? 4 * d;
  const t = 'transformer';
  const out: [string, number[]][] = [
    [`${t}.wte.weight`, [c.vocab_size as number, d]],
    [`${t}.wpe.weight`, [c.n_positions as number, d]],
  ];
  for (let i = 0; i < (c.n_layer as number); i++) {
    const h = `${t}.h.${i}`;
    out.push(
      [`${h}.ln_1.weight`, [d]],
      [`${h}.ln_1.bias`, [d]],
      [`${h}.attn.c_attn.weight`, [d, 3 * d]],
      [`${h}.attn.c_attn.bias`, [3 * d]],
      [`${h}.attn.c_proj.weight`, [d, d]],
      [`${h}.attn.c_proj.bias`, [d]],
      [`${h}.ln_2.weight`, [d]],
      [`${h}.ln_2.bias`, [d]],
      [`${h}.mlp.c_fc.weight`, [d, inner]],
      [`${h}.mlp.c_fc.bias`, [inner]],
      [`${h}.mlp.c_proj.weight`, [inner, d]],
      [`${h}.mlp.c_proj.bias`, [d]],
    );
  }
  out.push([`${t}.ln_f.weight`, [d]], [`${t}.ln_f.bias`, [d]]);
  const classifier = (c.architectures as string[] | undefined)?.[0] === 'GPT2ForSequenceClassification';
  if (classifier) out.push(['score.weight', [c.num_labels as number, d]]);
  return out;
}
