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

/** 'optimizer.safetensors' (tensors `m.<param>` and `v.<param>`) + 'trainer.json' (any JSON: step, data position, ...). */
export function trainerFiles(
  moments: OptimizerMoments,
  trainer: Record<string, unknown>,
  options: FilesOptions = {},
): CheckpointFiles {
  const prefix = options.prefix ?? '';
  const tensors = new Map<string, SafeTensor>();
  for (const [kind, map] of [
    ['m', moments.m],
    ['v', moments.v],
  ] as const)
    for (const [name, data] of map)
      tensors.set(`${kind}.${name}`, { dtype: 'F32', shape: [data.length], data });
  return {
    [`${prefix}optimizer.safetensors`]: writeSafetensors(tensors),
    [`${prefix}trainer.json`]: new TextEncoder().encode(`${JSON.stringify(trainer, null, 2)}\n`),
  };
}

/** Reads trainerFiles back. Moments are flat (reshape by the model's paramShapes). */
export function trainerFromFiles(
  files: CheckpointFiles,
  options: FilesOptions = {},
): { moments: OptimizerMoments; trainer: Record<string, unknown> } {
  const prefix = options.prefix ?? '';
  const optimizer = files[`${prefix}optimizer.safetensors`];
  const json = files[`${prefix}trainer.json`];
  if (!optimizer || !json)
    throw new Error(`checkpoint has no '${prefix}optimizer.safetensors' / '${prefix}trainer.json'`);
  const moments: OptimizerMoments = { m: new Map(), v: new Map() };
  for (const [key, tensor] of readSafetensors(optimizer).tensors) {
    const dot = key.indexOf('.');
    const kind = key.slice(0, dot);
    if (kind !== 'm' && kind !== 'v') throw new Error(`optimizer.safetensors: unexpected tensor '${key}'`);
    moments[kind].set(key.slice(dot + 1), tensorToFloat32(tensor, key));
  }
  return { moments, trainer: JSON.parse(new TextDecoder().decode(json)) as Record<string, unknown> };
}
