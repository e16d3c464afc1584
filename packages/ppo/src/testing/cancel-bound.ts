// The cancel-bound harness the PPO, GRPO and RAFT tests share (issue 18 item 7): abort a stage 2 s after its budgeted
// trainer's first measurement, inside an iteration far longer than the bound, and check that it stops within 15 s.
import { type GptConfig, initParams, presetConfig } from '@rlhf/model';
import { type ModelWeights, type StageHooks, StageAbortedError } from '@rlhf/stage-kit';
import { expect } from 'vitest';

/** A tiny random policy (seed 1) and reward model (seed 2): the bound does not depend on what they learned. */
export function tinyRandomModels(): { policy: ModelWeights; rewardModel: ModelWeights } {
  const config: GptConfig = presetConfig('tiny');
  const rmConfig: GptConfig = { ...config, scalarHead: true };
  return {
    policy: { config, params: initParams(config, 1) },
    rewardModel: { config: rmConfig, params: initParams(rmConfig, 2) },
  };
}

export interface CancelBoundCase {
  /** The stage's log prefix: its budgeted trainer logs `<stage>: 1 steps took <s> s`. */
  stage: string;
  /** The abort reason ('cancel', PAUSE). */
  reason: string;
  /** Steps in the interrupted iteration. */
  steps: number;
  /** Seconds the iteration would at least take uninterrupted (measured step time × steps): far past the bound. */
  uninterruptedSeconds: number;
  /** Runs the stage with these hooks; resolves or rejects with what the trainer does. */
  train(hooks: StageHooks): Promise<unknown>;
}

/** Runs the case and asserts the bound; returns the StageAbortedError for the stage's own checks. */
export async function expectStopWithinBound(c: CancelBoundCase): Promise<StageAbortedError> {
  const controller = new AbortController();
  const logs: string[] = [];
  const metrics: number[] = [];
  let abortedAt = 0;
  const result = await c
    .train({
      signal: controller.signal,
      onMetrics: (step) => {
        metrics.push(step);
      },
      log: (message) => {
        logs.push(message);
        // The budgeted trainer's first measurement: the training is under way.
        if (abortedAt === 0 && /steps took/.test(message)) {
          abortedAt = -1;
          setTimeout(() => {
            abortedAt = performance.now();
            controller.abort(c.reason);
          }, 2000);
        }
      },
    })
    .catch((error: unknown) => error);
  const latencySeconds = (performance.now() - abortedAt) / 1000;
  console.log(JSON.stringify({ stage: c.stage, reason: c.reason, latencySeconds, logs }));
  expect(result).toBeInstanceOf(StageAbortedError);
  const aborted = result as StageAbortedError;
  expect(aborted.reason).toBe(c.reason);
  expect(latencySeconds).toBeLessThan(15);
  expect(metrics).toEqual([]); // stopped inside the first iteration
  const perStep = Number(new RegExp(`${c.stage}: 1 steps took ([\\d.]+) s`).exec(logs.join('\n'))?.[1]);
  expect(perStep * c.steps).toBeGreaterThan(c.uninterruptedSeconds);
  return aborted;
}
