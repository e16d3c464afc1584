// A trained model as a complete Hugging Face model directory: config.json (token ids, torch_dtype, the HF class),
// generation_config.json, model.safetensors in the class's state-dict names (nothing transformers would call
// missing or unexpected), tokenizer files and a README.md. loadHfModel / loadCheckpoint read it back.

import type { GptConfig } from './config.js';
import { checkpointTensors, gptConfigToHf, SCORE_BIAS_KEY } from './hf.js';
import { CheckpointError } from './safetensors.js';
import { shardWeights } from './shards.js';
import { ByteTokenizer, type Tokenizer } from './tokenizer.js';

/** A model as the trainers hand it over (names and shapes of paramShapes). */
export interface HfExportModel {
  config: GptConfig;
  params: Map<string, Float32Array>;
  /** Stored in the safetensors `__metadata__` (run id, stage, ...). */
  metadata?: Record<string, string>;
}

/** Sampling defaults for generation_config.json, in GenerateRequest's terms. */
export interface HfGenerationDefaults {
  maxNewTokens?: number;
  /** 0 = greedy (do_sample false); > 0 samples. */
  temperature?: number;
  /** 0 = off. */
  topK?: number;
  /** 1 = off. */
  topP?: number;
}

export interface HfModelFilesOptions {
  /** The model's tokenizer: the ByteTokenizer, or one from loadHfTokenizer (whose files it keeps). */
  tokenizer: Tokenizer;
  generation?: HfGenerationDefaults;
  /** Weight dtype of model.safetensors; only float32 (the training dtype, so the export is exact). */
  dtype?: 'float32';
  /**
   * Jinja chat template for tokenizer_config.json. Default: the HF tokenizer's own, else BYTE_CHAT_TEMPLATE
   * (chat.ts's rendering, which the trainers use for `messages` data).
   */
  chatTemplate?: string;
  /**
   * Weights above this many bytes are sharded as transformers' `save_pretrained(max_shard_size=…)` does
   * (model-0000i-of-0000n.safetensors + model.safetensors.index.json). Default 5·10⁹, transformers' "5GB".
   */
  maxShardBytes?: number;
}

/**
 * chat.ts's rendering as a Jinja chat template: `<|role|>\ncontent\n` per turn, then `<|assistant|>\n` with
 * add_generation_prompt. The bos token is not in it: our prompts are [bos] + encode(text), which
 * `tokenizer(text)` gives for the exported ByteTokenizer (its post-processor adds bos).
 */
export const BYTE_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

const BYTE_SPECIALS = ['<|bos|>', '<|eos|>', '<|pad|>'] as const;

/** GPT-2's byte -> printable character table (`bytes_to_unicode`), indexed by byte. */
function byteLevelChars(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const chars: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++)
    chars[b] = printable(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return chars;
}

/**
 * A tokenizer.json that encodes like ByteTokenizer: the ByteLevel pre-tokenizer (no regex split) maps each
 * UTF-8 byte to its printable character, a BPE without merges maps that character to the byte's value
 * (ids 0..255), and `<|bos|>`, `<|eos|>`, `<|pad|>` are the special tokens 256, 257, 258. The post-processor
 * prepends bos when special tokens are added (our prompts start with bos); ByteTokenizer.encode is
 * `encode(text, add_special_tokens=False)`. Text that looks like a special token stays bytes only with
 * `split_special_tokens: true` (byteTokenizerConfig sets it).
 */
export function byteTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteLevelChars().forEach((char, byte) => {
    vocab[char] = byte;
  });
  const [bos] = BYTE_SPECIALS;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: BYTE_SPECIALS.map((content, i) => ({
      id: 256 + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [256], tokens: [bos] } },
    },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
}

