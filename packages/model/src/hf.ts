// Checkpoints in the Hugging Face layout: config.json + model.safetensors (+ tokenizer.json), for GPT-2 and the
// Llama family (hf-llama.ts reads their config.json). Our own checkpoints use the same layout, so HF weights
// load here and our exports load in HF.

import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Gpt2Config,
  type GptConfig,
  isLlama,
  paramShapes,
  shapeSize,
  validateConfig,
} from './config.js';
import { isLlamaModelType, LLAMA_MODEL_TYPES, llamaConfigFromHf, llamaConfigToHf } from './hf-llama.js';
import { CheckpointError, type SafeTensor, tensorToFloat32, writeSafetensors } from './safetensors.js';
import { readWeightFiles, SAFETENSORS_INDEX, type WeightFiles, weightFilesOf } from './shards.js';
import { ByteTokenizer, loadHfTokenizer, type Tokenizer } from './tokenizer.js';

export interface LoadedCheckpoint {
  config: GptConfig;
  /** Parameters named and shaped as `paramShapes(config)`. */
  params: Map<string, Float32Array>;
  tokenizer: Tokenizer;
  /** The safetensors `__metadata__` (string -> string). */
  metadata: Record<string, string>;
}

export interface CheckpointExtra {
  /** Stored in the safetensors `__metadata__`, e.g. run id, stage, step. */
  metadata?: Record<string, string>;
  /** Copy `tokenizer.json` (and `tokenizer_config.json` if present) from this directory. */
  tokenizerDir?: string;
}

/**
 * config.json key of a scalar-head model exported by hfModelFiles: the bias of our `score` head, which HF's
 * *ForSequenceClassification (`score.weight` only) has no tensor for. Loading puts it back as `score.bias`.
 */
export const SCORE_BIAS_KEY = 'rlhf_score_bias';

const TANH_GELUS = ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast']; // all are GELU's tanh approximation

/**
 * Reads an HF `config.json` object: model_type gpt2 (or none) or llama / mistral / qwen2 / qwen3; rejects
 * variants this implementation does not compute with one line naming the field and value.
 */
export function gptConfigFromHf(json: unknown, source = 'config.json'): GptConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new CheckpointError(`${source}: expected a JSON object`);
  const hf = json as Record<string, unknown>;
  if (isLlamaModelType(hf.model_type)) return llamaConfigFromHf(hf, source);
  if (hf.model_type !== undefined && hf.model_type !== 'gpt2') {
    throw new CheckpointError(
      `${source}: model_type ${JSON.stringify(hf.model_type)} is not supported (gpt2, ${LLAMA_MODEL_TYPES.join(', ')})`,
    );
  }
  return gpt2ConfigFromHf(hf, source);
}

function gpt2ConfigFromHf(hf: Record<string, unknown>, source: string): Gpt2Config {
  const int = (field: string, value: unknown = hf[field]): number => {
    if (!Number.isSafeInteger(value)) {
      throw new CheckpointError(`${source}: ${field} must be an integer, got ${JSON.stringify(value)}`);
    }
    return value as number;
  };
  if (hf.activation_function !== undefined && !TANH_GELUS.includes(hf.activation_function as string)) {
    throw new CheckpointError(
      `${source}: activation_function "${hf.activation_function}" is not supported (tanh GELU only)`,
    );
  }
  const nEmbd = int('n_embd');
  if (hf.n_inner != null && hf.n_inner !== 4 * nEmbd) {
    throw new CheckpointError(`${source}: n_inner ${hf.n_inner} is not supported (only 4·n_embd)`);
  }
  if (hf.scale_attn_by_inverse_layer_idx === true || hf.scale_attn_weights === false) {
    throw new CheckpointError(`${source}: only attention scaled by 1/sqrt(head_dim) is supported`);
  }
  const eps = hf.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number') throw new CheckpointError(`${source}: layer_norm_epsilon must be a number`);
  const config: Gpt2Config = {
    vocabSize: int('vocab_size'),
    maxPositions: int('n_positions', hf.n_positions ?? hf.n_ctx),
    nEmbd,
    nLayer: int('n_layer'),
    nHead: int('n_head'),
    layerNormEps: eps,
  };
  try {
    return validateConfig(config);
  } catch (error) {
    throw new CheckpointError(`${source}: ${(error as Error).message}`);
  }
}

