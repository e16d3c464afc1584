// What the API assumes of a worker when it refuses a run whose calls could not finish in bounded time (issue 18
// item 7): one ONNX session call should end within the call budget (@rlhf/contracts CALL_BUDGET_SECONDS), so a
// cancel or pause, checked between calls, is seen within about that long.

/**
 * FLOP/s a worker is assumed to sustain: a fast accelerator's (about an H200 running float32 ONNX graphs), so only
 * calls that even such a worker cannot finish within the budget are refused. Conservative in what it refuses: a
 * slower worker shrinks its calls after the first one (stage-kit) instead.
 */
export const WORKER_FLOPS_PER_SECOND = 1e13;

/** Tokens one fused call may carry: its host-side feeds (ids, masks, targets) stay within a few hundred MB. */
export const MAX_CALL_TOKENS = 2 ** 24;
