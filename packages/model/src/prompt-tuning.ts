// Prompt tuning (Lester et al. 2021): P trainable virtual-token embeddings [P, d] in front of the input's token
// embeddings, the base frozen. The graph side is decoder.ts withVirtualTokens (params key PROMPT_EMBEDDINGS);
// this file holds the tensor's shape, its initialisation and PEFT's file format for it (peft_type PROMPT_TUNING,
// the single safetensors key `prompt_embeddings` [P · num_transformer_submodules, token_dim]).
import { type GptConfig, isLlama, type ParamShape } from './config.js';
import { PROMPT_EMBEDDINGS } from './decoder.js';
import { LoraError } from './lora.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from './lora-peft.js';
import { createRng } from './random.js';
import { readSafetensors, tensorToFloat32, writeSafetensors } from './safetensors.js';

export { PROMPT_EMBEDDINGS } from './decoder.js';

/** A prompt-tuning adapter's settings (@rlhf/contracts PromptTuningConfig). */
export interface PromptTuningSettings {
  /** P: virtual tokens prepended to every input. */
  numVirtualTokens: number;
}

/** PEFT's prompt_tuning_init we use: each virtual token starts as the embedding of a sampled vocabulary token. */
export const PROMPT_TUNING_INIT = 'SAMPLE_VOCAB';

const embeddingName = (config: GptConfig) => (isLlama(config) ? 'model.embed_tokens.weight' : 'wte.weight');

/** Throws LoraError naming the field when the settings do not fit the model. */
export function validatePromptTuning(config: GptConfig, settings: PromptTuningSettings): void {
  const p = settings.numVirtualTokens;
  if (!Number.isSafeInteger(p) || p < 1)
    throw new LoraError('numVirtualTokens', `must be a positive integer, got ${p}`);
  if (p >= config.maxPositions)
    throw new LoraError('numVirtualTokens', `${p} leaves no position of the model's ${config.maxPositions}`);
}

/** The adapter's one trainable tensor: prompt_embeddings [P, d]. */
export function promptTuningParamShapes(config: GptConfig, settings: PromptTuningSettings): ParamShape[] {
  validatePromptTuning(config, settings);
  return [{ name: PROMPT_EMBEDDINGS, shape: [settings.numVirtualTokens, config.nEmbd] }];
}

/** PEFT's SAMPLE_VOCAB init: row i = the base's embedding of a token drawn uniformly from the vocabulary. */
export function initPromptTuning(
  config: GptConfig,
  settings: PromptTuningSettings,
  base: ReadonlyMap<string, Float32Array>,
  seed: number,
): Map<string, Float32Array> {
  validatePromptTuning(config, settings);
  const d = config.nEmbd;
  const embeddings = base.get(embeddingName(config));
  if (!embeddings) throw new Error(`the base has no ${embeddingName(config)}`);
  const rng = createRng(seed, 'prompt-tuning');
  const out = new Float32Array(settings.numVirtualTokens * d);
  for (let i = 0; i < settings.numVirtualTokens; i++) {
    const token = Math.min(config.vocabSize - 1, Math.floor(rng.uniform() * config.vocabSize));
    out.set(embeddings.subarray(token * d, (token + 1) * d), i * d);
  }
  return new Map([[PROMPT_EMBEDDINGS, out]]);
}

/** The two PEFT files of a prompt-tuning adapter; `baseModel` goes into base_model_name_or_path. */
export function promptTuningFiles(
  config: GptConfig,
  settings: PromptTuningSettings,
  adapter: ReadonlyMap<string, Float32Array>,
  baseModel: string | null = null,
): Record<string, Uint8Array> {
  const [{ shape }] = promptTuningParamShapes(config, settings);
  const data = adapter.get(PROMPT_EMBEDDINGS);
  if (!data || data.length !== shape[0] * shape[1])
    throw new LoraError(PROMPT_EMBEDDINGS, `must hold [${shape}] values`);
  const json = {
    peft_type: 'PROMPT_TUNING',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    num_virtual_tokens: settings.numVirtualTokens,
    token_dim: config.nEmbd,
    num_transformer_submodules: 1,
    num_attention_heads: config.nHead,
    num_layers: config.nLayer,
    prompt_tuning_init: PROMPT_TUNING_INIT,
    prompt_tuning_init_text: null,
    tokenizer_name_or_path: null,
    inference_mode: true,
  };
  return {
    [ADAPTER_CONFIG]: new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`),
    [ADAPTER_WEIGHTS]: writeSafetensors(new Map([[PROMPT_EMBEDDINGS, { dtype: 'F32', shape, data }]]), {
      format: 'pt',
    }),
  };
}

/** Reads PEFT's prompt-tuning files onto a base of this config; a config or shape that does not fit throws LoraError. */
export function promptTuningFromFiles(
  config: GptConfig,
  files: Record<string, Uint8Array>,
): { settings: PromptTuningSettings; adapter: Map<string, Float32Array>; baseModel: string | null } {
  const configBytes = files[ADAPTER_CONFIG];
  const weightBytes = files[ADAPTER_WEIGHTS];
  if (!configBytes) throw new LoraError(ADAPTER_CONFIG, 'is missing');
  if (!weightBytes) throw new LoraError(ADAPTER_WEIGHTS, 'is missing');
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(configBytes));
  } catch {
    throw new LoraError(ADAPTER_CONFIG, 'is not valid JSON');
  }
  if (json.peft_type !== 'PROMPT_TUNING')
    throw new LoraError('peft_type', `is ${JSON.stringify(json.peft_type)}, expected "PROMPT_TUNING"`);
  if (json.task_type !== 'CAUSAL_LM')
    throw new LoraError('task_type', `is ${JSON.stringify(json.task_type)}, expected "CAUSAL_LM"`);
  if ((json.num_transformer_submodules ?? 1) !== 1)
    throw new LoraError('num_transformer_submodules', 'must be 1 for a decoder-only model');
  if (json.token_dim !== config.nEmbd)
    throw new LoraError('token_dim', `is ${json.token_dim}, the base's hidden size is ${config.nEmbd}`);
  const settings: PromptTuningSettings = { numVirtualTokens: Number(json.num_virtual_tokens) };
  const [{ shape }] = promptTuningParamShapes(config, settings);
  const { tensors } = readSafetensors(weightBytes);
  const tensor = tensors.get(PROMPT_EMBEDDINGS);
  if (!tensor) throw new LoraError(PROMPT_EMBEDDINGS, `missing from ${ADAPTER_WEIGHTS}`);
  if (tensor.shape.join() !== shape.join())
    throw new LoraError(PROMPT_EMBEDDINGS, `has shape [${tensor.shape}], the config needs [${shape}]`);
  const extra = [...tensors.keys()].find((k) => k !== PROMPT_EMBEDDINGS);
  if (extra) throw new LoraError(extra, 'is not a tensor of a prompt-tuning adapter');
  const base = json.base_model_name_or_path;
  return {
    settings,
    adapter: new Map([[PROMPT_EMBEDDINGS, tensorToFloat32(tensor, PROMPT_EMBEDDINGS)]]),
    baseModel: typeof base === 'string' ? base : null,
  };
}
