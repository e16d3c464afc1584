// trainPpo: the PPO stage (Ouyang et al. 2022 §3.5; Ziegler et al. 2019; TRL PPOTrainer). Each iteration:
// 1. rollout: sample responses to a batch of prompts (generation graph), score them (policy, reference, critic,
//    reward model in one graph);
// 2. targets on the host: score − β·KL per token, GAE, whitened advantages;
// 3. update: ppoEpochs × minibatches AdamW steps on policy + critic in one fused graph run;
// 4. β update, metrics, samples, checkpoint.
import {
  type PpoConfig,
  type PpoConfigInput,
  PpoMetrics,
  type PromptRow,
  resolvePpoConfig,
} from '@rlhf/contracts';
import { createTrainer, type Trainer } from '@rlhf/graph';
import { ByteTokenizer, type GptConfig, hashString, leftPad, paramShapes, type Tokenizer } from '@rlhf/model';
import { type RewardNormalisation, rewardNormalisation } from '@rlhf/reward-model';
import { float32, type HostTensor, int64, type Runtime } from '@rlhf/runtime';
import {
  batchOrder,
  firstNonFinite,
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  NonFiniteError,
  nonFiniteParam,
  permutation,
  type SampleRow,
  SHUTDOWN,
  StageAbortedError,
  type StageHooks,
  trainerFiles,
  trainerFromFiles,
} from '@rlhf/stage-kit';
import { maskedMean } from './advantages.js';
import {
  buildPpoTrainStep,
  type ModelRole,
  type PpoModels,
  paramName,
  ROLLOUT_INPUTS,
  TRAIN_METRICS,
} from './graphs.js';
import { createKlController, type KlController, type KlControllerState } from './kl-controller.js';
import { createRolloutEngine, type Rollout, samplerLogprobDiff } from './rollout.js';
import { explainedVariance, type PpoTargets, ppoTargets, sequenceEntropy } from './targets.js';

/** Mean ground-truth score of the sampled responses, when the caller has a programmatic reward (tests, demo). */
export const GROUND_TRUTH_METRIC = PpoMetrics.groundTruth;

export interface TrainPpoOptions {
  /** A full config or any part of one (@rlhf/contracts defaults fill the rest). */
  config: PpoConfig | PpoConfigInput;
  /** The SFT policy: the initial policy and the frozen reference. */
  policy: ModelWeights;
  /** The frozen reward model (config.scalarHead); the critic starts as a copy of it. */
  rewardModel: ModelWeights;
  /**
   * score' = (score − mean) / std on every reward-model score, folded into the critic's initial head too.
   * Default: the one the reward model was saved with (@rlhf/reward-model metadata); null = raw scores.
   */
  rewardNormalisation?: RewardNormalisation | null;
  prompts: readonly PromptRow[];
  runtime: Runtime;
  hooks?: StageHooks;
  /** Programmatic ground truth; only feeds objective/ground_truth (reward hacking shows as scores ↑, it ↓). */
  groundTruth?: (prompt: string, response: string) => number;
  /** Tokenizer of policy and reward model (default ByteTokenizer). */
  tokenizer?: Tokenizer;
}

export interface PpoResult {
  /** Iterations completed. */
  step: number;
  /** The trained policy. */
  model: ModelWeights;
  /** The trained critic (value model). */
  critic: ModelWeights;
  /** Metrics of the last iteration. */
  summary: Record<string, number>;
  /** Every resolved setting: the config, the model configs, the effective caps. */
  hyperparameters: PpoHyperparameters;
}

export interface PpoHyperparameters {
  config: PpoConfig;
  policyModel: GptConfig;
  rewardModel: GptConfig;
  criticModel: GptConfig;
  criticInit: 'reward_model';
  rewardNormalisation: RewardNormalisation | null;
  /** Prompt tokens kept (bos included): maxPromptLen capped by the contexts minus maxNewTokens. */
  effectiveMaxPromptLen: number;
  miniBatchSize: number;
  /** AdamW steps per iteration, all in one session run: ppoEpochs × minibatches. */
  stepsPerIteration: number;
  approxKl: 'k3';
}

/**
 * The critic starts as the reward model (TRL: value model = reward model checkpoint; OpenRLHF the same): it already
 * reads the score off a response, which is the return of its last token. With a normalisation, the head is rescaled
 * so the critic's initial values are on the normalised reward scale: w/std, (b − mean)/std.
 */
