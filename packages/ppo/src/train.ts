// trainPpo: the PPO stage (Ouyang et al. 2022 §3.5; Ziegler et al. 2019; TRL PPOTrainer). Each iteration:
// 1. rollout: sample responses to a batch of prompts (generation graph), score them (policy, reference, critic,
//    reward model in one graph);
// 2. targets on the host: score − β·KL per token, GAE, whitened advantages;
// 3. update: ppoEpochs × minibatches AdamW steps on policy + critic in one fused graph run;
// 4. β update, metrics, samples, checkpoint.
// With config.lora the policy and critic are adapters on the frozen SFT and reward-model weights (lora.ts).
import { type GraderSpec, PpoMetrics, resolvePpoConfig, rewardPartMetric } from '@rlhf/contracts';
import { createGrader } from '@rlhf/graders';
import type { Trainer } from '@rlhf/graph';
import { ByteTokenizer, hashString, savedModuleParams } from '@rlhf/model';
import {
  batchOrder,
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  optimizerFiles,
  optimizerFromFiles,
  framingOf,
  framedPromptText,
  promptTokens,
  runStage,
  throwIfInterrupted,
  createBudgetedTrainer,
  type SampleRow,
} from '@rlhf/stage-kit';
import { arrayMaskedMean } from './advantages.js';
import { buildPpoTrainStep, type PpoModels, trainedShapes } from './graphs.js';
import {
  checkFinite,
  iterationMetrics,
  minibatchRows,
  normalise,
  ofRole,
  responseText,
  trainInputs,
  withRole,
} from './iteration.js';
import { createKlController, type KlController, type KlControllerState } from './kl-controller.js';
import { loraFiles, loraHyperparameters, loraResult, loraSharedFeeds, loraStart, ppoLora } from './lora.js';
import { createRolloutEngine } from './rollout.js';
import {
  criticFromRewardModel,
  type PpoResult,
  resolveHyperparameters,
  type TrainPpoOptions,
} from './setup.js';
import { ppoTargets } from './targets.js';

/** Mean ground-truth score of the sampled responses, when the caller has a programmatic reward (tests, demo). */
export const GROUND_TRUTH_METRIC = PpoMetrics.groundTruth;

/** What trainer.json holds besides stage and step (= iterations done): enough to continue exactly there. */
interface PpoTrainerState {
  optimizerStep: number;
  /** Prompts consumed so far (iteration × rolloutBatchSize); the order comes from the seed. */
  dataPosition: number;
  seed: number;
  kl: KlControllerState;
}

/** Checkpoint files of the critic carry this prefix (the policy's have none); the final model's too. */
export const CRITIC_PREFIX = 'critic.';

