// The real stage runners: a job becomes a call of the stage library (packages/sft, reward-model, ppo) with the
// worker's stage hooks (checkpoints in the artifact store, events on the Redis stream).
import type { CheckpointFiles } from '@rlhf/artifacts';
import type { DatasetKind, DatasetRows, StageJobData, StageJobResult } from '@rlhf/contracts';
import { formatJsonlError, validateJsonl } from '@rlhf/contracts';
import {
  exportPolicyOnnx,
  exportRewardOnnx,
  type GptConfig,
  hfModelFiles,
  initParams,
  presetConfig,
  type Tokenizer,
} from '@rlhf/model';
import { UnrecoverableError } from 'bullmq';
import { trainDpo, trainPro } from '@rlhf/dpo';
import { trainGrpo } from '@rlhf/grpo';
import { CRITIC_PREFIX, trainPpo } from '@rlhf/ppo';
import { trainRaft } from '@rlhf/raft';
import { HYPERPARAMETERS_FILE } from '@rlhf/queue';
import { trainRewardModel } from '@rlhf/reward-model';
import { trainSft } from '@rlhf/sft';
import { type ModelWeights, modelFiles, type StageResult } from '@rlhf/stage-kit';
import type { StageContext, StageRunners } from './context.js';
import { withCheckpointEvals } from './checkpoint-eval.js';
import { evalStage } from './eval-stage.js';
import { adapterAt, loadModelAt, modelConfigAt, tokenizerAt } from './model-files.js';
import { groundTruthOf } from './tasks.js';

/** The dataset's rows, validated again (the artifact store is shared: trust nothing read from it). */
export async function loadRows<K extends DatasetKind>(ctx: StageContext, key: string, kind: K) {
  const result = await validateJsonl(kind, await ctx.artifacts.getText(key));
  if (!result.ok) throw new Error(`dataset ${key}: ${result.errors.map(formatJsonlError).join('; ')}`);
  return result.rows as DatasetRows[K][];
}

/** A model saved under `dir` (config.json + model.safetensors) in the artifact store. */
export const loadModel = (ctx: StageContext, dir: string): Promise<ModelWeights> =>
  loadModelAt(ctx.artifacts, dir);

/** The model a stage starts from: an earlier stage's final model, or fresh weights of the run's architecture. */
async function startingModel(job: StageJobData, ctx: StageContext, seed: number): Promise<ModelWeights> {
  if (job.inputs.policy) return loadModel(ctx, job.inputs.policy);
  let config: GptConfig;
  if (job.modelPreset) config = presetConfig(job.modelPreset);
  else if (job.baseModel) config = await modelConfigAt(ctx.artifacts, job.baseModel);
  else throw new UnrecoverableError('the job names neither a model preset nor a registered model');
  return { config, params: initParams(config, seed) };
}

/** What a LoRA adapter records as its base (base_model_name_or_path): the stage's input model. */
const baseModelOf = (job: StageJobData): string =>
  job.inputs.policy ?? job.baseModel ?? job.modelPreset ?? 'unknown';

/** The run's tokenizer: its registered model's tokenizer.json, else the byte tokenizer of the presets. */
export const tokenizerOf = (job: StageJobData, ctx: StageContext): Promise<Tokenizer> =>
  tokenizerAt(ctx.artifacts, job.baseModel);

