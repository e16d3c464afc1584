// What goes into a checkpoint: model weights in packages/model's HF GPT-2 layout ('config.json' +
// 'model.safetensors'), AdamW moments ('optimizer.safetensors') and the loop's own state ('trainer.json').
import {
  checkpointFiles,
  checkpointFromFiles,
  type GptConfig,
  readSafetensors,
  type SafeTensor,
  tensorToFloat32,
  writeSafetensors,
} from '@rlhf/model';
import type { CheckpointFiles } from './checkpoints.js';

/** A model's config and weights (names and shapes of packages/model paramShapes). */
export interface ModelWeights {
  config: GptConfig;
  params: Map<string, Float32Array>;
  /** String metadata stored with the weights (e.g. the reward model's normalisation); safetensors __metadata__. */
  metadata?: Record<string, string>;
}

export interface FilesOptions {
  /** Prefix of every file name, to keep several models in one checkpoint (e.g. 'value.'). Default ''. */
  prefix?: string;
}

const MODEL_FILES = ['config.json', 'model.safetensors'] as const;

/** 'config.json' + 'model.safetensors' (the model's metadata plus `metadata` in the safetensors header). */
export async function modelFiles(
  model: ModelWeights,
  metadata: Record<string, string> = {},
  options: FilesOptions = {},
): Promise<CheckpointFiles> {
  const prefix = options.prefix ?? '';
  const files = checkpointFiles(model.config, model.params, { ...model.metadata, ...metadata });
  return Object.fromEntries(MODEL_FILES.map((name) => [prefix + name, files[name]]));
}

/** The model stored by modelFiles (its metadata without safetensors' own 'format' key). */
export async function modelFromFiles(
  files: CheckpointFiles,
  options: FilesOptions = {},
): Promise<ModelWeights> {
  const prefix = options.prefix ?? '';
  for (const name of MODEL_FILES)
    if (!files[prefix + name]) throw new Error(`checkpoint has no '${prefix + name}'`);
  const loaded = checkpointFromFiles({
    'config.json': files[`${prefix}config.json`],
    'model.safetensors': files[`${prefix}model.safetensors`],
  });
  const { format: _format, ...metadata } = loaded.metadata;
  return { config: loaded.config, params: loaded.params, metadata };
}

/** AdamW first and second moments, by parameter name. */
export interface OptimizerMoments {
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

/** 'optimizer.safetensors': tensors `m.<param>` and `v.<param>`. */
export function optimizerFiles(moments: OptimizerMoments, options: FilesOptions = {}): CheckpointFiles {
  const tensors = new Map<string, SafeTensor>();
  for (const [kind, map] of [
    ['m', moments.m],
    ['v', moments.v],
  ] as const)
    for (const [name, data] of map)
      tensors.set(`${kind}.${name}`, { dtype: 'F32', shape: [data.length], data });
  return { [`${options.prefix ?? ''}optimizer.safetensors`]: writeSafetensors(tensors) };
}

/** 'trainer.json': the loop's own state (stage, step, data position, ...). */
export function trainerJsonFile(
  trainer: Record<string, unknown>,
  options: FilesOptions = {},
): CheckpointFiles {
  return {
    [`${options.prefix ?? ''}trainer.json`]: new TextEncoder().encode(
      `${JSON.stringify(trainer, null, 2)}\n`,
    ),
  };
}

/** optimizerFiles + trainerJsonFile. */
export function trainerFiles(
  moments: OptimizerMoments,
  trainer: Record<string, unknown>,
  options: FilesOptions = {},
): CheckpointFiles {
  return { ...optimizerFiles(moments, options), ...trainerJsonFile(trainer, options) };
}

/** The trainer.json of trainerJsonFile. */
export function trainerJsonFromFiles(
  files: CheckpointFiles,
  options: FilesOptions = {},
): Record<string, unknown> {
  const json = files[`${options.prefix ?? ''}trainer.json`];
  if (!json) throw new Error(`checkpoint has no '${options.prefix ?? ''}trainer.json'`);
  return JSON.parse(new TextDecoder().decode(json)) as Record<string, unknown>;
}

/** The AdamW moments of optimizerFiles, flat (reshape by the parameters' shapes). */
export function optimizerFromFiles(files: CheckpointFiles, options: FilesOptions = {}): OptimizerMoments {
  const optimizer = files[`${options.prefix ?? ''}optimizer.safetensors`];
  if (!optimizer) throw new Error(`checkpoint has no '${options.prefix ?? ''}optimizer.safetensors'`);
  const moments: OptimizerMoments = { m: new Map(), v: new Map() };
  for (const [key, tensor] of readSafetensors(optimizer).tensors) {
    const dot = key.indexOf('.');
    const kind = key.slice(0, dot);
    if (kind !== 'm' && kind !== 'v') throw new Error(`optimizer.safetensors: unexpected tensor '${key}'`);
    moments[kind].set(key.slice(dot + 1), tensorToFloat32(tensor, key));
  }
  return moments;
}

/** Reads trainerFiles back. */
export function trainerFromFiles(
  files: CheckpointFiles,
  options: FilesOptions = {},
): { moments: OptimizerMoments; trainer: Record<string, unknown> } {
  return { moments: optimizerFromFiles(files, options), trainer: trainerJsonFromFiles(files, options) };
}