/**
 * The HF `config.json` for a config: GPT2LMHeadModel / LlamaForCausalLM / ... , or the *ForSequenceClassification
 * class with a scalar head.
 */
export function gptConfigToHf(config: GptConfig): Record<string, unknown> {
  validateConfig(config);
  if (isLlama(config)) return llamaConfigToHf(config);
  return {
    model_type: 'gpt2',
    architectures: [config.scalarHead ? 'GPT2ForSequenceClassification' : 'GPT2LMHeadModel'],
    vocab_size: config.vocabSize,
    n_positions: config.maxPositions,
    n_ctx: config.maxPositions,
    n_embd: config.nEmbd,
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: config.layerNormEps,
    initializer_range: 0.02,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    tie_word_embeddings: true,
    ...(config.scalarHead ? { num_labels: 1 } : {}),
  };
}

const ATTENTION_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/; // GPT-2 causal-mask buffers, not parameters
const ROTARY_BUFFER = /\.rotary_emb\.inv_freq$/; // older Llama checkpoints store RoPE frequencies

/**
 * Maps HF tensor names to ours and checks them against the config. GPT-2: strips `transformer.`, drops
 * attention buffers and a tied `lm_head.weight`, accepts HF's `score.weight` [1, d]. Llama family: names as
 * they are, drops `rotary_emb.inv_freq` buffers and a tied `lm_head.weight`; a scalar-head checkpoint
 * (*ForSequenceClassification) without `lm_head.weight` gets a copy of the embedding as its (unused) LM head.
 * A missing `score.bias` (HF's *ForSequenceClassification has none) is `scoreBias`: config.json's
 * SCORE_BIAS_KEY where hfModelFiles recorded it, else zero.
 */
function paramsFromTensors(
  tensors: Map<string, SafeTensor>,
  config: GptConfig,
  scoreBias = 0,
): Map<string, Float32Array> {
  const llama = isLlama(config);
  const embedding = llama ? 'model.embed_tokens.weight' : 'wte.weight';
  const tiedHead = !llama || config.tieWordEmbeddings;
  const found = new Map<string, { tensor: SafeTensor; fileName: string }>();
  let lmHead: SafeTensor | undefined;
  for (const [fileName, tensor] of tensors) {
    const name =
      !llama && fileName.startsWith('transformer.') ? fileName.slice('transformer.'.length) : fileName;
    if ((llama ? ROTARY_BUFFER : ATTENTION_BUFFER).test(name)) continue;
    if (name === 'lm_head.weight' && tiedHead) {
      lmHead = tensor;
      continue;
    }
    if (found.has(name))
      throw new CheckpointError(`tensor "${name}" appears twice (with and without "transformer.")`, name);
    found.set(name, { tensor, fileName });
  }

  const params = new Map<string, Float32Array>();
  for (const { name, shape } of paramShapes(config)) {
    const entry = found.get(name);
    found.delete(name);
    if (!entry) {
      if (name === 'score.bias') {
        params.set(name, Float32Array.of(scoreBias));
        continue;
      }
      if (name === 'lm_head.weight' && config.scalarHead && params.has(embedding)) {
        params.set(name, Float32Array.from(params.get(embedding)!));
        continue;
      }
      throw new CheckpointError(`missing tensor "${name}" (expected shape [${shape}])`, name);
    }
    const fileShape = entry.tensor.shape;
    const sameShape = fileShape.length === shape.length && fileShape.every((d, i) => d === shape[i]);
    const hfScore =
      !llama &&
      name === 'score.weight' &&
      fileShape.length === 2 &&
      fileShape[0] === 1 &&
      fileShape[1] === shape[0];
    if (!sameShape && !hfScore) {
      throw new CheckpointError(
        `tensor "${entry.fileName}" has shape [${fileShape}] but the config expects [${shape}]`,
        name,
      );
    }
    params.set(name, tensorToFloat32(entry.tensor, entry.fileName));
  }
  const extra = [...found.values()][0];
  if (extra) throw new CheckpointError(`unexpected tensor "${extra.fileName}"`, extra.fileName);

  if (lmHead) {
    const embed = params.get(embedding)!;
    const head = tensorToFloat32(lmHead, 'lm_head.weight');
    if (head.length !== embed.length || head.some((v, i) => v !== embed[i])) {
      throw new CheckpointError(
        llama
          ? 'lm_head.weight differs from model.embed_tokens.weight but tie_word_embeddings is true'
          : 'lm_head.weight differs from wte.weight: untied LM heads are not supported',
        'lm_head.weight',
      );
    }
  }
  for (const [name, data] of params) checkFinite(name, data);
  return params;
}

