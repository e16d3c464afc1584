// The supervised training loop SFT and the reward model share: fused K-step session runs (packages/graph
// createTrainer), lr schedule, held-out evaluation, checkpoints, resume, abort and NaN/Inf handling. A stage
// supplies its loss graph, how to turn step indices into batches, and how to evaluate.
import type { RewardModelConfig, SftConfig } from '@rlhf/contracts';
import {
  buildTrainStep,
  createTrainer,
  lrSchedule,
  lrsFor,
  type OptimizerConfig,
  type StepReport,
  type Trainer,
  type TrainerState,
  type TrainStepSpec,
} from '@rlhf/graph';
import { type GptConfig, paramShapes } from '@rlhf/model';
import { float32, type HostTensor, type Runtime } from '@rlhf/runtime';
import { batchOrder, lrScheduleOf } from './data.js';
import { type ModelWeights, modelFiles, modelFromFiles, trainerFiles, trainerFromFiles } from './files.js';
import {
  firstNonFinite,
  NonFiniteError,
  nonFiniteParam,
  SHUTDOWN,
  StageAbortedError,
  type StageHooks,
} from './hooks.js';

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

const paramTensors = (config: GptConfig, params: ReadonlyMap<string, Float32Array>) =>
  Object.fromEntries(paramShapes(config).map(({ name, shape }) => [name, float32(shape, params.get(name)!)]));

const toMap = (tensors: Record<string, HostTensor>) =>
  new Map(Object.entries(tensors).map(([name, t]) => [name, t.data as Float32Array]));

