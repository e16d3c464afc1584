// Generation sized to the call budget, for the sampling stages (PPO, GRPO, RAFT) and evaluations: one generate()
// of B rows runs as calls of c rows (c measured so a call takes about the budget), the stage's abort signal
// checked between calls, so a cancel or a pause reaches a large rollout within about one budget. The generation
// graph decodes all new tokens in one Loop (no KV cache kept between calls), so rows are what can be split.
import { CALL_BUDGET_SECONDS } from '@rlhf/contracts';
import { type GenerateResult, type Generator, generationUniforms, longest } from '@rlhf/model';
import { throwIfInterrupted } from './budget.js';

export interface BudgetedGeneratorOptions {
  /** Checked between calls: StepInterrupted, clean (a generation changes no state; every stage samples first). */
  signal?: AbortSignal;
  /** Default @rlhf/contracts CALL_BUDGET_SECONDS. */
  budgetSeconds?: number;
  log?(message: string): void;
}

/**
 * `generator` with each generate() split into budget-sized calls of consecutive rows: the first call ever is one
 * row, later ones as many rows as fit at the last call's pace (a power of two) (seconds per row per prompt + new token), so the
 * pace carries over from one request to the next. Every row keeps the uniforms the whole batch draws from its
 * seed, so the result is the one unsplit call's as far as the kernels give a row the same logits in any batch.
 */
export function budgetedGenerator(generator: Generator, options: BudgetedGeneratorOptions = {}): Generator {
  const budget = options.budgetSeconds ?? CALL_BUDGET_SECONDS;
  let secondsPerToken: number | undefined;
  let callRows = 1;
  return {
    async generate(request) {
      const B = request.prompts.length;
      const N = request.maxNewTokens;
      const rowTokens = longest(request.prompts) + N;
      const uniforms = request.uniforms ?? generationUniforms(request.seed ?? 0, N, B);
      const parts: GenerateResult[] = [];
      for (let done = 0; done < B; ) {
        if (done > 0) throwIfInterrupted(options.signal, true);
        const rows = Math.min(B - done, fitting(secondsPerToken, budget, rowTokens));
        const started = performance.now();
        parts.push(
          await generator.generate({
            ...request,
            prompts: request.prompts.slice(done, done + rows),
            uniforms: columns(uniforms, N, B, done, rows),
          }),
        );
        const seconds = (performance.now() - started) / 1000;
        secondsPerToken = seconds / (rows * rowTokens);
        done += rows;
        const next = fitting(secondsPerToken, budget, rowTokens);
        if (next !== callRows)
          options.log?.(`generate: ${rows} rows took ${seconds.toFixed(2)} s; ${next} per call from now on`);
        callRows = next;
      }
      return parts.length === 1 ? parts[0] : joined(parts);
    },
    release: () => generator.release(),
  };
}

/** Rows of `rowTokens` tokens that fit in the budget at this pace (one before any call was measured). */
function fitting(secondsPerToken: number | undefined, budget: number, rowTokens: number): number {
  if (secondsPerToken === undefined) return 1;
  const fit = Math.max(1, Math.floor(budget / Math.max(secondsPerToken * rowTokens, 1e-12)));
  return 2 ** Math.floor(Math.log2(fit)); // a power of two: call sizes (and the log) change seldom
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
  const rows = <T>(of: (part: GenerateResult) => readonly T[]): T[] => parts.flatMap((part) => [...of(part)]);
  const top = parts[0].top
    ? { ids: rows((p) => p.top!.ids), logprobs: rows((p) => p.top!.logprobs) }
    : undefined;
  return {
    tokens: rows((p) => p.tokens),
    logprobs: rows((p) => p.logprobs),
    mask: rows((p) => p.mask),
    finished: rows((p) => p.finished),
    ...(top ? { top } : {}),
  };
}