export async function trainPpo(options: TrainPpoOptions): Promise<PpoResult> {
  const { runtime } = options;
  const config = resolvePpoConfig(options.config);
  const tokenizer = options.tokenizer ?? new ByteTokenizer();
  const models: PpoModels = {
    policy: options.policy.config,
    critic: options.rewardModel.config,
    rewardModel: options.rewardModel.config,
  };
  const lora = ppoLora(config, models);
  const hyper = {
    ...resolveHyperparameters(options, config, tokenizer),
    ...(lora && { lora: loraHyperparameters(models, lora) }),
  };
  const baseModel = options.baseModel ?? null;
  const B = config.rolloutBatchSize;
  const K = hyper.stepsPerIteration;
  // A declared grader adds its score to the reward model's (Issue: PPO with graders); its RM is the base score.
  const grader = config.grader
    ? createGrader(config.grader as unknown as GraderSpec, {
        countTokens: (text: string) => tokenizer.encode(text).length,
      })
    : undefined;
  // `messages` prompts in the model's own chat template when it has one (config.framing).
  const framing = framingOf(tokenizer, config.framing, 'config.framing');
  const prompts = options.prompts.map((row) => ({
    row,
    text: framedPromptText(row, framing),
    ids: promptTokens(tokenizer, row, hyper.effectiveMaxPromptLen, framing),
  }));
  // Prompts of iteration i: a fresh seeded order every epoch, read as one stream (resume needs only i).
  const promptOrder = batchOrder(prompts.length, B, config.seed);
  const frozen = { ref: options.policy.params, rm: options.rewardModel.params };
  const loraShared = lora ? loraSharedFeeds(models, lora, frozen) : {};

  const run = await runStage({
    stage: 'ppo',
    totalSteps: config.iterations,
    checkpointEvery: config.checkpointEvery,
    hooks: options.hooks,
    async start(resume) {
      // SFT policy + critic from the reward model, or the latest checkpoint.
      const saved = resume?.state as PpoTrainerState | undefined;
      let policy: ModelWeights;
      let critic: ModelWeights;
      if (lora) {
        // The critic's adapter starts with the critic's head; its trunk is the reward model's (B = 0).
        const head = criticFromRewardModel(
          {
            config: models.critic,
            params: new Map(
              savedModuleParams(models.critic, lora.critic).map((p) => [p.name, frozen.rm.get(p.name)!]),
            ),
          },
          hyper.rewardNormalisation ?? undefined,
        );
        const adapters = loraStart(
          models,
          lora,
          { policy: options.policy, critic: head },
          config.seed,
          resume?.files,
          CRITIC_PREFIX,
        );
        policy = { config: models.policy, params: adapters.policy };
        critic = { config: models.critic, params: adapters.critic };
      } else {
        policy = resume ? await modelFromFiles(resume.files) : options.policy;
        critic = resume
          ? await modelFromFiles(resume.files, { prefix: CRITIC_PREFIX })
          : criticFromRewardModel(options.rewardModel, hyper.rewardNormalisation ?? undefined);
      }
      const kl: KlController = createKlController(config.kl, saved?.kl);
      // The update's K steps as budget-sized calls, the abort signal checked between them.
      const trainer: Trainer = await createBudgetedTrainer(
        runtime,
        {
          params: new Map([...withRole(policy.params, 'policy'), ...withRole(critic.params, 'critic')]),
          ...(resume ? optimizerFromFiles(resume.files) : {}),
          step: saved?.optimizerStep ?? 0,
        },
        {
          steps: K,
          build: (steps) =>
            buildPpoTrainStep({ models, config, miniBatchSize: hyper.miniBatchSize, lora, steps }),
          signal: options.hooks?.signal,
          log: (message) => options.hooks?.log?.(`ppo: ${message}`),
        },
      );
      const interrupted = (clean: boolean) => throwIfInterrupted(options.hooks?.signal, clean);
      const engine = await createRolloutEngine(
        runtime,
        models,
        {
          maxNewTokens: config.maxNewTokens,
          temperature: config.temperature,
          topK: config.topK,
          topP: config.topP,
          eosId: tokenizer.eosId,
          padId: tokenizer.padId,
          signal: options.hooks?.signal,
          log: (message) => options.hooks?.log?.(`ppo: ${message}`),
        },
        lora,
      ).catch(async (error: unknown) => {
        await trainer.release();
        throw error;
      });
      const current = (role: 'policy' | 'critic', base: ModelWeights): ModelWeights => ({
        config: base.config,
        params: ofRole(trainer.state.params, base.config, role, trainedShapes(models, role, lora)),
      });
      let summary: Record<string, number> = {};

      return {
        async step(it) {
          const started = performance.now();
          const batch = promptOrder(it).map((i) => prompts[i]);
          const rollout = await engine.rollout(
            { policy: current('policy', policy).params, critic: current('critic', critic).params, ...frozen },
            batch.map((p) => p.ids),
            hashString(`${config.seed}:rollout:${it}`),
          );
          interrupted(true);
          const texts = rollout.responses.map((tokens, b) =>
            responseText(tokenizer, tokens, rollout.mask, b, rollout.shape[1]),
          );
          const modelScores = normalise(rollout.scores, hyper.rewardNormalisation);
          const graded = grader
            ? await grader(
                batch.map((p) => p.row),
                texts,
              )
            : undefined;
          const scores = graded
            ? modelScores.map((s, b) => config.rewardModelWeight * s + graded.scores[b])
            : modelScores;
          const rolled = { 'objective/scores': scores, 'rollout/logprobs': rollout.logprobs };
          checkFinite({ ...rolled, 'rollout/values': rollout.values }, it + 1);
          const beta = kl.value;
          const targets = ppoTargets(rollout, scores, beta, config);

          interrupted(true);
          const trainStarted = performance.now();
          const report = await trainer.run(
            { rows: minibatchRows(B, hyper.miniBatchSize, config, it) },
            config.lr,
            { ...trainInputs(rollout, targets, tokenizer.padId), ...loraShared },
          );
          const trainSeconds = (performance.now() - trainStarted) / 1000;
          // K fused updates make one iteration: a bad value in any of them is the iteration's.
          checkFinite(
            { 'loss/total': report.loss, 'train/grad_norm': report.gradNorm, ...report.metrics },
            it + 1,
          );
          kl.update(arrayMaskedMean(targets.klSums), B);

          const metrics = iterationMetrics(rollout, targets, report, beta, {
            train: trainSeconds,
            step: (performance.now() - started) / 1000,
          });
          for (const [part, values] of Object.entries(graded?.parts ?? {}))
            metrics[rewardPartMetric(part)] = values.reduce((a, x) => a + x, 0) / values.length;
          if (options.groundTruth) {
            const truth = batch.map((p, b) => options.groundTruth!(p.text, texts[b]));
            metrics[GROUND_TRUTH_METRIC] = truth.reduce((a, x) => a + x, 0) / truth.length;
          }
          summary = metrics;
          const step = it + 1;
          options.hooks?.log?.(
            `ppo ${step}/${config.iterations}: score ${fmt(metrics[PpoMetrics.scores])} kl ${fmt(metrics[PpoMetrics.kl])} β ${fmt(beta)}`,
          );
          const sampled = step % config.sampleEvery === 0 || step === config.iterations;
          const samples: SampleRow[] = batch.slice(0, config.sampleCount).map((p, b) => ({
            prompt: p.text,
            response: texts[b],
            score: targets.scores[b],
            kl: targets.klSums[b],
            eos: rollout.finished[b],
            ...(graded
              ? { parts: Object.fromEntries(Object.entries(graded.parts).map(([part, v]) => [part, v[b]])) }
              : {}),
          }));
          return { steps: 1, metrics: [metrics], ...(sampled ? { samples } : {}) };
        },
        weights: () => trainer.state.params,
        async checkpoint() {
          const adapters = {
            policy: current('policy', policy).params,
            critic: current('critic', critic).params,
          };
          const files = {
            ...(lora
              ? loraFiles(models, lora, adapters, CRITIC_PREFIX, baseModel)
              : {
                  ...(await modelFiles(current('policy', policy), { stage: 'ppo' })),
                  ...(await modelFiles(
                    current('critic', critic),
                    { stage: 'ppo-critic' },
                    { prefix: CRITIC_PREFIX },
                  )),
                }),
            ...optimizerFiles(trainer.state),
          };
          const iteration = trainer.state.step / K;
          const state: PpoTrainerState = {
            optimizerStep: trainer.state.step,
            dataPosition: iteration * B,
            seed: config.seed,
            kl: kl.state(),
          };
          return { files, state: { ...state } };
        },
        finish: async () => ({
          ...(lora
            ? loraResult(
                models,
                lora,
                { policy: current('policy', policy).params, critic: current('critic', critic).params },
                frozen,
                baseModel,
              )
            : { model: current('policy', policy), critic: current('critic', critic) }),
          summary,
        }),
        async release() {
          await engine.release();
          await trainer.release();
        },
      };
    },
  });
  return { step: run.step, ...run.result, hyperparameters: hyper };
}

const fmt = (x: number) => x.toFixed(4);