/** Saves the final model (weights, standalone ONNX, what the stage resolved and measured); returns the result. */
async function finish(
  job: StageJobData,
  ctx: StageContext,
  result: Pick<StageResult, 'step' | 'model' | 'summary' | 'last' | 'adapter'> & { hyperparameters: object },
  onnx: { name: string; bytes: Uint8Array },
  extra: CheckpointFiles = {},
): Promise<StageJobResult> {
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  await ctx.hooks.onMetrics?.(result.step, result.summary);
  const metadata = { runId: job.runId, stageId: job.stageId, kind: job.kind };
  const tokenizer = await tokenizerOf(job, ctx);
  // The same model as a Hugging Face directory (hf/: config, generation config, weights, tokenizer files).
  const hf = hfModelFiles(
    { ...result.model, metadata: { ...result.model.metadata, ...metadata } },
    {
      tokenizer,
      ...(job.kind === 'ppo'
        ? {
            generation: {
              maxNewTokens: job.config.maxNewTokens,
              temperature: job.config.temperature,
              topK: job.config.topK,
              topP: job.config.topP,
            },
          }
        : {}),
    },
  );
  const modelKey = await ctx.saveFinal({
    ...(await modelFiles(result.model, metadata)),
    ...Object.fromEntries(
      Object.entries(hf)
        .filter(([name]) => name !== 'README.md')
        .map(([name, bytes]) => [`hf/${name}`, bytes]),
    ),
    // A model's own tokenizer also beside its weights, where loaders of this directory (/generate) look.
    ...(tokenizer.hfFiles
      ? Object.fromEntries(
          ['tokenizer.json', 'tokenizer_config.json'].flatMap((name) => (hf[name] ? [[name, hf[name]]] : [])),
        )
      : {}),
    // keepBest: the stage's output is the best evaluation's weights; the last ones stay beside them.
    ...(result.last
      ? Object.fromEntries(
          Object.entries(await modelFiles(result.last, metadata)).map(([name, bytes]) => [
            `last/${name}`,
            bytes,
          ]),
        )
      : {}),
    [onnx.name]: onnx.bytes,
    // A LoRA stage's output is the merged model (what later stages load) and, beside it, the PEFT adapter.
    ...Object.fromEntries(
      Object.entries(result.adapter?.files ?? {}).map(([name, bytes]) => [`adapter/${name}`, bytes]),
    ),
    [HYPERPARAMETERS_FILE]: json(result.hyperparameters),
    'summary.json': json(result.summary),
    ...extra,
  });
  return { stageId: job.stageId, kind: job.kind, modelKey, step: result.step };
}

/** DPO and PRO/RRHF: a policy trained on rankings, from the policy of an earlier stage. */
async function rankingStage(job: StageJobData, ctx: StageContext): Promise<StageJobResult> {
  if (job.kind !== 'dpo' && job.kind !== 'pro') throw new Error(`ranking runner got a ${job.kind} job`);
  if (!job.inputs.policy) throw new Error(`${job.kind} needs the policy of an earlier stage to start from`);
  const input = {
    model: await loadModel(ctx, job.inputs.policy),
    rows: await loadRows(ctx, job.dataset.key, job.dataset.kind),
    runtime: ctx.runtime,
    hooks: ctx.hooks,
    tokenizer: await tokenizerOf(job, ctx),
    baseModel: baseModelOf(job),
  };
  const result =
    job.kind === 'dpo'
      ? await trainDpo({ ...input, config: job.config })
      : await trainPro({ ...input, config: job.config });
  return finish(job, ctx, result, {
    name: 'policy.onnx',
    bytes: exportPolicyOnnx(result.model.config, result.model.params),
  });
}