export function criticFromRewardModel(
  rewardModel: ModelWeights,
  normalisation?: RewardNormalisation,
): ModelWeights {
  const params = new Map([...rewardModel.params].map(([name, data]) => [name, Float32Array.from(data)]));
  if (normalisation) {
    const { mean, std } = normalisation;
    params.set(
      'score.weight',
      params.get('score.weight')!.map((w) => w / std),
    );
    params.set(
      'score.bias',
      params.get('score.bias')!.map((b) => (b - mean) / std),
    );
  }
  return { config: rewardModel.config, params };
}

/** [bos] + the prompt's last maxLen − 1 tokens (PPO keeps the end of long prompts, where the question is). */
export function promptTokens(tokenizer: Tokenizer, prompt: string, maxLen: number): number[] {
  const ids = tokenizer.encode(prompt);
  return [tokenizer.bosId, ...ids.slice(Math.max(0, ids.length - (maxLen - 1)))];
}

/** What trainer.json holds: enough to continue exactly where the run stopped. */
interface PpoTrainerState {
  stage: 'ppo';
  iteration: number;
  optimizerStep: number;
  /** Prompts consumed so far (iteration × rolloutBatchSize); the order comes from the seed. */
  dataPosition: number;
  seed: number;
  kl: KlControllerState;
}

