// Sharded safetensors as Hugging Face writes them (`save_pretrained(max_shard_size=…)`): weights split over
// `model-00001-of-0000N.safetensors`, and `model.safetensors.index.json` = { metadata: { total_size },
// weight_map: { tensor: shard file } }. One `model.safetensors` when everything fits in one shard.
import { CheckpointError, readSafetensors, type SafeTensor, writeSafetensors } from './safetensors.js';

export const SINGLE_WEIGHTS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';
/** transformers' default `max_shard_size` ("5GB" = 5·10⁹ bytes). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

const SHARD_NAME = /^model-(\d{5})-of-(\d{5})\.safetensors$/;

/** `model-0000i-of-0000n.safetensors` (1-based). */
export const shardFileName = (index: number, count: number): string =>
  `model-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;

/** Whether a file name is one of the weight files of either layout (single file, shard, index). */
export const isWeightsFile = (name: string): boolean =>
  name === SINGLE_WEIGHTS_FILE || name === SAFETENSORS_INDEX || SHARD_NAME.test(name);

/** The tensor -> shard map of an index file, checked: shard names `model-i-of-n`, one n, every shard named. */
export function readShardIndex(bytes: Uint8Array): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new CheckpointError(`${SAFETENSORS_INDEX}: invalid JSON: ${(error as Error).message}`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (!weightMap || typeof weightMap !== 'object' || Array.isArray(weightMap))
    throw new CheckpointError(`${SAFETENSORS_INDEX}: weight_map must be an object of tensor -> file`);
  const map = new Map<string, string>();
  let count: number | undefined;
  for (const [tensor, file] of Object.entries(weightMap)) {
    const match = typeof file === 'string' ? SHARD_NAME.exec(file) : null;
    if (!match)
      throw new CheckpointError(
        `${SAFETENSORS_INDEX}: tensor "${tensor}" maps to ${JSON.stringify(file)}, not a model-0000i-of-0000n.safetensors file`,
        tensor,
      );
    const [index, of] = [Number(match[1]), Number(match[2])];
    if (count !== undefined && of !== count)
      throw new CheckpointError(
        `${SAFETENSORS_INDEX}: shards of ${count} and of ${of} files are mixed`,
        tensor,
      );
    if (index < 1 || index > of)
      throw new CheckpointError(`${SAFETENSORS_INDEX}: ${file} is not one of ${of} shards`, tensor);
    count = of;
    map.set(tensor, file as string);
  }
  if (count === undefined) throw new CheckpointError(`${SAFETENSORS_INDEX}: weight_map is empty`);
  const named = new Set(map.values());
  for (let i = 1; i <= count; i++)
    if (!named.has(shardFileName(i, count)))
      throw new CheckpointError(`${SAFETENSORS_INDEX}: no tensor maps to ${shardFileName(i, count)}`);
  return map;
}

/** The weight files a checkpoint directory needs: model.safetensors, or the index's shards. */
export function weightFilesOf(index: Uint8Array | undefined): string[] {
  if (!index) return [SINGLE_WEIGHTS_FILE];
  return [...new Set(readShardIndex(index).values())].sort();
}

export type WeightFiles = Readonly<Record<string, Uint8Array | undefined>>;

/**
 * Every tensor of the checkpoint, from `model.safetensors` or from the index and its shards: each tensor of the
 * index in the shard it names, no shard holding a tensor the index does not give it, every shard present.
 * Errors name the file (and the tensor). The metadata is the first shard's (HF writes the same into each).
 */
export function readWeightFiles(files: WeightFiles): {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
} {
  const index = files[SAFETENSORS_INDEX];
  if (!index) {
    const single = files[SINGLE_WEIGHTS_FILE];
    if (!single) throw new CheckpointError(`missing ${SINGLE_WEIGHTS_FILE} (or ${SAFETENSORS_INDEX})`);
    return readFile(SINGLE_WEIGHTS_FILE, single);
  }
  if (files[SINGLE_WEIGHTS_FILE])
    throw new CheckpointError(`both ${SINGLE_WEIGHTS_FILE} and ${SAFETENSORS_INDEX}: upload one layout`);
  const map = readShardIndex(index);
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> | undefined;
  for (const shard of weightFilesOf(index)) {
    const bytes = files[shard];
    if (!bytes) throw new CheckpointError(`missing ${shard} (named by ${SAFETENSORS_INDEX})`);
    const file = readFile(shard, bytes);
    metadata ??= file.metadata;
    for (const [name, tensor] of file.tensors) {
      if (map.get(name) !== shard)
        throw new CheckpointError(
          map.has(name)
            ? `${shard}: tensor "${name}" belongs to ${map.get(name)} according to ${SAFETENSORS_INDEX}`
            : `${shard}: tensor "${name}" is not in ${SAFETENSORS_INDEX}`,
          name,
        );
      tensors.set(name, tensor);
    }
  }
  for (const [name, shard] of map)
    if (!tensors.has(name))
      throw new CheckpointError(`${shard}: missing tensor "${name}" (named by ${SAFETENSORS_INDEX})`, name);
  return { tensors, metadata: metadata ?? {} };
}

function readFile(name: string, bytes: Uint8Array) {
  try {
    return readSafetensors(bytes);
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    throw new CheckpointError(`${name}: ${error.message}`, error.tensor);
  }
}

const tensorBytes = (tensor: SafeTensor) => tensor.data.byteLength;

/**
 * The weight files for `tensors`, split as transformers does: tensors in order, a new shard when the next
 * one would take the current shard over `maxShardBytes` (a tensor larger than that gets a shard alone). One
 * shard → `model.safetensors`; more → the shards + `model.safetensors.index.json`.
 */
export function shardWeights(
  tensors: Map<string, SafeTensor>,
  metadata: Record<string, string>,
  maxShardBytes = DEFAULT_MAX_SHARD_BYTES,
): Record<string, Uint8Array> {
  if (!(maxShardBytes > 0)) throw new CheckpointError(`maxShardBytes must be positive, got ${maxShardBytes}`);
  const groups: Map<string, SafeTensor>[] = [new Map()];
  let size = 0;
  let total = 0;
  for (const [name, tensor] of tensors) {
    const bytes = tensorBytes(tensor);
    if (size > 0 && size + bytes > maxShardBytes) {
      groups.push(new Map());
      size = 0;
    }
    groups[groups.length - 1].set(name, tensor);
    size += bytes;
    total += bytes;
  }
  if (groups.length === 1) return { [SINGLE_WEIGHTS_FILE]: writeSafetensors(tensors, metadata) };
  const files: Record<string, Uint8Array> = {};
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    const file = shardFileName(i + 1, groups.length);
    files[file] = writeSafetensors(group, metadata);
    for (const name of group.keys()) weightMap[name] = file;
  });
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  files[SAFETENSORS_INDEX] = new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`);
  return files;
}

/** The dtypes of the weight files' tensors, from their headers only (no tensor data is read). */
export function weightDtypes(files: WeightFiles): Set<string> {
  const dtypes = new Set<string>();
  const names = weightFilesOf(files[SAFETENSORS_INDEX]);
  for (const name of names) {
    const bytes = files[name];
    if (!bytes || bytes.length < 8) continue;
    const length = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Record<
      string,
      unknown
    >;
    for (const [key, entry] of Object.entries(header))
      if (key !== '__metadata__') dtypes.add((entry as { dtype: string }).dtype);
  }
  return dtypes;
}
