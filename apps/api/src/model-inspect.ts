// What a model directory must hold and what it is: the file names we keep, then config + every weight (one
// model.safetensors or sharded with its index) + tokenizer checked by loading them as a worker will.
import {
  CheckpointError,
  checkpointFromFiles,
  type GptConfig,
  isWeightsFile,
  loadHfTokenizer,
  parseChatTemplate,
  readShardIndex,
  SAFETENSORS_INDEX,
  SINGLE_WEIGHTS_FILE,
  weightDtypes,
  weightFilesOf,
} from '@rlhf/model';
import { ApiError } from './errors.js';
import { ADAPTER_FILES, checkUploadedAdapter } from './model-adapter.js';

/** The files of an HF model directory we keep besides the weights; anything else is refused by name. */
const OTHER_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'vocab.json',
  'merges.txt',
  'README.md',
];

export const invalidModel = (message: string, file?: string) =>
  new ApiError(400, 'invalid_model', message, file);

/** Whether a file belongs in a model directory (config, tokenizer files, weights of either layout). */
export const isModelFile = (name: string): boolean =>
  OTHER_FILES.includes(name) || isWeightsFile(name) || ADAPTER_FILES.includes(name);

/** 400 for a file that does not belong in a model directory. */
export function checkModelFileName(name: string): void {
  if (!isModelFile(name))
    throw invalidModel(
      `${name}: not a file of a model directory (accepted: ${OTHER_FILES.join(', ')}, ${SINGLE_WEIGHTS_FILE} or model-0000i-of-0000n.safetensors + ${SAFETENSORS_INDEX}, a PEFT adapter's ${ADAPTER_FILES.join(' + ')})`,
      name,
    );
}

export interface Inspected {
  config: GptConfig;
  parameterCount: number;
  dtype: string;
  hasTokenizer: boolean;
  hasChatTemplate: boolean;
  /** The weights' safetensors metadata (a stage's export records runId, stageId, kind). */
  metadata: Record<string, string>;
}

/** The small files: JSON objects (generation_config.json, …) and UTF-8 text (merges.txt, the template). */
function checkSmallFiles(files: ReadonlyMap<string, Uint8Array>): void {
  for (const [file, data] of files) {
    if (file.endsWith('.safetensors')) continue;
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(data);
    } catch {
      throw invalidModel(`${file}: not UTF-8 text`, file);
    }
    if (!file.endsWith('.json')) continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw invalidModel(`${file}: invalid JSON: ${(error as Error).message}`, file);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw invalidModel(`${file}: must be a JSON object`, file);
  }
}

/** config.json and one weights layout present, and no weight file the layout does not name. */
function checkLayout(files: ReadonlyMap<string, Uint8Array>): void {
  if (!files.has('config.json')) throw invalidModel('missing config.json', 'config.json');
  const index = files.get(SAFETENSORS_INDEX);
  if (!index && !files.has(SINGLE_WEIGHTS_FILE))
    throw invalidModel(
      `missing ${SINGLE_WEIGHTS_FILE} (or ${SAFETENSORS_INDEX} and its shards)`,
      SINGLE_WEIGHTS_FILE,
    );
  let named: string[];
  try {
    named = weightFilesOf(index);
  } catch (error) {
    if (error instanceof CheckpointError) throw invalidModel(error.message, SAFETENSORS_INDEX);
    throw error;
  }
  for (const name of files.keys())
    if (name.endsWith('.safetensors') && !named.includes(name) && !ADAPTER_FILES.includes(name))
      throw invalidModel(
        index
          ? `${name}: not a shard named by ${SAFETENSORS_INDEX}`
          : `${name}: a shard without ${SAFETENSORS_INDEX}`,
        name,
      );
}

/** The weight file holding `tensor`: its shard by the index, else model.safetensors. */
function weightsFileOf(files: ReadonlyMap<string, Uint8Array>, tensor: string | undefined): string {
  const index = files.get(SAFETENSORS_INDEX);
  if (!index || tensor === undefined) return SINGLE_WEIGHTS_FILE;
  const map = readShardIndex(index);
  return map.get(tensor) ?? map.get(`transformer.${tensor}`) ?? SAFETENSORS_INDEX;
}

/**
 * Loads what a worker will load (`dir` holds the same files on disk, for the tokenizer), so a model that
 * registers is one a stage can start from; 400 naming the file (and tensor) otherwise.
 */
export async function inspectModel(
  files: ReadonlyMap<string, Uint8Array>,
  dir: string,
  name: string,
): Promise<Inspected> {
  checkLayout(files);
  checkSmallFiles(files);
  const byName = Object.fromEntries([...files].filter(([f]) => !ADAPTER_FILES.includes(f))) as {
    'config.json': Uint8Array;
  } & Record<string, Uint8Array>;
  let config: GptConfig;
  let params: Map<string, Float32Array>;
  let metadata: Record<string, string>;
  try {
    ({ config, params, metadata } = checkpointFromFiles(byName, name));
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    const file =
      [...files.keys()].find((f) => error.message.startsWith(`${name}/${f}`)) ??
      (error.message.includes('config.json') ? 'config.json' : weightsFileOf(files, error.tensor));
    throw invalidModel(error.message, file);
  }
  let parameterCount = 0;
  for (const values of params.values()) parameterCount += values.length;
  checkUploadedAdapter(files, config);
  params.clear(); // the float32 copy of a large model is not needed past this point
  const dtype = [...weightDtypes(byName)].sort().join('+');
  let hasChatTemplate = false;
  const hasTokenizer = files.has('tokenizer.json');
  if (hasTokenizer) {
    const tokenizer = await loadHfTokenizer(dir).catch((error: Error) => {
      throw invalidModel(`tokenizer.json: ${error.message}`, 'tokenizer.json');
    });
    if (tokenizer.vocabSize > config.vocabSize)
      throw invalidModel(
        `tokenizer.json has ${tokenizer.vocabSize} tokens but the embedding has ${config.vocabSize} rows (vocab_size)`,
        'tokenizer.json',
      );
    hasChatTemplate = tokenizer.hfFiles?.chatTemplate !== undefined;
    // The trainers render `messages` rows with it: a template that does not parse is refused now, not mid-run.
    if (tokenizer.hfFiles?.chatTemplate !== undefined) {
      const file =
        typeof tokenizer.hfFiles.tokenizerConfig.chat_template === 'string'
          ? 'tokenizer_config.json'
          : 'chat_template.jinja';
      try {
        parseChatTemplate(tokenizer.hfFiles.chatTemplate, {}, `${file} chat_template`);
      } catch (error) {
        throw invalidModel((error as Error).message, file);
      }
    }
  }
  return { config, parameterCount, dtype, hasTokenizer, hasChatTemplate, metadata };
}
