// The supervised step body SFT and the reward model share, run by the stage driver: fused K-step session runs
// (packages/graph createTrainer), lr schedule, held-out evaluation. A stage supplies its loss graph, how to turn
// step indices into batches, and how to evaluate.
import { CALL_BUDGET_SECONDS, type RewardModelConfig, type SftConfig } from '@rlhf/contracts';
import {
  buildTrainStep,
  createTrainer,
  lrSchedule,
  lrsFor,
  type OptimizerConfig,
  type ParamSpec,
  type StepReport,
  type TrainerState,
  type TrainStepSpec,
} from '@rlhf/graph';
import { paramShapes } from '@rlhf/model';
import type { HostTensor, Runtime, Weights } from '@rlhf/runtime';
import type { CheckpointFiles } from './checkpoints.js';
import { batchOrder, lrScheduleOf } from './data.js';
import { runStage } from './driver.js';
import {
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  optimizerFiles,
  optimizerFromFiles,
} from './files.js';
import { assertFinite, type StageHooks } from './hooks.js';
import { trainerCache } from './trainer-cache.js';

/** The settings SFT and reward-model configs share (@rlhf/contracts). */
export type SupervisedConfig = Pick<
  SftConfig & RewardModelConfig,
  | 'epochs'
  | 'maxSteps'
  | 'batchSize'
  | 'lr'
  | 'warmupSteps'
  | 'schedule'
  | 'weightDecay'
  | 'adamBeta1'
  | 'adamBeta2'
  | 'adamEpsilon'
  | 'maxGradNorm'
  | 'evalEvery'
  | 'keepBest'
  | 'checkpointEvery'
  | 'seed'
  | 'stepsPerCall'
  | 'gradientAccumulation'
  | 'recompute'
>;

export interface SupervisedLoop {
  /** Stage kind, recorded in trainer.json and checked when resuming. */
  stage: string;
  config: SupervisedConfig;
  /** Starting weights when there is no checkpoint to resume from. */
  model: ModelWeights;
  runtime: Runtime;
  hooks?: StageHooks;
  /** Training units (examples, or prompts for a ranked reward model); batchSize counts them. */
  trainSize: number;
  /** The loss graph: batch inputs are one micro-batch; params are named as packages/model paramShapes. */
  graph: Pick<TrainStepSpec, 'batch' | 'loss' | 'shared'>;
  /** Feeds for one session run: each batch input stacked [K, 1, ...] from K lists of training-unit indices. */
  feeds(batches: number[][]): { feeds: Record<string, HostTensor>; tokens: number };
  /** Graph metric name (LossResult.metrics) -> reported metric name. */
  metricNames?: Record<string, string>;
  /** Held-out metrics of the current weights (reported names). */
  evaluate(model: ModelWeights): Promise<Record<string, number>>;
  /**
   * A fused call that takes longer shrinks the calls after it (fewer steps each, down to 1), so a cancel or a
   * shutdown, checked between calls, is seen within about this long (default @rlhf/contracts CALL_BUDGET_SECONDS).
   */
  callBudgetSeconds?: number;
  /**
   * Train these tensors (a LoRA adapter) instead of the model's parameters: the model stays frozen, fed as the
   * graph's `shared` inputs (no gradient, no AdamW state), and checkpoints hold only these tensors. The
   * ModelWeights that `evaluate` gets and the result returns then carry the adapter's tensors as `params`.
   */
  adapter?: {
    params: readonly ParamSpec[];
    /** Starting values when there is no checkpoint to resume from. */
    initial: Weights;
    /** The frozen inputs of every call (the base weights), by the graph's shared input names. */
    shared: Record<string, HostTensor>;
    files(params: Weights): CheckpointFiles;
    fromFiles(files: CheckpointFiles): Weights;
  };
}

export interface SupervisedResult {
  /** Optimizer steps completed (= totalSteps). */
  step: number;
  totalSteps: number;
  /** The last weights, or with config.keepBest the weights of the best evaluation. */
  model: ModelWeights;
  /** With config.keepBest: the last weights (beside the best ones), and which step was best. */
  last?: ModelWeights;
  best?: { step: number; metric: string; value: number };
  /** The held-out metrics of `model`. */
  eval: Record<string, number>;
  /** The step the stage resumed from, null when it started fresh. */
  resumedFrom: number | null;
}

/** AdamW settings of a stage config, as packages/graph's train step takes them (maxGradNorm 0 = no clipping). */
export function optimizerOf(
  config: Pick<SupervisedConfig, 'adamBeta1' | 'adamBeta2' | 'adamEpsilon' | 'weightDecay' | 'maxGradNorm'>,
): OptimizerConfig {
  return {
    beta1: config.adamBeta1,
    beta2: config.adamBeta2,
    eps: config.adamEpsilon,
    weightDecay: config.weightDecay,
    maxGradNorm: config.maxGradNorm > 0 ? config.maxGradNorm : undefined,
  };
}

