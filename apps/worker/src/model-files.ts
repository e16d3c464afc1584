// Models in the artifact store as the worker reads them: a directory with config.json + model.safetensors, and
// tokenizer.json beside them when the model has its own tokenizer (registered models and what is trained from them).
import type { ArtifactStore } from '@rlhf/artifacts';
import { ByteTokenizer, type GptConfig, gptConfigFromHf, loadHfTokenizer, type Tokenizer } from '@rlhf/model';
import { type ModelWeights, modelFromFiles } from '@rlhf/stage-kit';

/** The weights and config under `dir`. */
export async function loadModelAt(artifacts: ArtifactStore, dir: string): Promise<ModelWeights> {
  const files: Record<string, Uint8Array> = {};
  for (const name of ['config.json', 'model.safetensors'])
    files[name] = await artifacts.get(`${dir}/${name}`);
  return modelFromFiles(files);
}

/** The architecture under `dir`, from config.json alone (fresh weights of it need no stored weights read). */
export async function modelConfigAt(artifacts: ArtifactStore, dir: string): Promise<GptConfig> {
  return gptConfigFromHf(JSON.parse(await artifacts.getText(`${dir}/config.json`)), `${dir}/config.json`);
}

/** The tokenizer under `dir` (tokenizer.json), else the presets' byte tokenizer. */
export async function tokenizerAt(artifacts: ArtifactStore, dir: string | undefined): Promise<Tokenizer> {
  if (dir && (await artifacts.exists(`${dir}/tokenizer.json`))) return loadHfTokenizer(artifacts.path(dir));
  return new ByteTokenizer();
}