function checkFinite(name: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]))
      throw new CheckpointError(`tensor "${name}" has a non-finite value at ${i}`, name);
  }
}

function checkDirExists(dir: string): void {
  if (!existsSync(dir)) throw new CheckpointError(`checkpoint directory ${dir} does not exist`);
}

/** A model checkpoint in memory: the two files of the HF layout, by file name (a type: it has an index signature). */
export type CheckpointFiles = {
  'config.json': Uint8Array;
  'model.safetensors': Uint8Array;
};

/** config.json + the weights: model.safetensors, or model.safetensors.index.json and its shards (shards.ts). */
export type HfCheckpointFiles = { 'config.json': Uint8Array } & WeightFiles;

/** Config + parameters from config.json and the weight files' bytes; `source` names them in errors. */
export function checkpointFromFiles(
  files: HfCheckpointFiles,
  source = 'checkpoint',
): Pick<LoadedCheckpoint, 'config' | 'params' | 'metadata'> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(files['config.json']));
  } catch (error) {
    throw new CheckpointError(`${source}/config.json: invalid JSON: ${(error as Error).message}`);
  }
  const base = gptConfigFromHf(json, `${source}/config.json`);
  let file: ReturnType<typeof readWeightFiles>;
  try {
    file = readWeightFiles(files);
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    throw new CheckpointError(`${source}/${error.message}`, error.tensor);
  }
  const hasScore = file.tensors.has('score.weight') || file.tensors.has('transformer.score.weight');
  const config: GptConfig = hasScore && !base.scalarHead ? { ...base, scalarHead: true } : base;
  const scoreBias = (json as Record<string, unknown>)[SCORE_BIAS_KEY];
  if (scoreBias !== undefined && !(typeof scoreBias === 'number' && Number.isFinite(scoreBias)))
    throw new CheckpointError(
      `${source}/config.json: ${SCORE_BIAS_KEY} must be a finite number, got ${JSON.stringify(scoreBias)}`,
    );
  return {
    config,
    params: paramsFromTensors(file.tensors, config, scoreBias as number | undefined),
    metadata: file.metadata,
  };
}

/** config.json and the weight files of a directory (model.safetensors, or the index and its shards). */
export async function readCheckpointDir(dir: string): Promise<HfCheckpointFiles> {
  const read = async (name: string) => {
    const path = join(dir, name);
    if (!existsSync(path)) throw new CheckpointError(`missing ${path}`);
    return new Uint8Array(await readFile(path));
  };
  const files: Record<string, Uint8Array> = { 'config.json': await read('config.json') };
  if (existsSync(join(dir, SAFETENSORS_INDEX))) files[SAFETENSORS_INDEX] = await read(SAFETENSORS_INDEX);
  for (const name of weightFilesOf(files[SAFETENSORS_INDEX])) files[name] = await read(name);
  return files as HfCheckpointFiles;
}

/**
 * Loads a checkpoint directory in the HF layout (GPT-2 or Llama family): config.json, model.safetensors, and
 * tokenizer.json if present (else the ByteTokenizer). A `score.weight` tensor makes it a
 * scalar-head model.
 */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  checkDirExists(dir);
  const { config, params, metadata } = checkpointFromFiles(await readCheckpointDir(dir), dir);
  const tokenizer = existsSync(join(dir, 'tokenizer.json'))
    ? await loadHfTokenizer(dir)
    : new ByteTokenizer();
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new CheckpointError(
      `${dir}: tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${config.vocabSize}`,
    );
  }
  return { config, params, tokenizer, metadata };
}

