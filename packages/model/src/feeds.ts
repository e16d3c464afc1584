// Host-side inputs of the model graphs: parameter feeds and padded token batches.
import { type HostTensor, hostTensor } from '@rlhf/runtime';
import { type GptConfig, paramShapes, shapeSize } from './config.js';

/** Float dtypes the model graphs are built in. */
export type ModelDtype = 'float32' | 'float64';

/** Host parameters by paramShapes name (Float32Array from initParams / checkpoints, or Float64Array). */
export type HostParams = ReadonlyMap<string, Float32Array | Float64Array>;

/** One feed per parameter, converted to the graph's dtype; checks every name and size. */
export function paramFeeds(
  config: GptConfig,
  params: HostParams,
  dtype: ModelDtype = 'float32',
): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const { name, shape } of paramShapes(config)) {
    const data = params.get(name);
    if (!data) throw new Error(`parameter "${name}" is missing`);
    if (data.length !== shapeSize(shape))
      throw new Error(`parameter "${name}" has ${data.length} values, expected shape [${shape}]`);
    feeds[name] = hostTensor(dtype, shape, data);
  }
  return feeds;
}

/** Rows of token ids left-padded to one length: ids and mask (1 = real token), int64 [B, P]. */
export function leftPad(
  rows: readonly (readonly number[])[],
  padId: number,
): { ids: HostTensor; mask: HostTensor } {
  const width = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * width).fill(BigInt(padId));
  const mask = new BigInt64Array(rows.length * width);
  rows.forEach((row, b) => {
    const start = b * width + width - row.length;
    row.forEach((id, j) => {
      ids[start + j] = BigInt(id);
      mask[start + j] = 1n;
    });
  });
  return {
    ids: hostTensor('int64', [rows.length, width], ids),
    mask: hostTensor('int64', [rows.length, width], mask),
  };
}

/** A [B, N] host tensor as rows of numbers. */
export function toRows(t: HostTensor): number[][] {
  const [rows, cols] = t.dims;
  const values = Array.from(t.data as ArrayLike<number | bigint>, Number);
  return Array.from({ length: rows }, (_, r) => values.slice(r * cols, (r + 1) * cols));
}