export async function trainPpo(options: TrainPpoOptions): Promise<PpoResult> {
  const { runtime, hooks = {} } = options;
  const config = resolvePpoConfig(options.config);
  const tokenizer = options.tokenizer ?? new ByteTokenizer();
  const hyper = resolveHyperparameters(options, config, tokenizer);
  const models: PpoModels = {
    policy: options.policy.config,
    critic: options.rewardModel.config,
    rewardModel: options.rewardModel.config,
  };
  const B = config.rolloutBatchSize;
  const K = hyper.stepsPerIteration;
  const prompts = options.prompts.map((row) => ({
    text: row.prompt,
    ids: promptTokens(tokenizer, row.prompt, hyper.effectiveMaxPromptLen),
  }));
  // Prompts of iteration i: a fresh seeded order every epoch, read as one stream (resume needs only i).
  const promptOrder = batchOrder(prompts.length, B, config.seed);

  // Start: SFT policy + critic from the reward model, or the latest checkpoint.
  let policy = options.policy;
  let critic = criticFromRewardModel(options.rewardModel, hyper.rewardNormalisation ?? undefined);
  let moments: { m?: Record<string, HostTensor>; v?: Record<string, HostTensor> } = {};
  let state: PpoTrainerState = {
    stage: 'ppo',
    iteration: 0,
    optimizerStep: 0,
    dataPosition: 0,
    seed: config.seed,
    kl: createKlController(config.kl).state(),
  };
  const resumed = await hooks.checkpoints?.latest();
  if (resumed) {
    policy = await modelFromFiles(resumed.files);
    critic = await modelFromFiles(resumed.files, { prefix: CRITIC_PREFIX });
    const saved = trainerFromFiles(resumed.files);
    state = saved.trainer as unknown as PpoTrainerState;
    if (state.stage !== 'ppo')
      throw new Error(
        `trainPpo: the checkpoint at step ${resumed.step} belongs to stage '${String(state.stage)}'`,
      );
    moments = { m: momentTensors(saved.moments.m, models), v: momentTensors(saved.moments.v, models) };
    hooks.log?.(`ppo: resuming from iteration ${state.iteration}`);
  }
  const kl: KlController = createKlController(config.kl, state.kl);
  let lastCheckpoint: number | null = resumed ? resumed.step : null;

  const trainer: Trainer = await createTrainer(
    runtime,
    buildPpoTrainStep({ models, config, miniBatchSize: hyper.miniBatchSize }),
    {
      params: { ...roleTensors(policy, 'policy'), ...roleTensors(critic, 'critic') },
      ...moments,
      step: state.optimizerStep,
    },
  );
  const engine = await createRolloutEngine(runtime, models, {
    maxNewTokens: config.maxNewTokens,
    temperature: config.temperature,
    topK: config.topK,
    topP: config.topP,
    eosId: tokenizer.eosId,
    padId: tokenizer.padId,
  });
  const current = (role: 'policy' | 'critic', base: ModelWeights): ModelWeights => ({
    config: base.config,
    params: roleParams(trainer, base.config, role),
  });
  const saveCheckpoint = async (iteration: number) => {
    if (!hooks.checkpoints || lastCheckpoint === iteration) return;
    const trainerState: PpoTrainerState = {
      stage: 'ppo',
      iteration,
      optimizerStep: trainer.state.step,
      dataPosition: iteration * B,
      seed: config.seed,
      kl: kl.state(),
    };
    await hooks.checkpoints.save(iteration, {
      ...(await modelFiles(current('policy', policy), { stage: 'ppo' })),
      ...(await modelFiles(current('critic', critic), { stage: 'ppo-critic' }, { prefix: CRITIC_PREFIX })),
      ...trainerFiles(
        { m: flatMoments(trainer.state.m), v: flatMoments(trainer.state.v) },
        trainerState as unknown as Record<string, unknown>,
      ),
    });
    lastCheckpoint = iteration;
  };

  let summary: Record<string, number> = {};
  try {
    for (let it = state.iteration; it < config.iterations; it++) {
      const signal = hooks.signal;
      if (signal?.aborted) {
        const shutdown = signal.reason === SHUTDOWN;
        if (shutdown) await saveCheckpoint(it);
        throw new StageAbortedError(signal.reason, it, shutdown && lastCheckpoint === it);
      }
      const started = performance.now();
      const batch = promptOrder(it).map((i) => prompts[i]);
      const frozen = { ref: options.policy.params, rm: options.rewardModel.params };
      const rollout = await engine.rollout(
        {
          policy: roleParams(trainer, models.policy, 'policy'),
          critic: roleParams(trainer, models.critic, 'critic'),
          ...frozen,
        },
        batch.map((p) => p.ids),
        hashString(`${config.seed}:rollout:${it}`),
      );
      const scores = normalise(rollout.scores, hyper.rewardNormalisation);
      checkFinite(
        {
          'objective/scores': scores,
          'rollout/logprobs': rollout.logprobs,
          'rollout/values': rollout.values,
        },
        it + 1,
        lastCheckpoint,
      );
      const beta = kl.value;
      const targets = ppoTargets(rollout, scores, beta, config);

      const trainStarted = performance.now();
      const report = await trainer.run(
        { rows: minibatchRows(B, hyper.miniBatchSize, config, it) },
        config.lr,
        trainInputs(rollout, targets, tokenizer.padId),
      );
      const trainSeconds = (performance.now() - trainStarted) / 1000;
      const bad = firstNonFinite(
        { 'loss/total': report.loss, 'train/grad_norm': report.gradNorm, ...report.metrics },
        1,
      );
      if (bad)
        throw new NonFiniteError(
          `${bad.metric} (update ${bad.step} of ${K})`,
          it + 1,
          bad.value,
          lastCheckpoint,
        );
      const badParam = nonFiniteParam(flatMoments(trainer.state.params));
      if (badParam) throw new NonFiniteError(`parameter ${badParam}`, it + 1, Number.NaN, lastCheckpoint);
      kl.update(maskedMean(targets.klSums), B);

      const texts = rollout.responses.map((tokens, b) =>
        responseText(tokenizer, tokens, rollout.mask, b, rollout.shape[1]),
      );
      const stepSeconds = (performance.now() - started) / 1000;
      const metrics = iterationMetrics(rollout, targets, report, beta, {
        train: trainSeconds,
        step: stepSeconds,
      });
      if (options.groundTruth) {
        const truth = batch.map((p, b) => options.groundTruth!(p.text, texts[b]));
        metrics[GROUND_TRUTH_METRIC] = truth.reduce((a, x) => a + x, 0) / truth.length;
      }
      summary = metrics;
      const step = it + 1;
      await hooks.onMetrics?.(step, metrics);
      if (step % config.sampleEvery === 0 || step === config.iterations) {
        const rows: SampleRow[] = batch.slice(0, config.sampleCount).map((p, b) => ({
          prompt: p.text,
          response: texts[b],
          score: targets.scores[b],
          kl: targets.klSums[b],
          eos: rollout.finished[b],
        }));
        await hooks.onSamples?.(step, rows);
      }
      if (step % config.checkpointEvery === 0 || step === config.iterations) await saveCheckpoint(step);
      hooks.onProgress?.(step, config.iterations);
      hooks.log?.(
        `ppo ${step}/${config.iterations}: score ${fmt(metrics[PpoMetrics.scores])} kl ${fmt(metrics[PpoMetrics.kl])} β ${fmt(beta)}`,
      );
    }
    return {
      step: config.iterations,
      model: current('policy', policy),
      critic: current('critic', critic),
      summary,
      hyperparameters: hyper,
    };
  } finally {
    await engine.release();
    await trainer.release();
  }
}