/** Loads an HF model directory (config.json + model.safetensors + tokenizer.json): GPT-2 or the Llama family. */
export async function loadHfModel(dir: string): Promise<LoadedCheckpoint> {
  checkDirExists(dir);
  if (!existsSync(join(dir, 'tokenizer.json')))
    throw new CheckpointError(`missing ${join(dir, 'tokenizer.json')}`);
  return loadCheckpoint(dir);
}

/** loadHfModel under its first name (GPT-2 was the only architecture). */
export const loadHfGpt2 = loadHfModel;

async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path); // a crash mid-write never leaves a truncated checkpoint file
}

/**
 * Parameters as the tensors of an HF state dict: GPT-2 with the `transformer.` prefix, the tied LM head not
 * stored, `score.weight` as [1, d]; Llama family: paramShapes names and shapes as they are (a tied LM head is
 * not among them). Includes our `score.bias` (and a scalar-head model's LM head), which HF's classifiers lack:
 * checkpointFiles keeps them, hfModelFiles (hf-export.ts) leaves them out.
 */
export function checkpointTensors(
  config: GptConfig,
  params: Map<string, Float32Array>,
): Map<string, SafeTensor> {
  const tensors = new Map<string, SafeTensor>();
  const expected = paramShapes(config);
  for (const { name, shape } of expected) {
    const data = params.get(name);
    if (!data) throw new CheckpointError(`missing parameter "${name}" (expected shape [${shape}])`, name);
    if (data.length !== shapeSize(shape)) {
      throw new CheckpointError(
        `parameter "${name}" has ${data.length} elements, expected shape [${shape}]`,
        name,
      );
    }
    checkFinite(name, data);
    if (isLlama(config)) {
      tensors.set(name, { dtype: 'F32', shape, data }); // HF names and shapes already
      continue;
    }
    const isScore = name.startsWith('score.');
    tensors.set(isScore ? name : `transformer.${name}`, {
      dtype: 'F32',
      shape: name === 'score.weight' ? [1, config.nEmbd] : shape,
      data,
    });
  }
  const unknown = [...params.keys()].find((name) => !expected.some((p) => p.name === name));
  if (unknown) throw new CheckpointError(`unexpected parameter "${unknown}" for this config`, unknown);
  return tensors;
}

/**
 * config.json + model.safetensors in the layout HF `save_pretrained` produces (checkpointTensors), so the HF
 * class of gptConfigToHf loads it. Our `score.bias` is extra to HF: this is the training checkpoint, which keeps
 * everything; hfModelFiles writes the directory for HF users.
 */
export function checkpointFiles(
  config: GptConfig,
  params: Map<string, Float32Array>,
  metadata: Record<string, string> = {},
): CheckpointFiles {
  const tensors = checkpointTensors(config, params);
  // HF transformers refuses safetensors whose metadata lacks format "pt".
  return {
    'model.safetensors': writeSafetensors(tensors, { ...metadata, format: 'pt' }),
    'config.json': new TextEncoder().encode(`${JSON.stringify(gptConfigToHf(config), null, 2)}\n`),
  };
}

/** Writes `checkpointFiles` into `dir` (each file atomically), plus the tokenizer files if asked. */
export async function saveCheckpoint(
  dir: string,
  config: GptConfig,
  params: Map<string, Float32Array>,
  extra: CheckpointExtra = {},
): Promise<void> {
  const files = checkpointFiles(config, params, extra.metadata);
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, 'model.safetensors'), files['model.safetensors']);
  await writeFileAtomic(join(dir, 'config.json'), files['config.json']);
  if (extra.tokenizerDir) {
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
      const from = join(extra.tokenizerDir, file);
      if (existsSync(from)) await copyFile(from, join(dir, file));
      else if (file === 'tokenizer.json') throw new CheckpointError(`missing ${from}`);
    }
  }
}
