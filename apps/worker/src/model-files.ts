// Models as the worker reads them: a directory with config.json + the weights (model.safetensors, or sharded
// model-0000i-of-0000n.safetensors + model.safetensors.index.json), and tokenizer.json beside them when the model
// has its own tokenizer. The directory is an artifact-store key (registered models and what is trained from
// them) or, for an admin model of MODEL_DIRS, an absolute path on shared storage, read in place.
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { ArtifactStore } from '@rlhf/artifacts';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  ByteTokenizer,
  checkpointFromFiles,
  type GptConfig,
  gptConfigFromHf,
  loadHfTokenizer,
  peftAdapterFromFiles,
  readCheckpointDir,
  type Tokenizer,
} from '@rlhf/model';
import type { Weights } from '@rlhf/runtime';
import type { ModelWeights } from '@rlhf/stage-kit';
import { existsSync } from 'node:fs';

/** Where `dir` is on disk: an admin model's own directory, else the store's file of the key. */
export const modelDirPath = (artifacts: ArtifactStore, dir: string): string =>
  isAbsolute(dir) ? dir : artifacts.path(dir);

/** The weights and config under `dir` (its safetensors metadata without safetensors' own 'format' key). */
export async function loadModelAt(artifacts: ArtifactStore, dir: string): Promise<ModelWeights> {
  const loaded = checkpointFromFiles(await readCheckpointDir(modelDirPath(artifacts, dir)), dir);
  const { format: _format, ...metadata } = loaded.metadata;
  return { config: loaded.config, params: loaded.params, metadata };
}

/** The architecture under `dir`, from config.json alone (fresh weights of it need no stored weights read). */
export async function modelConfigAt(artifacts: ArtifactStore, dir: string): Promise<GptConfig> {
  const text = await readFile(join(modelDirPath(artifacts, dir), 'config.json'), 'utf8');
  return gptConfigFromHf(JSON.parse(text), `${dir}/config.json`);
}

/** The tokenizer under `dir` (tokenizer.json), else the presets' byte tokenizer. */
export async function tokenizerAt(artifacts: ArtifactStore, dir: string | undefined): Promise<Tokenizer> {
  if (dir && existsSync(join(modelDirPath(artifacts, dir), 'tokenizer.json')))
    return loadHfTokenizer(modelDirPath(artifacts, dir));
  return new ByteTokenizer();
}

/** A registered model's PEFT LoRA adapter (`dir`/adapter/, checked at upload and again here), else undefined. */
export async function adapterAt(
  artifacts: ArtifactStore,
  dir: string,
  config: GptConfig,
): Promise<Weights | undefined> {
  const at = join(modelDirPath(artifacts, dir), 'adapter');
  if (!existsSync(join(at, ADAPTER_CONFIG))) return undefined;
  const files = {
    [ADAPTER_CONFIG]: new Uint8Array(await readFile(join(at, ADAPTER_CONFIG))),
    [ADAPTER_WEIGHTS]: new Uint8Array(await readFile(join(at, ADAPTER_WEIGHTS))),
  };
  // A prompt-tuning adapter is served, not continued: a LoRA stage on that model starts from its base weights.
  if (JSON.parse(new TextDecoder().decode(files[ADAPTER_CONFIG])).peft_type === 'PROMPT_TUNING')
    return undefined;
  return peftAdapterFromFiles(config, files).adapter;
}
