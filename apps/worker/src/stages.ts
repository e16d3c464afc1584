// The real stage runners: a job becomes a call of the stage library (packages/sft, reward-model, ppo) with
// hooks wired to the worker's context (checkpoints in the artifact store, events on the Redis stream).
import type { DatasetKind, DatasetRows, StageJobData, StageJobResult } from '@rlhf/contracts';
import { formatJsonlError, validateJsonl } from '@rlhf/contracts';
import { groundTruthScore, parsePrompt } from '@rlhf/examples';
import { exportPolicyOnnx, exportRewardOnnx, initParams, presetConfig } from '@rlhf/model';
import { trainPpo } from '@rlhf/ppo';
import {
  type CheckpointFiles as ContextFiles,
  HYPERPARAMETERS_FILE,
  type StageContext,
  type StageRunners,
} from '@rlhf/queue';
import { trainRewardModel } from '@rlhf/reward-model';
import { trainSft } from '@rlhf/sft';
import {
  type CheckpointFiles,
  type CheckpointStore,
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  type StageHooks,
  type StageResult,
} from '@rlhf/stage-kit';

/** A stage-kit checkpoint store on the worker's context: resumes from ctx.resume, saves through ctx. */
export function contextCheckpointStore(ctx: StageContext): CheckpointStore {
  let newest = ctx.resume;
  return {
    async save(step, files) {
      newest = await ctx.saveCheckpoint(step, files);
    },
    async latest() {
      if (!newest) return null;
      const files: CheckpointFiles = {};
      for (const name of Object.keys(newest.files)) files[name] = await ctx.readCheckpointFile(newest, name);
      return { step: newest.step, files };
    },
  };
}

/** Trainer hooks that report through the worker: metrics, samples and progress become stream events. */
export function contextHooks(ctx: StageContext): StageHooks {
  return {
    signal: ctx.signal,
    checkpoints: contextCheckpointStore(ctx),
    onMetrics: (step, values) => ctx.report.metrics(step, values),
    onSamples: (step, rows) => ctx.report.samples(step, rows),
    // Progress is advisory: a failed report (e.g. a lost lock) is logged, never an unhandled rejection.
    onProgress: (step, total) =>
      void ctx.report
        .progress(step, total)
        .catch((err: unknown) => ctx.logger.warn({ err }, 'progress report failed')),
    log: (message) => ctx.logger.info(message),
  };
}

/** The dataset's rows, validated again (the artifact store is shared: trust nothing read from it). */
export async function loadRows<K extends DatasetKind>(ctx: StageContext, key: string, kind: K) {
  const result = await validateJsonl(kind, await ctx.artifacts.getText(key));
  if (!result.ok) throw new Error(`dataset ${key}: ${result.errors.map(formatJsonlError).join('; ')}`);
  return result.rows as DatasetRows[K][];
}

/** A model saved under `dir` (config.json + model.safetensors) in the artifact store. */
export async function loadModel(ctx: StageContext, dir: string): Promise<ModelWeights> {
  const files: CheckpointFiles = {};
  for (const name of ['config.json', 'model.safetensors'])
    files[name] = await ctx.artifacts.get(`${dir}/${name}`);
  return modelFromFiles(files);
}

/** The model a stage starts from: an earlier stage's final model, or fresh preset weights. */
async function startingModel(job: StageJobData, ctx: StageContext, seed: number): Promise<ModelWeights> {
  if (job.inputs.policy) return loadModel(ctx, job.inputs.policy);
  const config = presetConfig(job.modelPreset);
  return { config, params: initParams(config, seed) };
}

/** Saves the final model (weights, standalone ONNX, what the stage resolved and measured); returns the result. */
async function finish(
  job: StageJobData,
  ctx: StageContext,
  result: Pick<StageResult, 'step' | 'model' | 'summary'> & { hyperparameters: object },
  onnx: { name: string; bytes: Uint8Array },
  extra: ContextFiles = {},
): Promise<StageJobResult> {
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  await ctx.report.metrics(result.step, result.summary);
  const modelKey = await ctx.saveFinal({
    ...(await modelFiles(result.model, { runId: job.runId, stageId: job.stageId, kind: job.kind })),
    [onnx.name]: onnx.bytes,
    [HYPERPARAMETERS_FILE]: json(result.hyperparameters),
    'summary.json': json(result.summary),
    ...extra,
  });
  return { stageId: job.stageId, kind: job.kind, modelKey, step: result.step };
}

function isSortDigitsPrompt(prompt: string): boolean {
  try {
    parsePrompt(prompt);
    return true;
  } catch {
    return false;
  }
}

export const stageRunners: StageRunners = {
  async sft(job, ctx) {
    if (job.kind !== 'sft') throw new Error(`sft runner got a ${job.kind} job`);
    const result = await trainSft({
      config: job.config,
      model: await startingModel(job, ctx, job.config.seed),
      rows: await loadRows(ctx, job.dataset.key, 'sft'),
      runtime: ctx.runtime,
      hooks: contextHooks(ctx),
    });
    return finish(job, ctx, result, {
      name: 'policy.onnx',
      bytes: exportPolicyOnnx(result.model.config, result.model.params),
    });
  },

  async reward_model(job, ctx) {
    if (job.kind !== 'reward_model') throw new Error(`reward_model runner got a ${job.kind} job`);
    const result = await trainRewardModel({
      config: job.config,
      model: await startingModel(job, ctx, job.config.seed),
      rows: await loadRows(ctx, job.dataset.key, job.dataset.kind),
      runtime: ctx.runtime,
      hooks: contextHooks(ctx),
    });
    return finish(job, ctx, result, {
      name: 'reward.onnx',
      bytes: exportRewardOnnx(result.model.config, result.model.params),
    });
  },

  async ppo(job, ctx) {
    if (job.kind !== 'ppo') throw new Error(`ppo runner got a ${job.kind} job`);
    const { policy, rewardModel } = job.inputs;
    if (!policy || !rewardModel)
      throw new Error('ppo needs the SFT policy and the reward model of earlier stages');
    const prompts = await loadRows(ctx, job.dataset.key, 'prompt');
    const result = await trainPpo({
      config: job.config,
      policy: await loadModel(ctx, policy),
      rewardModel: await loadModel(ctx, rewardModel),
      prompts,
      runtime: ctx.runtime,
      hooks: contextHooks(ctx),
      // The shipped synthetic task has a programmatic reward: log it as objective/ground_truth when these are its prompts.
      groundTruth: prompts.every((row) => isSortDigitsPrompt(row.prompt)) ? groundTruthScore : undefined,
    });
    return finish(
      job,
      ctx,
      result,
      { name: 'policy.onnx', bytes: exportPolicyOnnx(result.model.config, result.model.params) },
      await modelFiles(result.critic, {}, { prefix: 'value.' }),
    );
  },
};