/** Runs (or resumes) a supervised stage to its last step; see SupervisedLoop. */
export async function runSupervisedLoop(loop: SupervisedLoop): Promise<SupervisedResult> {
  const { config, hooks = {}, runtime } = loop;
  const totalSteps = totalStepsOf(config, loop.trainSize);
  const lrAt = lrSchedule(lrScheduleOf(config, totalSteps));
  const stepBatches = batchOrder(loop.trainSize, config.batchSize, config.seed);
  const log = hooks.log ?? (() => {});

  // Where to start: the latest checkpoint, else the given weights with zero AdamW moments.
  let model = loop.model;
  let state: TrainerState;
  let resumedFrom: number | null = null;
  const saved = await hooks.checkpoints?.latest();
  if (saved) {
    const { moments, trainer } = trainerFromFiles(saved.files);
    if (trainer.stage !== loop.stage)
      throw new Error(
        `checkpoint at step ${saved.step} belongs to stage '${trainer.stage}', not '${loop.stage}'`,
      );
    model = await modelFromFiles(saved.files);
    state = {
      params: paramTensors(model.config, model.params),
      m: paramTensors(model.config, moments.m),
      v: paramTensors(model.config, moments.v),
      step: saved.step,
    };
    resumedFrom = saved.step;
    log(`${loop.stage}: resuming from the checkpoint at step ${saved.step} of ${totalSteps}`);
  } else {
    state = { params: paramTensors(model.config, model.params), m: {}, v: {}, step: 0 };
  }
  let lastCheckpoint = resumedFrom;
  const current = (): ModelWeights => ({ ...model, params: toMap(state.params) });

  const saveCheckpoint = async () => {
    if (!hooks.checkpoints || lastCheckpoint === state.step) return;
    const bad = nonFiniteParam(toMap(state.params));
    if (bad) throw new NonFiniteError(`parameter ${bad}`, state.step, Number.NaN, lastCheckpoint);
    const position = {
      stage: loop.stage,
      step: state.step,
      totalSteps,
      seed: config.seed,
      batchSize: config.batchSize,
      // The data position follows from the step: batchOrder(seed) reads units step·batchSize onwards.
      unitsSeen: state.step * config.batchSize,
      epoch: Math.floor((state.step * config.batchSize) / loop.trainSize),
    };
    await hooks.checkpoints.save(state.step, {
      ...(await modelFiles(current())),
      ...trainerFiles({ m: toMap(state.m), v: toMap(state.v) }, position),
    });
    lastCheckpoint = state.step;
  };

  const evaluate = async () => {
    const values = await loop.evaluate(current());
    const bad = firstNonFinite(
      Object.fromEntries(Object.entries(values).map(([k, v]) => [k, [v]])),
      state.step,
    );
    if (bad) throw new NonFiniteError(bad.metric, bad.step, bad.value, lastCheckpoint);
    return values;
  };

  // One trainer (session) per fused length K: stepsPerCall, and a shorter one for the tail of the run.
  let trainer: Trainer | null = null;
  let trainerSteps = 0;
  const trainerFor = async (k: number) => {
    if (trainer && trainerSteps === k) return trainer;
    await trainer?.release();
    trainer = null;
    const trainStep = buildTrainStep({
      name: `${loop.stage}_train`,
      params: paramShapes(model.config),
      ...loop.graph,
      optimizer: optimizerOf(config),
      steps: k,
    });
    const hasMoments = Object.keys(state.m).length > 0;
    trainer = await createTrainer(runtime, trainStep, {
      params: state.params,
      ...(hasMoments ? { m: state.m, v: state.v } : {}),
      step: state.step,
    });
    trainerSteps = k;
    return trainer;
  };

  try {
    let evalValues: Record<string, number> | null = null;
    if (resumedFrom === null) {
      evalValues = await evaluate();
      await hooks.onMetrics?.(0, evalValues);
    }
    while (state.step < totalSteps) {
      const signal = hooks.signal;
      if (signal?.aborted) {
        const shutdown = signal.reason === SHUTDOWN;
        if (shutdown) await saveCheckpoint();
        throw new StageAbortedError(signal.reason, state.step, shutdown && lastCheckpoint === state.step);
      }
      const first = state.step;
      const k = Math.min(config.stepsPerCall, totalSteps - first);
      const active = await trainerFor(k);
      const { feeds, tokens } = loop.feeds(Array.from({ length: k }, (_, i) => stepBatches(first + i)));
      const lrs = lrsFor(lrAt, first, k);
      const started = performance.now();
      const report: StepReport = await active.run(feeds, lrs);
      const seconds = (performance.now() - started) / 1000;
      const reported = (name: string) => loop.metricNames?.[name] ?? name;
      const series: Record<string, ArrayLike<number>> = {
        'train/loss': report.loss,
        'train/grad_norm': report.gradNorm,
      };
      for (const [name, values] of Object.entries(report.metrics)) series[reported(name)] = values;
      const bad = firstNonFinite(series, first + 1);
      if (bad) throw new NonFiniteError(bad.metric, bad.step, bad.value, lastCheckpoint);
      state = active.state;
      const badParam = nonFiniteParam(toMap(state.params));
      if (badParam) throw new NonFiniteError(`parameter ${badParam}`, state.step, Number.NaN, lastCheckpoint);

      const crossed = (every: number) => Math.floor(state.step / every) > Math.floor(first / every);
      evalValues = crossed(config.evalEvery) || state.step === totalSteps ? await evaluate() : null;
      for (let i = 0; i < k; i++) {
        const values: Record<string, number> = {
          'train/loss': report.loss[i],
          'train/lr': lrs[i],
          'train/grad_norm': report.gradNorm[i],
          'timing/step': seconds / k,
          'perf/tokens_per_sec': tokens / seconds,
        };
        for (const [name, perStep] of Object.entries(report.metrics)) values[reported(name)] = perStep[i];
        if (i === k - 1 && evalValues) Object.assign(values, evalValues);
        await hooks.onMetrics?.(first + i + 1, values);
      }
      hooks.onProgress?.(state.step, totalSteps);
      if (crossed(config.checkpointEvery) || state.step === totalSteps) await saveCheckpoint();
    }
    evalValues ??= await evaluate();
    return { step: state.step, totalSteps, model: current(), eval: evalValues, resumedFrom };
  } finally {
    // (TS narrows `trainer` to null here: it is assigned inside trainerFor.)
    await (trainer as Trainer | null)?.release();
  }
}