/** Optimizer steps of a config: maxSteps, else epochs over the training units. */
export function totalStepsOf(
  config: Pick<SupervisedConfig, 'maxSteps' | 'epochs' | 'batchSize'>,
  trainSize: number,
) {
  return config.maxSteps ?? config.epochs * Math.ceil(trainSize / config.batchSize);
}

/**
 * Feeds of K steps of M micro-batches each: every step's units cut into M equal parts, stacked by `feeds` as
 * K·M lists ([K·M, 1, ...]) and relabelled [K, M, ...]: the same row-major data.
 */
export function microBatchFeeds(
  feeds: SupervisedLoop['feeds'],
  steps: readonly number[][],
  M: number,
): ReturnType<SupervisedLoop['feeds']> {
  if (M === 1) return feeds([...steps]);
  const parts = steps.flatMap((units) => {
    if (units.length % M !== 0)
      throw new RangeError(`${units.length} units do not split into ${M} micro-batches`);
    const size = units.length / M;
    return Array.from({ length: M }, (_, j) => units.slice(j * size, (j + 1) * size));
  });
  const stacked = feeds(parts);
  const relabelled = Object.fromEntries(
    Object.entries(stacked.feeds).map(([name, t]) => {
      if (t.dims[0] !== parts.length || t.dims[1] !== 1)
        throw new RangeError(`feed ${name} is [${t.dims}], not [${parts.length}, 1, ...]`);
      return [name, { ...t, dims: [steps.length, M, ...t.dims.slice(2)] } as HostTensor];
    }),
  );
  return { feeds: relabelled, tokens: stacked.tokens };
}

/** Training units in one micro-batch: a step's batchSize cut into gradientAccumulation equal parts. */
export const microBatchSize = (config: Pick<SupervisedConfig, 'batchSize' | 'gradientAccumulation'>) =>
  config.batchSize / config.gradientAccumulation;

/** Checkpoint files of the best weights so far (config.keepBest) carry this prefix. */
export const BEST_PREFIX = 'best.';

// The best weights a checkpoint carries: the adapter's tensors, or the model's (files named with BEST_PREFIX).
async function bestFromFiles(files: CheckpointFiles, adapter: SupervisedLoop['adapter']): Promise<Weights> {
  if (!adapter) return (await modelFromFiles(files, { prefix: BEST_PREFIX })).params;
  const named = Object.fromEntries(
    Object.entries(files).flatMap(([name, bytes]) =>
      name.startsWith(BEST_PREFIX) ? [[name.slice(BEST_PREFIX.length), bytes]] : [],
    ),
  );
  return adapter.fromFiles(named);
}

