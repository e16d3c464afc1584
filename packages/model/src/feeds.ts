// Host-side inputs of the model graphs: parameter feeds and padded token batches.
import { type HostTensor, hostTensor, weightFeeds } from '@rlhf/runtime';
import { type GptConfig, paramShapes } from './config.js';

/** Float dtypes the model graphs are built in. */
export type ModelDtype = 'float32' | 'float64';

/** Host parameters by paramShapes name (Float32Array from initParams / checkpoints, or Float64Array). */
export type HostParams = ReadonlyMap<string, Float32Array | Float64Array>;

/** One feed per parameter of the model, converted to the graph's dtype (@rlhf/runtime weightFeeds). */
export function paramFeeds(
  config: GptConfig,
  params: HostParams,
  dtype: ModelDtype = 'float32',
): Record<string, HostTensor> {
  return weightFeeds(paramShapes(config), params, dtype);
}

/** Length of the longest row (a loop: spreading a large batch into Math.max exceeds V8's argument limit). */
export function longest(rows: readonly { readonly length: number }[]): number {
  let max = 0;
  for (const row of rows) if (row.length > max) max = row.length;
  return max;
}

/** Rows of token ids left-padded to one length: ids and mask (1 = real token), int64 [B, P]. */
export function leftPad(
  rows: readonly (readonly number[])[],
  padId: number,
): { ids: HostTensor; mask: HostTensor } {
  const width = longest(rows);
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