const CRITIC_PREFIX = 'critic.';
const fmt = (x: number) => x.toFixed(4);

function resolveHyperparameters(
  options: TrainPpoOptions,
  config: PpoConfig,
  tokenizer: Tokenizer,
): PpoHyperparameters {
  const { policy, rewardModel } = options;
  if (options.prompts.length === 0) throw new Error('trainPpo: no prompts');
  if (!rewardModel.config.scalarHead)
    throw new Error('trainPpo: the reward model needs a scalar head (config.scalarHead)');
  if (policy.config.scalarHead)
    throw new Error('trainPpo: the policy must be a language model without a scalar head');
  for (const [what, c] of [
    ['policy', policy.config],
    ['reward model', rewardModel.config],
  ] as const)
    if (c.vocabSize !== tokenizer.vocabSize)
      throw new Error(
        `trainPpo: the ${what} has vocabSize ${c.vocabSize}, the tokenizer ${tokenizer.vocabSize}`,
      );
  if (config.rolloutBatchSize % config.minibatches !== 0)
    throw new Error(
      `trainPpo: minibatches (${config.minibatches}) must divide rolloutBatchSize (${config.rolloutBatchSize})`,
    );
  const context = Math.min(policy.config.maxPositions, rewardModel.config.maxPositions);
  const effectiveMaxPromptLen = Math.min(config.maxPromptLen, context - config.maxNewTokens);
  if (effectiveMaxPromptLen < 1)
    throw new Error(
      `trainPpo: maxNewTokens ${config.maxNewTokens} leaves no room for a prompt in a context of ${context}`,
    );
  const norm =
    options.rewardNormalisation === undefined
      ? rewardNormalisation(rewardModel)
      : options.rewardNormalisation;
  if (norm && !(Number.isFinite(norm.mean) && norm.std > 0))
    throw new Error(
      `trainPpo: reward normalisation needs a finite mean and std > 0, got ${JSON.stringify(norm)}`,
    );
  return {
    config,
    policyModel: policy.config,
    rewardModel: rewardModel.config,
    criticModel: rewardModel.config,
    criticInit: 'reward_model',
    rewardNormalisation: norm ?? null,
    effectiveMaxPromptLen,
    miniBatchSize: config.rolloutBatchSize / config.minibatches,
    stepsPerIteration: config.ppoEpochs * config.minibatches,
    approxKl: 'k3',
  };
}

/** int64 [K, 1, miniBatchSize]: each PPO epoch visits every rollout row once, in a fresh seeded order. */
function minibatchRows(B: number, miniBatchSize: number, config: PpoConfig, it: number): HostTensor {
  const rows: number[] = [];
  for (let epoch = 0; epoch < config.ppoEpochs; epoch++)
    rows.push(...permutation(B, config.seed, `minibatches-${it}-${epoch}`));
  return int64([config.ppoEpochs * config.minibatches, 1, miniBatchSize], rows);
}

/** The rollout tensors the training graph gathers its minibatches from. */
export function trainInputs(
  rollout: Rollout,
  targets: PpoTargets,
  padId: number,
): Record<string, HostTensor> {
  const [B, N] = rollout.shape;
  const prompt = leftPad(rollout.prompts, padId);
  const R = ROLLOUT_INPUTS;
  return {
    [R.promptIds]: prompt.ids,
    [R.promptMask]: prompt.mask,
    [R.responseIds]: int64([B, N], rollout.responses.flat()),
    [R.responseMask]: int64([B, N], rollout.mask),
    [R.oldLogprobs]: float32([B, N], rollout.logprobs),
    [R.oldValues]: float32([B, N], rollout.values),
    [R.advantages]: float32([B, N], targets.advantages),
    [R.returns]: float32([B, N], targets.returns),
  };
}

/**
 * The iteration's metrics (names from @rlhf/contracts PpoMetrics, as TRL logs them). Rollout statistics are means
 * over the batch's responses; policy/*, val/* and loss/* are means over the K fused updates. policy/approxkl uses the
 * k3 estimator; rollout/sampler_logprob_diff is the max |sampler − scoring| log-prob over response tokens;
 * timing/* are seconds; perf/tokens_per_sec = generated response tokens per second of the whole iteration.
 */
