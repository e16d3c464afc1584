// The one call budget the API and the workers share (issue 18 item 7): a worker sees a cancel or pause only between
// ONNX session calls, so the stages size their calls to it and the API refuses runs whose calls could not fit it.

/** Seconds one session call may take before a cancel or pause is seen. */
export const CALL_BUDGET_SECONDS = 10;