/** Runs (or resumes) a supervised stage to its last step; see SupervisedLoop. */
export async function runSupervisedLoop(loop: SupervisedLoop): Promise<SupervisedResult> {
  const { config, runtime } = loop;
  const totalSteps = totalStepsOf(config, loop.trainSize);
  const lrAt = lrSchedule(lrScheduleOf(config, totalSteps));
  const stepBatches = batchOrder(loop.trainSize, config.batchSize, config.seed);
  const reported = (name: string) => loop.metricNames?.[name] ?? name;

  const run = await runStage({
    stage: loop.stage,
    totalSteps,
    checkpointEvery: config.checkpointEvery,
    hooks: loop.hooks,
    async start(resume) {
      // The latest checkpoint, else the given weights with zero AdamW moments.
      const { adapter } = loop;
      const model = resume && !adapter ? await modelFromFiles(resume.files) : loop.model;
      const params = adapter ? (resume ? adapter.fromFiles(resume.files) : adapter.initial) : model.params;
      let state: TrainerState = resume
        ? { params, ...optimizerFromFiles(resume.files), step: resume.step }
        : { params, m: new Map(), v: new Map(), step: 0 };
      const current = (): ModelWeights => ({ ...model, params: state.params });
      let evalValues: Record<string, number> | null = null;
      const evaluate = async () => {
        evalValues = await loop.evaluate(current());
        return evalValues;
      };
      // config.keepBest: the best evaluation's weights so far (a copy: training goes on updating state.params).
      const keepBest = config.keepBest;
      let best: { step: number; value: number; eval: Record<string, number>; params: Weights } | null =
        resume?.state.best && keepBest
          ? {
              ...(resume.state.best as { step: number; value: number; eval: Record<string, number> }),
              params: await bestFromFiles(resume.files, adapter),
            }
          : null;
      const consider = (values: Record<string, number>) => {
        if (!keepBest) return;
        const value = values[keepBest.metric];
        if (value === undefined)
          throw new Error(
            `keepBest.metric "${keepBest.metric}" is not a held-out metric of this stage (it reports: ${Object.keys(values).join(', ') || 'none; is validationFraction 0?'})`,
          );
        const better = best === null || (keepBest.mode === 'min' ? value < best.value : value > best.value);
        if (better)
          best = {
            step: state.step,
            value,
            eval: values,
            params: new Map([...state.params].map(([name, v]) => [name, Float32Array.from(v)])),
          };
      };

      // One trainer (session) per fused length K: stepsPerCall, and the shorter one that ends a call on an
      // evaluation step or the last step (two are kept, so an evalEvery off the call length costs one more).
      const trainers = trainerCache((k, from) => {
        const trainStep = buildTrainStep({
          name: `${loop.stage}_train`,
          params: adapter?.params ?? paramShapes(model.config),
          ...loop.graph,
          optimizer: optimizerOf(config),
          steps: k,
          accumulate: config.gradientAccumulation,
        });
        const hasMoments = (from.m?.size ?? 0) > 0;
        return createTrainer(runtime, trainStep, {
          params: from.params,
          ...(hasMoments ? { m: from.m, v: from.v } : {}),
          step: from.step,
        });
      });
      const trainerFor = (k: number) => trainers.get(k, state);

      const budget = loop.callBudgetSeconds ?? CALL_BUDGET_SECONDS;
      let callSteps = config.stepsPerCall;
      return {
        initialMetrics: evaluate,
        async step(first) {
          const nextEval = (Math.floor(first / config.evalEvery) + 1) * config.evalEvery;
          const k = Math.min(callSteps, totalSteps - first, nextEval - first);
          const active = await trainerFor(k);
          const { feeds, tokens } = microBatchFeeds(
            loop.feeds,
            Array.from({ length: k }, (_, i) => stepBatches(first + i)),
            config.gradientAccumulation,
          );
          const lrs = lrsFor(lrAt, first, k);
          const started = performance.now();
          const report: StepReport = await active.run(feeds, lrs, adapter?.shared);
          const seconds = (performance.now() - started) / 1000;
          if (seconds > budget && callSteps > 1) {
            callSteps = Math.max(1, Math.floor((k * budget) / seconds));
            loop.hooks?.log?.(
              `${loop.stage}: ${k} steps took ${seconds.toFixed(1)} s; ${callSteps} per call from now on`,
            );
          }
          assertFinite(
            {
              'train/loss': report.loss,
              'train/grad_norm': report.gradNorm,
              ...Object.fromEntries(Object.entries(report.metrics).map(([name, v]) => [reported(name), v])),
            },
            first + 1,
          );
          state = active.state;
          const crossed = Math.floor(state.step / config.evalEvery) > Math.floor(first / config.evalEvery);
          const held = crossed || state.step === totalSteps ? await evaluate() : null;
          if (held) consider(held);
          const metrics = Array.from({ length: k }, (_, i) => {
            const values: Record<string, number> = {
              'train/loss': report.loss[i],
              'train/lr': lrs[i],
              'train/grad_norm': report.gradNorm[i],
              'timing/step': seconds / k,
              'perf/tokens_per_sec': tokens / seconds,
            };
            for (const [name, perStep] of Object.entries(report.metrics)) values[reported(name)] = perStep[i];
            return i === k - 1 && held ? { ...values, ...held } : values;
          });
          return { steps: k, metrics };
        },
        weights: () => state.params,
        async checkpoint() {
          const weightFiles = async (params: Weights) =>
            adapter ? adapter.files(params) : await modelFiles({ ...model, params });
          const files = {
            ...(await weightFiles(state.params)),
            ...optimizerFiles({ m: state.m, v: state.v }),
            // The best weights so far travel with the checkpoint: a resumed stage still ends with them.
            ...(best
              ? Object.fromEntries(
                  Object.entries(await weightFiles(best.params)).map(([name, bytes]) => [
                    `${BEST_PREFIX}${name}`,
                    bytes,
                  ]),
                )
              : {}),
          };
          // The data position follows from the step: batchOrder(seed) reads units step·batchSize onwards.
          const unitsSeen = state.step * config.batchSize;
          return {
            files,
            state: {
              seed: config.seed,
              batchSize: config.batchSize,
              unitsSeen,
              epoch: Math.floor(unitsSeen / loop.trainSize),
              ...(best ? { best: { step: best.step, value: best.value, eval: best.eval } } : {}),
            },
          };
        },
        finish: async () => {
          const last = current();
          const lastEval = evalValues ?? (await evaluate());
          const kept = best as {
            step: number;
            value: number;
            eval: Record<string, number>;
            params: Weights;
          } | null;
          if (!keepBest || !kept) return { model: last, eval: lastEval };
          return {
            model: { ...model, params: kept.params },
            eval: kept.eval,
            last,
            best: { step: kept.step, metric: keepBest.metric, value: kept.value },
          };
        },
        release: () => trainers.release(),
      };
    },
  });
  return { step: run.step, totalSteps, ...run.result, resumedFrom: run.resumedFrom };
}
