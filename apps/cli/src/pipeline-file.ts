// A pipeline file (JSON or YAML): the body of POST /v1/runs, where a stage may name a local JSONL file
// instead of a datasetId: `dataset: { file: data/sft.jsonl, kind?: sft, name?: ... }` (relative to the file).
// Such files are uploaded first (the API stores each content once) and replaced by their ids.
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { DATASET_KINDS, type DatasetKind, STAGE_DATASET_KINDS, type StageKind } from '@rlhf/contracts';
import { parse as parseYaml } from 'yaml';
import { UsageError } from './args.js';
import type { Client } from './client.js';

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The parsed file; JSON for .json, YAML otherwise (YAML 1.2 reads JSON too). */
export async function readPipelineFile(path: string): Promise<Json> {
  const text = await readFile(path, 'utf8');
  let value: unknown;
  try {
    value = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new UsageError(`${basename(path)}: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!isObject(value)) throw new UsageError(`${basename(path)}: expected an object with "stages"`);
  return value;
}

export interface UploadedFile {
  stage: string;
  file: string;
  datasetId: string;
  created: boolean;
}

/** The spec with every `dataset: { file }` uploaded and replaced by `datasetId`. */
export async function resolveDatasetFiles(
  client: Client,
  spec: Json,
  pipelinePath: string,
): Promise<{ spec: Json; uploaded: UploadedFile[] }> {
  if (!Array.isArray(spec.stages)) return { spec, uploaded: [] };
  const uploaded: UploadedFile[] = [];
  const stages: unknown[] = [];
  for (const [i, stage] of spec.stages.entries()) {
    if (!isObject(stage) || stage.dataset === undefined) {
      stages.push(stage);
      continue;
    }
    const { dataset, ...rest } = stage;
    const at = `stages[${i}].dataset`;
    const ref = typeof dataset === 'string' ? { file: dataset } : dataset;
    if (!isObject(ref) || typeof ref.file !== 'string')
      throw new UsageError(`${at}: expected a file path or { file, kind?, name? }`);
    const kind = (ref.kind ?? STAGE_DATASET_KINDS[stage.kind as StageKind]?.[0]) as DatasetKind | undefined;
    if (!kind || !DATASET_KINDS.includes(kind))
      throw new UsageError(`${at}.kind: one of ${DATASET_KINDS.join(', ')}`);
    const file = resolve(dirname(pipelinePath), ref.file);
    const name = typeof ref.name === 'string' ? ref.name : basename(file).replace(/\.jsonl?$/, '');
    const { dataset: stored, created } = await client.uploadDataset({
      name,
      kind,
      body: await readFile(file),
    });
    uploaded.push({ stage: String(stage.kind), file: ref.file, datasetId: stored.id, created });
    stages.push({ ...rest, datasetId: stored.id });
  }
  return { spec: { ...spec, stages }, uploaded };
}
