// LoRA adapters the inference consumer serves on a loaded base, unmerged: a model directory with `adapter/`
// (adapter_config.json + adapter_model.safetensors, what a LoRA stage leaves beside its merged model) whose
// base_model_name_or_path names a model directory of the artifact store is served as that base + the adapter, so
// several adapters of one base share one loaded base. Without a servable base (e.g. a preset's fresh weights,
// which are stored nowhere) the directory's merged model is served instead.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  adapterFeeds,
  type GptConfig,
  type LoraSettings,
  peftAdapterFromFiles,
} from '@rlhf/model';
import type { HostTensor } from '@rlhf/runtime';

/** An adapter directory's files and the artifact key of the base it applies to. */
export interface AdapterSource {
  baseKey: string;
  files: Record<string, Uint8Array>;
}

export interface ServedAdapter {
  baseKey: string;
  settings: LoraSettings;
  /** The adapter's tensors as generation-graph feeds (adapterInput names): small next to the base's. */
  feeds: Record<string, HostTensor>;
}

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
  try {
    const json = JSON.parse(new TextDecoder().decode(files[ADAPTER_CONFIG])) as Record<string, unknown>;
    // Prompt tuning's virtual tokens are not served yet: the directory's model (the base) serves as it is.
    if (json.peft_type === 'PROMPT_TUNING') return null;
    base = json.base_model_name_or_path;
  } catch {
    return null; // peftAdapterFromFiles would say why; the merged model beside it still serves
  }
  // base === key: a registered model uploaded with its adapter (the API points it at itself): its own weights are the base.
  if (typeof base !== 'string' || !isStoreKey(base)) return null;
  if (!existsSync(join(artifactDir, base, 'config.json'))) return null;
  return { baseKey: base, files };
}

/** Reads the adapter for the base's config (shapes checked against it: a mismatch throws LoraError). */
export function servedAdapter(source: AdapterSource, config: GptConfig): ServedAdapter {
  const { settings, adapter } = peftAdapterFromFiles(config, source.files);
  return { baseKey: source.baseKey, settings, feeds: adapterFeeds(config, settings, adapter) };
}

/** Adapters with these settings share one generation graph on a base (dropout plays no part in it). */
export const adapterGraphKey = (settings: LoraSettings): string =>
  JSON.stringify({ ...settings, dropout: 0 });