/** The stage trainers this worker runs, by stage kind (a job of a kind missing here fails with a clear error). */
export const runners: StageRunners = withCheckpointEvals({
  async sft(job, ctx) {
    if (job.kind !== 'sft') throw new Error(`sft runner got a ${job.kind} job`);
    const model = await startingModel(job, ctx, job.config.seed);
    // A LoRA SFT stage on a registered model that carries a PEFT adapter continues that adapter.
    const fromRegistered = job.config.lora && job.baseModel && job.inputs.policy === job.baseModel;
    const adapter = fromRegistered
      ? await adapterAt(ctx.artifacts, job.baseModel as string, model.config)
      : undefined;
    const result = await trainSft({
      config: job.config,
      model,
      ...(adapter ? { adapter } : {}),
      rows: await loadRows(ctx, job.dataset.key, 'sft'),
      runtime: ctx.runtime,
      hooks: ctx.hooks,
      tokenizer: await tokenizerOf(job, ctx),
      baseModel: baseModelOf(job),
    });
    // Prompt tuning: the model is the base unchanged, the PEFT PROMPT_TUNING files go beside it as a LoRA adapter's.
    const promptFiles = Object.fromEntries(
      Object.entries(result.promptAdapter?.files ?? {}).map(([name, bytes]) => [`adapter/${name}`, bytes]),
    );
    return finish(
      job,
      ctx,
      result,
      { name: 'policy.onnx', bytes: exportPolicyOnnx(result.model.config, result.model.params) },
      promptFiles,
    );
  },

  async reward_model(job, ctx) {
    if (job.kind !== 'reward_model') throw new Error(`reward_model runner got a ${job.kind} job`);
    const result = await trainRewardModel({
      config: job.config,
      model: await startingModel(job, ctx, job.config.seed),
      rows: await loadRows(ctx, job.dataset.key, job.dataset.kind),
      runtime: ctx.runtime,
      hooks: ctx.hooks,
      tokenizer: await tokenizerOf(job, ctx),
      baseModel: baseModelOf(job),
    });
    return finish(job, ctx, result, {
      name: 'reward.onnx',
      bytes: exportRewardOnnx(result.model.config, result.model.params),
    });
  },

  dpo: rankingStage,
  pro: rankingStage,

  async raft(job, ctx) {
    if (job.kind !== 'raft') throw new Error(`raft runner got a ${job.kind} job`);
    const { policy, rewardModel } = job.inputs;
    if (!policy || !rewardModel)
      throw new Error('raft needs a policy and the reward model of earlier stages');
    const result = await trainRaft({
      config: job.config,
      policy: await loadModel(ctx, policy),
      rewardModel: await loadModel(ctx, rewardModel),
      prompts: await loadRows(ctx, job.dataset.key, 'prompt'),
      runtime: ctx.runtime,
      hooks: ctx.hooks,
      tokenizer: await tokenizerOf(job, ctx),
      groundTruth: groundTruthOf(ctx.tasks, job.config.groundTruth),
      baseModel: baseModelOf(job),
    });
    return finish(job, ctx, result, {
      name: 'policy.onnx',
      bytes: exportPolicyOnnx(result.model.config, result.model.params),
    });
  },

  async grpo(job, ctx) {
    if (job.kind !== 'grpo') throw new Error(`grpo runner got a ${job.kind} job`);
    const { policy, rewardModel } = job.inputs;
    if (!policy) throw new Error('grpo needs a policy of an earlier stage');
    const { reward } = job.config;
    if (reward === 'reward_model' && !rewardModel)
      throw new Error("grpo reward 'reward_model' needs the reward model of an earlier stage");
    // A declared grader gets the run's reward model too (its reward_model graders score with it).
    const result = await trainGrpo({
      config: job.config,
      policy: await loadModel(ctx, policy),
      ...(rewardModel && typeof reward !== 'string'
        ? { rewardModel: await loadModel(ctx, rewardModel) }
        : {}),
      ...(reward === 'reward_model' ? { rewardModel: await loadModel(ctx, rewardModel!) } : {}),
      ...(typeof reward === 'string' && reward !== 'reward_model'
        ? { task: groundTruthOf(ctx.tasks, reward) }
        : {}),
      prompts: await loadRows(ctx, job.dataset.key, 'prompt'),
      runtime: ctx.runtime,
      hooks: ctx.hooks,
      tokenizer: await tokenizerOf(job, ctx),
      baseModel: baseModelOf(job),
    });
    return finish(job, ctx, result, {
      name: 'policy.onnx',
      bytes: exportPolicyOnnx(result.model.config, result.model.params),
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
      hooks: ctx.hooks,
      tokenizer: await tokenizerOf(job, ctx),
      groundTruth: groundTruthOf(ctx.tasks, job.config.groundTruth),
      baseModel: baseModelOf(job),
    });
    return finish(
      job,
      ctx,
      result,
      { name: 'policy.onnx', bytes: exportPolicyOnnx(result.model.config, result.model.params) },
      await modelFiles(result.critic, {}, { prefix: CRITIC_PREFIX }),
    );
  },

  eval: evalStage,
});
