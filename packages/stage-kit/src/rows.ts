// A batch of independent rows run as calls sized to the time budget (generation, scoring): the first call is one
// row, later ones as many rows as fit at the last call's pace (a power of two), the abort signal checked between
// calls, so a cancel or a pause reaches a large batch within about one budget.
import { CALL_BUDGET_SECONDS } from '@rlhf/contracts';
import { throwIfInterrupted } from './budget.js';

export interface BudgetedRowsOptions {
  /** Checked between calls: StepInterrupted, clean (these calls change no state; every stage makes them first). */
  signal?: AbortSignal;
  /** Default @rlhf/contracts CALL_BUDGET_SECONDS. */
  budgetSeconds?: number;
  log?(message: string): void;
}

/** Runs `call` over consecutive row ranges; the pace carries over from one batch to the next. */
export type RowSplitter = <T>(
  rows: number,
  rowTokens: number,
  call: (from: number, count: number) => Promise<T>,
) => Promise<T[]>;

/** A splitter whose calls are named `what` in the log (`<what>: 8 rows took 1.20 s; 64 per call from now on`). */
export function rowSplitter(what: string, options: BudgetedRowsOptions = {}): RowSplitter {
  const budget = options.budgetSeconds ?? CALL_BUDGET_SECONDS;
  let secondsPerToken: number | undefined; // per row × its tokens, at the last call's pace
  let callRows = 1;
  const fitting = (rowTokens: number) => {
    if (secondsPerToken === undefined) return 1;
    const fit = Math.max(1, Math.floor(budget / Math.max(secondsPerToken * rowTokens, 1e-12)));
    return 2 ** Math.floor(Math.log2(fit)); // a power of two: call sizes (and the log) change seldom
  };
  return async (rows, rowTokens, call) => {
    const parts = [];
    for (let done = 0; done < rows; ) {
      if (done > 0) throwIfInterrupted(options.signal, true);
      const count = Math.min(rows - done, fitting(rowTokens));
      const started = performance.now();
      parts.push(await call(done, count));
      const seconds = (performance.now() - started) / 1000;
      secondsPerToken = seconds / (count * rowTokens);
      done += count;
      const next = fitting(rowTokens);
      if (next !== callRows)
        options.log?.(`${what}: ${count} rows took ${seconds.toFixed(2)} s; ${next} per call from now on`);
      callRows = next;
    }
    return parts;
  };
}

/** The parts' rows in order, as one array (a loop: a large batch would overflow push(...rows)). */
export function joinRows<T>(parts: readonly (readonly T[])[]): T[] {
  const out: T[] = [];
  for (const part of parts) for (const row of part) out.push(row);
  return out;
}