/** tokenizer_config.json of the exported ByteTokenizer (transformers' PreTrainedTokenizerFast). */
export function byteTokenizerConfig(
  maxPositions: number,
  chatTemplate: string = BYTE_CHAT_TEMPLATE,
): Record<string, unknown> {
  const [bos, eos, pad] = BYTE_SPECIALS;
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    // What ByteTokenizer is, for a reader: ids 0..255 = the UTF-8 bytes, then the three specials.
    rlhf_tokenizer: 'byte',
    rlhf_tokenizer_description:
      'Each UTF-8 byte is one token whose id is the byte value (0..255); <|bos|> = 256, <|eos|> = 257, <|pad|> = 258. Special-looking text is never a special token (split_special_tokens).',
    bos_token: bos,
    eos_token: eos,
    pad_token: pad,
    unk_token: null,
    split_special_tokens: true,
    clean_up_tokenization_spaces: false,
    add_prefix_space: false,
    model_max_length: maxPositions,
    added_tokens_decoder: Object.fromEntries(
      BYTE_SPECIALS.map((content, i) => [
        String(256 + i),
        { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
    chat_template: chatTemplate,
  };
}

const encoder = new TextEncoder();
const jsonFile = (value: unknown) => encoder.encode(`${JSON.stringify(value, null, 2)}\n`);

function checkTokenId(what: string, id: number, vocabSize: number): void {
  if (!Number.isSafeInteger(id) || id < 0 || id >= vocabSize)
    throw new CheckpointError(
      `hfModelFiles: the tokenizer's ${what} ${id} is outside the model's vocabulary [0, ${vocabSize})`,
    );
}

/** generation_config.json: the token ids, and the sampling settings that were given. */
function generationConfig(
  tokenizer: Tokenizer,
  generation: HfGenerationDefaults | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
  };
  if (!generation) return out;
  const { maxNewTokens, temperature, topK, topP } = generation;
  const check = (field: string, value: number | undefined, ok: (v: number) => boolean, want: string) => {
    if (value !== undefined && !(Number.isFinite(value) && ok(value)))
      throw new CheckpointError(`hfModelFiles: generation.${field} must be ${want}, got ${value}`);
  };
  check('maxNewTokens', maxNewTokens, (v) => Number.isSafeInteger(v) && v >= 1, 'a positive integer');
  check('temperature', temperature, (v) => v >= 0, 'a number >= 0');
  check('topK', topK, (v) => Number.isSafeInteger(v) && v >= 0, 'an integer >= 0');
  check('topP', topP, (v) => v > 0 && v <= 1, 'in (0, 1]');
  if (maxNewTokens !== undefined) out.max_new_tokens = maxNewTokens;
  const sampling = temperature !== undefined || topK !== undefined || topP !== undefined;
  if (!sampling) return out;
  // Our default temperature is 1 (sampling), 0 greedy. HF's defaults differ (top_k 50), so every setting of a
  // sampled generation is written out.
  if ((temperature ?? 1) <= 0) return { ...out, do_sample: false };
  return { ...out, do_sample: true, temperature: temperature ?? 1, top_k: topK ?? 0, top_p: topP ?? 1 };
}

function hfArchitecture(config: GptConfig): string {
  return (gptConfigToHf(config).architectures as string[])[0];
}

function readme(model: HfExportModel, options: HfModelFilesOptions, scoreBias: number | undefined): string {
  const { config } = model;
  const arch = hfArchitecture(config);
  const tok = options.tokenizer;
  const lines = [
    '---',
    'library_name: transformers',
    `pipeline_tag: ${config.scalarHead ? 'text-classification' : 'text-generation'}`,
    '---',
    '',
    `# ${arch}`,
    '',
    `Exported by the RLHF service: \`${arch}\` (model_type \`${gptConfigToHf(config).model_type}\`), float32 weights.`,
    `Token ids: bos ${tok.bosId}, eos ${tok.eosId}, pad ${tok.padId}. Training sequences were`,
    '`[bos] + encode(prompt) + encode(response) + [eos]`, with `encode` adding no special tokens.',
    '',
  ];
  if (tok instanceof ByteTokenizer) {
    lines.push(
      'Tokenizer: bytes. Token i < 256 is the UTF-8 byte i; `<|bos|>` = 256, `<|eos|>` = 257, `<|pad|>` = 258.',
      '`tokenizer(text)` gives `[256] + bytes`; `tokenizer(text, add_special_tokens=False)` gives the bytes.',
      'The chat template renders `<|role|>\\ncontent\\n` per turn (no bos): tokenize its text with `tokenizer(text)`.',
      '',
    );
  }
  if (config.scalarHead) {
    lines.push(
      'Scalar head (reward / value model): `num_labels` 1, `score.weight` only, as in transformers.',
      `Our head also has a bias (${scoreBias}), recorded in config.json as \`${SCORE_BIAS_KEY}\` and not in the`,
      'weights: transformers scores = our scores − that constant, which changes no ranking or',
      'Bradley–Terry preference. transformers scores the last token that is not `pad_token_id`;',
      tok.padId === tok.eosId
        ? 'here pad = eos, so a sequence ending in eos is scored at the token before it (ours scores the eos).'
        : 'with pad distinct from eos that is the token we score.',
      '',
    );
  }
  return `${lines.join('\n')}`;
}

/**
 * The files of a Hugging Face model directory for `model`, by file name:
 *
 * - `config.json`: the HF config (GPT2LMHeadModel / LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM /
 *   Qwen3ForCausalLM, or the *ForSequenceClassification class with `num_labels` 1 for a scalar head) with
 *   bos/eos/pad_token_id and `torch_dtype`; a scalar head's bias under SCORE_BIAS_KEY.
 * - `generation_config.json`: the token ids, `max_new_tokens`, and do_sample/temperature/top_k/top_p when given.
 * - `model.safetensors` (F32; sharded with an index above `maxShardBytes`): exactly the state-dict keys of that class. A scalar-head model drops `score.bias`
 *   (HF's classifiers have `score.weight` only; the export's scores are ours minus the constant bias, which
 *   rankings and Bradley–Terry ignore) and its LM head (a classifier has none; loading gives it a copy of the
 *   embedding, as for any HF classifier).
 * - `tokenizer.json` + `tokenizer_config.json` (+ `special_tokens_map.json`): an HF tokenizer's own files with
 *   bos/eos/pad and the chat template set; for the ByteTokenizer, byteTokenizerJson / byteTokenizerConfig.
 * - `README.md`: what the ids mean and how the export differs from the trained model.
 */
export function hfModelFiles(model: HfExportModel, options: HfModelFilesOptions): Record<string, Uint8Array> {
  const { config, params } = model;
  const { tokenizer } = options;
  if ((options.dtype ?? 'float32') !== 'float32')
    throw new CheckpointError(
      `hfModelFiles: dtype ${JSON.stringify(options.dtype)} is not supported (float32)`,
    );
  if (tokenizer.vocabSize > config.vocabSize)
    throw new CheckpointError(
      `hfModelFiles: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${config.vocabSize}`,
    );
  checkTokenId('bosId', tokenizer.bosId, config.vocabSize);
  checkTokenId('eosId', tokenizer.eosId, config.vocabSize);
  checkTokenId('padId', tokenizer.padId, config.vocabSize);

  const tensors = checkpointTensors(config, params);
  let scoreBias: number | undefined;
  if (config.scalarHead) {
    scoreBias = params.get('score.bias')![0];
    tensors.delete('score.bias');
    tensors.delete('lm_head.weight'); // untied Llama-family heads; GPT-2's is tied and never stored
  }

  const hfConfig: Record<string, unknown> = {
    ...gptConfigToHf(config),
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
    torch_dtype: 'float32',
  };
  if (config.scalarHead) {
    Object.assign(hfConfig, {
      num_labels: 1,
      id2label: { '0': 'LABEL_0' },
      label2id: { LABEL_0: 0 },
      [SCORE_BIAS_KEY]: scoreBias,
    });
  }

  const files: Record<string, Uint8Array> = {
    'config.json': jsonFile(hfConfig),
    'generation_config.json': jsonFile(generationConfig(tokenizer, options.generation)),
    // HF transformers refuses safetensors whose metadata lacks format "pt".
    ...shardWeights(tensors, { ...model.metadata, format: 'pt' }, options.maxShardBytes),
  };

  let tokenizerConfig: Record<string, unknown>;
  let special: { bos: string; eos: string; pad: string };
  if (tokenizer.hfFiles) {
    const hf = tokenizer.hfFiles;
    special = { bos: hf.bosToken, eos: hf.eosToken, pad: hf.padToken };
    const chatTemplate = options.chatTemplate ?? hf.chatTemplate ?? BYTE_CHAT_TEMPLATE;
    tokenizerConfig = {
      ...hf.tokenizerConfig,
      bos_token: special.bos,
      eos_token: special.eos,
      pad_token: special.pad,
      clean_up_tokenization_spaces: false, // our decode never cleans up spaces
      chat_template: chatTemplate,
    };
    files['tokenizer.json'] = encoder.encode(hf.tokenizerJson);
  } else if (tokenizer instanceof ByteTokenizer) {
    const [bos, eos, pad] = BYTE_SPECIALS;
    special = { bos, eos, pad };
    tokenizerConfig = byteTokenizerConfig(config.maxPositions, options.chatTemplate);
    files['tokenizer.json'] = jsonFile(byteTokenizerJson());
  } else {
    throw new CheckpointError(
      'hfModelFiles: the tokenizer is neither the ByteTokenizer nor one loaded by loadHfTokenizer, so there are no tokenizer files to write',
    );
  }
  files['tokenizer_config.json'] = jsonFile(tokenizerConfig);
  files['special_tokens_map.json'] = jsonFile({
    bos_token: special.bos,
    eos_token: special.eos,
    pad_token: special.pad,
  });
  files['README.md'] = encoder.encode(readme(model, options, scoreBias));
  return files;
}

/** The HF class hfModelFiles writes for a config (e.g. `Qwen3ForSequenceClassification`). */
export function hfModelClass(config: GptConfig): string {
  return hfArchitecture(config);
}
