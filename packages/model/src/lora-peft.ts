// LoRA adapters in PEFT's file format: `adapter_config.json` (a peft LoraConfig) + `adapter_model.safetensors`
// whose keys are get_peft_model_state_dict's: `base_model.model.` + the HF module path + `.lora_A.weight` /
// `.lora_B.weight` (the adapter name `default` removed), saved modules under their HF names. `peft` loads them
// with PeftModel.from_pretrained onto the HF base (hfModelFiles); GPT-2's Conv1D layers need fan_in_fan_out.
import { type GptConfig, isLlama } from './config.js';
import { SCORE_BIAS_KEY } from './hf.js';
import { checkAdapter, LoraError, type LoraSettings, loraParamShapes, validateLora } from './lora.js';
import { readSafetensors, type SafeTensor, tensorToFloat32, writeSafetensors } from './safetensors.js';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** An adapter as loaded from PEFT files: its settings, tensors (our names) and the base it was trained on. */
export interface PeftAdapter {
  settings: LoraSettings;
  adapter: Map<string, Float32Array>;
  baseModel: string | null;
}

/** Our parameter name -> its key in HF's state dict (GPT-2's trunk sits under `transformer.`). */
function hfName(config: GptConfig, name: string): string {
  return isLlama(config) || name.startsWith('score.') || name.startsWith('lm_head.')
    ? name
    : `transformer.${name}`;
}

/** Our parameter name -> PEFT's adapter_model.safetensors key. */
export function peftKey(config: GptConfig, name: string): string {
  return `base_model.model.${hfName(config, name)}`;
}

/** HF stores GPT-2's score head as [1, d] (nn.Linear) where ours is [d, 1]: the same values. */
function hfShape(config: GptConfig, name: string, shape: readonly number[]): number[] {
  return !isLlama(config) && name === 'score.weight' ? [1, config.nEmbd] : [...shape];
}

/**
 * Our `score.bias`, which HF's *ForSequenceClassification lacks (PEFT would find an unexpected key): a scalar-head
 * adapter keeps it in the safetensors metadata (SCORE_BIAS_KEY, as hfModelFiles keeps it in config.json).
 */
const isScoreBias = (config: GptConfig, name: string) => config.scalarHead === true && name === 'score.bias';

