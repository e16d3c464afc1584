// Generation sized to the call budget, for the sampling stages (PPO, GRPO, RAFT) and evaluations: one generate()
// of B rows runs as budget-sized calls of consecutive rows (rows.ts), the stage's abort signal checked between
// them. The generation graph decodes all new tokens in one Loop (no KV cache kept between calls), so rows are
// what can be split.
import { type GenerateResult, type Generator, generationUniforms, longest } from '@rlhf/model';
import { type BudgetedRowsOptions, joinRows, rowSplitter } from './rows.js';

export type BudgetedGeneratorOptions = BudgetedRowsOptions;

/**
 * `generator` with each generate() split into budget-sized calls of rows (the first call ever one row; the pace,
 * seconds per row per prompt + new token, carries over to the next request). Every row keeps the uniforms the
 * whole batch draws from its seed, so the result is the one unsplit call's as far as the kernels give a row the
 * same logits in any batch.
 */
export function budgetedGenerator(generator: Generator, options: BudgetedGeneratorOptions = {}): Generator {
  const split = rowSplitter('generate', options);
  return {
    async generate(request) {
      const B = request.prompts.length;
      const N = request.maxNewTokens;
      const uniforms = request.uniforms ?? generationUniforms(request.seed ?? 0, N, B);
      const parts = await split(B, longest(request.prompts) + N, (from, rows) =>
        generator.generate({
          ...request,
          prompts: request.prompts.slice(from, from + rows),
          uniforms: columns(uniforms, N, B, from, rows),
        }),
      );
      return parts.length === 1 ? parts[0] : joined(parts);
    },
    release: () => generator.release(),
  };
}

/** Columns [from, from + rows) of uniforms [N, B] (row-major), as [N, rows]. */
function columns(uniforms: Float64Array, N: number, B: number, from: number, rows: number): Float64Array {
  if (from === 0 && rows === B) return uniforms;
  const out = new Float64Array(N * rows);
  for (let n = 0; n < N; n++) out.set(uniforms.subarray(n * B + from, n * B + from + rows), n * rows);
  return out;
}

/** The calls' results as one, rows in order. */
function joined(parts: readonly GenerateResult[]): GenerateResult {
  const top = parts[0].top
    ? { ids: joinRows(parts.map((p) => p.top!.ids)), logprobs: joinRows(parts.map((p) => p.top!.logprobs)) }
    : undefined;
  return {
    tokens: joinRows(parts.map((p) => p.tokens)),
    logprobs: joinRows(parts.map((p) => p.logprobs)),
    mask: joinRows(parts.map((p) => p.mask)),
    finished: joinRows(parts.map((p) => p.finished)),
    ...(top ? { top } : {}),
  };
}
