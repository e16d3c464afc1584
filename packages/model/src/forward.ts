// The public forward pass: logits and log-probs of token rows through any supported architecture, so a user can
// check a model against another implementation (transformers, a reference written from the paper) without
// building graphs by hand. Rows of different lengths are left-padded and masked, exactly as generation does.
import { Graph, logSoftmax } from '@rlhf/graph';
import type { HostTensor, Runtime, Session } from '@rlhf/runtime';
import { type GptConfig, validateConfig } from './config.js';
import { type HostParams, leftPad, type ModelDtype, paramFeeds } from './feeds.js';
import { gptForward, gptParamInputs } from './gpt.js';

export interface ForwardOptions {
  /** The graph's float dtype (default float32; float64 for reference checks). */
  dtype?: ModelDtype;
}

/** One row's outputs, its padding removed. */
export interface ForwardRow {
  /** Logits [T, V] row-major: position t's scores for the token after it. */
  logits: Float32Array | Float64Array;
  /** log softmax of `logits`, [T, V] row-major. */
  logprobs: Float32Array | Float64Array;
  /** log π(row[t + 1] | row[..t]) for t < T - 1: the log-prob the model gives each next token of the row. */
  tokenLogprobs: number[];
  /** Scalar head per position [T] (reward models and critics: config.scalarHead). */
  values?: number[];
}

export interface Forward {
  /** Runs the rows (token ids, any lengths ≥ 1) in one batch; padId fills the left padding (never attended). */
  run(params: HostParams, rows: readonly (readonly number[])[], padId?: number): Promise<ForwardRow[]>;
  release(): Promise<void>;
}

/** The forward graph: parameters, `ids` / `mask` int64 [B, T] in; `logits`, `logprobs` [B, T, V] (+ `values`) out. */
export function buildForwardGraph(config: GptConfig, dtype: ModelDtype = 'float32'): Uint8Array {
  validateConfig(config);
  const g = new Graph('forward');
  const params = gptParamInputs(g, config, dtype);
  const ids = g.input('ids', 'int64', ['batch', 'seq']);
  const mask = g.input('mask', 'int64', ['batch', 'seq']);
  const out = gptForward(params, config, ids, { attentionMask: mask });
  g.output(out.logits, 'logits');
  g.output(logSoftmax(out.logits, -1), 'logprobs');
  if (out.values) g.output(out.values, 'values');
  return g.toBytes();
}

/** Creates the forward session once; run() per batch. */
export async function createForward(
  runtime: Runtime,
  config: GptConfig,
  options: ForwardOptions = {},
): Promise<Forward> {
  const dtype = options.dtype ?? 'float32';
  const session: Session = await runtime.createSession(buildForwardGraph(config, dtype), { name: 'forward' });
  return {
    async run(params, rows, padId = 0) {
      if (rows.length === 0 || rows.some((row) => row.length === 0))
        throw new Error('forward: every row needs at least one token');
      for (const row of rows)
        for (const id of row)
          if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize)
            throw new Error(`forward: token id ${id} is outside [0, ${config.vocabSize})`);
      const batch = leftPad(rows, padId);
      const out = await session.run({
        ...paramFeeds(config, params, dtype),
        ids: batch.ids,
        mask: batch.mask,
      });
      return rows.map((row, b) => rowOutputs(out, row, b, batch.ids.dims[1], config.vocabSize));
    },
    release: () => session.release(),
  };
}

/** Row b's slice of the [B, T, V] outputs, without its left padding. */
function rowOutputs(
  out: Record<string, HostTensor>,
  row: readonly number[],
  b: number,
  width: number,
  V: number,
): ForwardRow {
  const start = b * width + width - row.length;
  const slab = (t: HostTensor) =>
    (t.data as Float32Array | Float64Array).slice(start * V, (b + 1) * width * V);
  const logprobs = slab(out.logprobs);
  const result: ForwardRow = {
    logits: slab(out.logits),
    logprobs,
    tokenLogprobs: row.slice(1).map((next, t) => logprobs[t * V + next]),
  };
  if (out.values) {
    const values = out.values.data as Float32Array | Float64Array;
    result.values = Array.from(values.subarray(start, (b + 1) * width));
  }
  return result;
}