/** The two PEFT files of an adapter; `baseModel` goes into base_model_name_or_path. */
export function peftAdapterFiles(
  config: GptConfig,
  settings: LoraSettings,
  adapter: ReadonlyMap<string, Float32Array>,
  baseModel: string | null = null,
): Record<string, Uint8Array> {
  checkAdapter(config, settings, adapter);
  const tensors = new Map<string, SafeTensor>();
  const metadata: Record<string, string> = { format: 'pt' };
  for (const { name, shape } of loraParamShapes(config, settings))
    if (isScoreBias(config, name)) metadata[SCORE_BIAS_KEY] = String((adapter.get(name) as Float32Array)[0]);
    else
      tensors.set(peftKey(config, name), {
        dtype: 'F32',
        shape: hfShape(config, name, shape),
        data: adapter.get(name) as Float32Array,
      });
  const json = {
    peft_type: 'LORA',
    task_type: config.scalarHead ? 'SEQ_CLS' : 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: settings.r,
    lora_alpha: settings.alpha,
    lora_dropout: settings.dropout,
    target_modules: [...settings.targetModules],
    use_rslora: settings.useRslora,
    modules_to_save: settings.modulesToSave.length > 0 ? [...settings.modulesToSave] : null,
    bias: 'none',
    // GPT-2's Conv1D stores W as [in, out]: PEFT transposes BA when merging (fan_in_fan_out).
    fan_in_fan_out: !isLlama(config),
    init_lora_weights: true,
    inference_mode: true,
    use_dora: false,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
  };
  return {
    [ADAPTER_CONFIG]: new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`),
    [ADAPTER_WEIGHTS]: writeSafetensors(tensors, metadata),
  };
}

const isEmpty = (v: unknown) =>
  v === undefined || v === null || (typeof v === 'object' && Object.keys(v as object).length === 0);

/** LoraSettings of an adapter_config.json, checked against the base; errors name the JSON field. */
export function loraSettingsFromPeft(config: GptConfig, json: unknown): LoraSettings {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new LoraError(ADAPTER_CONFIG, 'must be a JSON object');
  const c = json as Record<string, unknown>;
  if (c.peft_type !== 'LORA')
    throw new LoraError('peft_type', `must be 'LORA', got ${JSON.stringify(c.peft_type)}`);
  if (c.bias !== undefined && c.bias !== 'none')
    throw new LoraError('bias', `only 'none' is supported, got ${JSON.stringify(c.bias)}`);
  if (c.use_dora === true) throw new LoraError('use_dora', 'DoRA adapters are not supported');
  for (const field of ['rank_pattern', 'alpha_pattern', 'layers_to_transform'])
    if (!isEmpty(c[field])) throw new LoraError(field, 'per-layer patterns are not supported');
  const targets = c.target_modules;
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string'))
    throw new LoraError('target_modules', 'must be a list of module names (a regex string is not supported)');
  const saved = c.modules_to_save ?? [];
  if (!Array.isArray(saved) || !saved.every((t) => typeof t === 'string'))
    throw new LoraError('modules_to_save', 'must be a list of module names or null');
  if (c.fan_in_fan_out !== undefined && c.fan_in_fan_out !== !isLlama(config))
    throw new LoraError('fan_in_fan_out', `must be ${!isLlama(config)} for this base (its weight layout)`);
  const num = (field: string, fallback?: number) => {
    const v = c[field] ?? fallback;
    if (typeof v !== 'number') throw new LoraError(field, `must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  // GPT-2's HF module paths start with `transformer.`, ours do not.
  const ours = (t: string) => (isLlama(config) ? t : t.replace(/^transformer\./, ''));
  const fields: Record<keyof LoraSettings, string> = {
    r: 'r',
    alpha: 'lora_alpha',
    dropout: 'lora_dropout',
    targetModules: 'target_modules',
    useRslora: 'use_rslora',
    modulesToSave: 'modules_to_save',
  };
  const settings: LoraSettings = {
    r: num('r'),
    alpha: num('lora_alpha', 8),
    dropout: num('lora_dropout', 0),
    targetModules: targets.map(ours),
    useRslora: c.use_rslora === true,
    modulesToSave: saved.map(ours),
  };
  try {
    validateLora(config, settings);
  } catch (error) {
    if (error instanceof LoraError)
      throw new LoraError(fields[error.field as keyof LoraSettings] ?? error.field, error.message);
    throw error;
  }
  return settings;
}

/** Reads PEFT's two files onto a base of this config; a tensor missing or shaped unlike the base is an error. */
export function peftAdapterFromFiles(config: GptConfig, files: Record<string, Uint8Array>): PeftAdapter {
  const configBytes = files[ADAPTER_CONFIG];
  const weightBytes = files[ADAPTER_WEIGHTS];
  if (!configBytes) throw new LoraError(ADAPTER_CONFIG, 'is missing');
  if (!weightBytes) throw new LoraError(ADAPTER_WEIGHTS, 'is missing');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(configBytes));
  } catch {
    throw new LoraError(ADAPTER_CONFIG, 'is not valid JSON');
  }
  const settings = loraSettingsFromPeft(config, json);
  const { tensors, metadata } = readSafetensors(weightBytes);
  const adapter = new Map<string, Float32Array>();
  const expected = loraParamShapes(config, settings);
  for (const { name, shape } of expected) {
    const key = peftKey(config, name);
    const tensor = tensors.get(key);
    if (!tensor && isScoreBias(config, name)) {
      const bias = Number(metadata[SCORE_BIAS_KEY] ?? 0);
      if (!Number.isFinite(bias))
        throw new LoraError(SCORE_BIAS_KEY, `must be a finite number in ${ADAPTER_WEIGHTS}'s metadata`);
      adapter.set(name, new Float32Array([bias]));
      continue;
    }
    if (!tensor) throw new LoraError(key, `missing from ${ADAPTER_WEIGHTS}`);
    const want = hfShape(config, name, shape);
    if (tensor.shape.join() !== want.join())
      throw new LoraError(key, `has shape [${tensor.shape}], the base needs [${want}]`);
    adapter.set(name, tensorToFloat32(tensor, key));
  }
  const known = new Set(expected.map((p) => peftKey(config, p.name)));
  const extra = [...tensors.keys()].find((k) => !known.has(k));
  if (extra) throw new LoraError(extra, `is not a tensor of this adapter (r ${settings.r}) on this base`);
  const base = (json as Record<string, unknown>).base_model_name_or_path;
  return { settings, adapter, baseModel: typeof base === 'string' ? base : null };
}
