// The supervised step body SFT and the reward model share, run by the stage driver: fused K-step session runs
// (packages/graph createTrainer), lr schedule, held-out evaluation. A stage supplies its loss graph, how to turn
// step indices into batches, and how to evaluate.
import type { RewardModelConfig, SftConfig } from '@rlhf/contracts';
import {
  buildTrainStep,
  createTrainer,
  lrSchedule,
  lrsFor,
  type OptimizerConfig,
  type ParamSpec,
  type StepReport,
  type Trainer,
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
  | 'checkpointEvery'
  | 'seed'
  | 'stepsPerCall'
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
   * shutdown, checked between calls, is seen within about this long (default 10 s).
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
  model: ModelWeights;
  /** The final held-out metrics. */
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

      // One trainer (session) per fused length K: stepsPerCall, and a shorter one for the tail of the run.
      let trainer: { steps: number; trainer: Trainer } | null = null;
      const trainerFor = async (k: number) => {
        if (trainer?.steps === k) return trainer.trainer;
        await trainer?.trainer.release();
        trainer = null;
        const trainStep = buildTrainStep({
          name: `${loop.stage}_train`,
          params: adapter?.params ?? paramShapes(model.config),
          ...loop.graph,
          optimizer: optimizerOf(config),
          steps: k,
        });
        const hasMoments = state.m.size > 0;
        const created = await createTrainer(runtime, trainStep, {
          params: state.params,
          ...(hasMoments ? { m: state.m, v: state.v } : {}),
          step: state.step,
        });
        trainer = { steps: k, trainer: created };
        return created;
      };

      const budget = loop.callBudgetSeconds ?? 10;
      let callSteps = config.stepsPerCall;
      return {
        initialMetrics: evaluate,
        async step(first) {
          const k = Math.min(callSteps, totalSteps - first);
          const active = await trainerFor(k);
          const { feeds, tokens } = loop.feeds(Array.from({ length: k }, (_, i) => stepBatches(first + i)));
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
          const files = {
            ...(adapter ? adapter.files(state.params) : await modelFiles(current())),
            ...optimizerFiles({ m: state.m, v: state.v }),
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
            },
          };
        },
        finish: async () => ({ model: current(), eval: evalValues ?? (await evaluate()) }),
        release: async () => {
          // (TS narrows `trainer` to null here: it is assigned inside trainerFor.)
          await (trainer as { trainer: Trainer } | null)?.trainer.release();
        },
      };
    },
  });
  return { step: run.step, totalSteps, ...run.result, resumedFrom: run.resumedFrom };
}