function iterationMetrics(
  rollout: Rollout,
  targets: PpoTargets,
  report: { loss: number[]; gradNorm: number[]; metrics: Record<string, number[]> },
  beta: number,
  seconds: { train: number; step: number },
): Record<string, number> {
  const [B] = rollout.shape;
  const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, x) => a + x, 0) / xs.length;
  const train = (name: string) => mean(report.metrics[name]);
  const M = PpoMetrics;
  const T = TRAIN_METRICS;
  const scores = mean(targets.scores);
  const nonScore = mean(targets.nonScoreRewards);
  const tokens = rollout.mask.reduce((a, x) => a + x, 0);
  return {
    [M.kl]: mean(targets.klSums),
    [M.entropy]: sequenceEntropy(rollout.logprobs, rollout.mask, B),
    [M.nonScoreReward]: nonScore,
    [M.rlhfReward]: scores + nonScore,
    [M.scores]: scores,
    [M.approxKl]: train(T.approxKl),
    [M.clipFrac]: train(T.clipFrac),
    [M.policyEntropy]: train(T.entropy),
    [M.policyLoss]: train(T.policyLoss),
    [M.valueLoss]: train(T.valueLoss),
    [M.valLoss]: train(T.valueLoss),
    [M.valClipFrac]: train(T.valueClipFrac),
    [M.explainedVar]: explainedVariance(rollout.values, targets.returns, rollout.mask),
    [M.responseLenMean]: tokens / B,
    [M.eosRate]: rollout.finished.filter(Boolean).length / B,
    [M.samplerLogprobDiff]: samplerLogprobDiff(rollout),
    [M.klCoef]: beta,
    [M.timeGenerate]: rollout.timing.generate,
    [M.timeScore]: rollout.timing.score,
    [M.timeTrain]: seconds.train,
    [M.timeStep]: seconds.step,
    [M.tokensPerSec]: tokens / seconds.step,
    'train/grad_norm': mean(report.gradNorm),
  };
}

/** The response as text: tokens under the mask, specials (EOS) left out. */
function responseText(
  tokenizer: Tokenizer,
  tokens: number[],
  mask: Uint8Array,
  row: number,
  width: number,
): string {
  return tokenizer.decode(
    tokens.filter((_, t) => mask[row * width + t]),
    { skipSpecialTokens: true },
  );
}

function normalise(scores: Float32Array, norm: RewardNormalisation | null): Float32Array {
  return norm ? scores.map((s) => (s - norm.mean) / norm.std) : scores;
}

function checkFinite(
  series: Record<string, Float32Array>,
  iteration: number,
  lastCheckpoint: number | null,
): void {
  for (const [metric, values] of Object.entries(series)) {
    const bad = values.find((x) => !Number.isFinite(x));
    if (bad !== undefined) throw new NonFiniteError(metric, iteration, bad, lastCheckpoint);
  }
}

/** A model's parameters as the train step's host tensors, named `${role}.${name}`. */
function roleTensors(model: ModelWeights, role: 'policy' | 'critic'): Record<string, HostTensor> {
  return Object.fromEntries(
    paramShapes(model.config).map(({ name, shape }) => {
      const data = model.params.get(name);
      if (!data) throw new Error(`trainPpo: the ${role} has no parameter '${name}'`);
      return [paramName(role, name), float32(shape, data)];
    }),
  );
}

/** One role's current parameters out of the trainer state (views, no copies). */
function roleParams(trainer: Trainer, config: GptConfig, role: ModelRole): Map<string, Float32Array> {
  return new Map(
    paramShapes(config).map(({ name }) => [
      name,
      trainer.state.params[paramName(role, name)].data as Float32Array,
    ]),
  );
}

function flatMoments(tensors: Record<string, HostTensor>): Map<string, Float32Array> {
  return new Map(Object.entries(tensors).map(([name, t]) => [name, t.data as Float32Array]));
}

function momentTensors(flat: Map<string, Float32Array>, models: PpoModels): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [role, config] of [
    ['policy', models.policy],
    ['critic', models.critic],
  ] as const)
    for (const { name, shape } of paramShapes(config)) {
      const key = paramName(role, name);
      const data = flat.get(key);
      if (!data) throw new Error(`trainPpo: the checkpoint's optimizer state has no '${key}'`);
      out[key] = float32(shape, data);
    }
  return out;
}
