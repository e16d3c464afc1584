// Per-checkpoint evaluation: a policy stage whose job carries `checkpointEval` (the run ends with an eval stage
// that asks for it) compares the policy of each checkpoint that passes a multiple of `every` steps, the way the
// eval stage compares the final one, and reports eval/win_rate (and its interval) on the stage at that step —
// the run page charts them like any metric. It wraps the checkpoint store, so every stage kind gets it unchanged.
import type { CheckpointEval } from '@rlhf/contracts';
import type { CheckpointStore } from '@rlhf/stage-kit';
import { modelFromFiles } from '@rlhf/stage-kit';
import type { StageContext, StageRunner, StageRunners } from './context.js';
import { type ComparisonSides, type ComparisonSpec, comparePolicy, loadSides } from './eval-stage.js';
import { tokenizerAt } from './model-files.js';

/** Prompts of a checkpoint comparison when the eval stage does not say (fewer than the final one's). */
export const DEFAULT_CHECKPOINT_PROMPTS = 32;

function evaluatingStore(
  store: CheckpointStore,
  check: CheckpointEval,
  ctx: StageContext,
  tokenizerKey: string | undefined,
): CheckpointStore {
  const settings = check.config.checkpoints!;
  const spec: ComparisonSpec = {
    ...check,
    maxPrompts: settings.maxPrompts ?? DEFAULT_CHECKPOINT_PROMPTS,
  };
  let sides: ComparisonSides | null = null;
  let lastStep = 0;
  return {
    latest: () => store.latest(),
    async save(step, files) {
      await store.save(step, files);
      const passed = Math.floor(step / settings.every) > Math.floor(lastStep / settings.every);
      lastStep = step;
      if (!passed) return;
      // A measurement, not the training: a checkpoint that cannot be compared (e.g. one holding only a LoRA
      // adapter) is reported and skipped, the stage goes on.
      let outcome: Awaited<ReturnType<typeof comparePolicy>>;
      try {
        const tokenizer = await tokenizerAt(ctx.artifacts, tokenizerKey);
        sides ??= await loadSides(spec, ctx, tokenizer);
        outcome = await comparePolicy(spec, sides, await modelFromFiles(files), ctx, tokenizer);
      } catch (error) {
        const message = `checkpoint evaluation at step ${step} failed: ${error instanceof Error ? error.message : String(error)}`;
        ctx.logger.warn({ err: error, step }, 'checkpoint evaluation failed; the stage goes on');
        ctx.hooks.log?.(message);
        return;
      }
      await ctx.hooks.onMetrics?.(step, {
        'eval/win_rate': outcome.pair.winRate,
        'eval/win_rate_lower': outcome.pair.interval.lower,
        'eval/win_rate_upper': outcome.pair.interval.upper,
      });
    },
  };
}

/** A runner whose checkpoints are evaluated when its job asks for it. */
function withCheckpointEval(runner: StageRunner): StageRunner {
  return (job, ctx) => {
    const check = job.checkpointEval;
    const store = ctx.hooks.checkpoints;
    if (!check?.config.checkpoints || !store) return runner(job, ctx);
    // The policy's tokenizer: the run's registered model's, else the presets' byte tokenizer.
    const checkpoints = evaluatingStore(store, check, ctx, job.baseModel);
    return runner(job, { ...ctx, hooks: { ...ctx.hooks, checkpoints } });
  };
}

/** Every runner of `runners` with per-checkpoint evaluation. */
export function withCheckpointEvals(runners: StageRunners): StageRunners {
  return Object.fromEntries(
    Object.entries(runners).map(([kind, runner]) => [kind, runner && withCheckpointEval(runner)]),
  ) as StageRunners;
}
