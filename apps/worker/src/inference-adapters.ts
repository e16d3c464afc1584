// LoRA adapters the inference consumer serves on a loaded base, unmerged: a model directory with `adapter/`
// (adapter_config.json + adapter_model.safetensors, what a LoRA stage leaves beside its merged model) whose
// base_model_name_or_path names a model directory of the artifact store is served as that base + the adapter, so
// several adapters of one base share one loaded base. Without a servable base (e.g. a preset's fresh weights,
// which are stored nowhere) the directory's merged model is served instead. A prompt-tuning adapter (PEFT
// PROMPT_TUNING: virtual tokens before every prompt) is always servable: nothing merges, so without a stored base
// the directory's own weights are its base.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  adapterFeeds,
  type GenerationGraphOptions,
  type GptConfig,
  type LoraSettings,
  type PromptTuningSettings,
  peftAdapterFromFiles,
  promptFeeds,
  promptTuningFromFiles,
} from '@rlhf/model';
import type { HostTensor } from '@rlhf/runtime';

/** An adapter directory's files and the artifact key of the base it applies to. */
export interface AdapterSource {
  baseKey: string;
  files: Record<string, Uint8Array>;
  kind: 'lora' | 'prompt';
}

export type ServedAdapter = {
  baseKey: string;
  /** The adapter's tensors as generation-graph feeds (adapterInput names, prompt_embeddings): small next to the base's. */
  feeds: Record<string, HostTensor>;
} & ({ kind: 'lora'; settings: LoraSettings } | { kind: 'prompt'; settings: PromptTuningSettings });

/** Where a model key is on disk: an admin model's key is its own absolute directory, else a key of the store. */
export const storedDir = (artifactDir: string, key: string): string =>
  isAbsolute(key) ? key : join(artifactDir, key);

/** A store key: relative, no `..` or empty segments (the base name is read from a file in the shared store). */
const isStoreKey = (key: string) =>
  /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(key) && !key.split('/').includes('..');

/** The adapter under `<key>/adapter/` and its base's key, when the base is a model directory here; else null. */
export async function adapterSourceOf(artifactDir: string, key: string): Promise<AdapterSource | null> {
  const dir = join(storedDir(artifactDir, key), 'adapter');
  if (!existsSync(join(dir, ADAPTER_CONFIG)) || !existsSync(join(dir, ADAPTER_WEIGHTS))) return null;
  const files = {
    [ADAPTER_CONFIG]: new Uint8Array(await readFile(join(dir, ADAPTER_CONFIG))),
    [ADAPTER_WEIGHTS]: new Uint8Array(await readFile(join(dir, ADAPTER_WEIGHTS))),
  };
  let base: unknown;
  let kind: AdapterSource['kind'];
  try {
    const json = JSON.parse(new TextDecoder().decode(files[ADAPTER_CONFIG])) as Record<string, unknown>;
    kind = json.peft_type === 'PROMPT_TUNING' ? 'prompt' : 'lora';
    base = json.base_model_name_or_path;
  } catch {
    return null; // peftAdapterFromFiles would say why; the merged model beside it still serves
  }
  // base === key: a registered model uploaded with its adapter (the API points it at itself): its own weights are the base.
  const stored =
    typeof base === 'string' && isStoreKey(base) && existsSync(join(artifactDir, base, 'config.json'));
  if (stored) return { baseKey: base as string, files, kind };
  // Prompt tuning leaves its base unchanged: the directory's own weights are it.
  return kind === 'prompt' ? { baseKey: key, files, kind } : null;
}

/** Reads the adapter for the base's config (shapes checked against it: a mismatch throws LoraError). */
export function servedAdapter(source: AdapterSource, config: GptConfig): ServedAdapter {
  const { baseKey } = source;
  if (source.kind === 'prompt') {
    const { settings, adapter } = promptTuningFromFiles(config, source.files);
    return { baseKey, kind: 'prompt', settings, feeds: promptFeeds(config, settings, adapter) };
  }
  const { settings, adapter } = peftAdapterFromFiles(config, source.files);
  return { baseKey, kind: 'lora', settings, feeds: adapterFeeds(config, settings, adapter) };
}

/** Adapters with these settings share one generation graph on a base (dropout plays no part in it). */
export const adapterGraphKey = (adapter: ServedAdapter): string =>
  adapter.kind === 'prompt'
    ? JSON.stringify({ promptTuning: adapter.settings })
    : JSON.stringify({ ...adapter.settings, dropout: 0 });

/** The generation graph's options for the adapter. */
export const adapterGraphOptions = (adapter: ServedAdapter): GenerationGraphOptions =>
  adapter.kind === 'prompt' ? { promptTuning: adapter.settings } : { lora: adapter.settings };
