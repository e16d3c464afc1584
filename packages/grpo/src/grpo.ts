// GRPO (Shao et al. 2024) and RLOO (Ahmadian et al. 2024): critic-free online RL as a body on the stage driver.
// Each iteration: sample G responses to each of a batch of prompts; reward them (a reward model, or a programmatic
// reward a team declared); group advantages; μ epochs × minibatches of clipped-surrogate updates (clip-higher
// optional) with a k3 KL to the frozen reference as a loss term (β = 0: none), fused in one graph run.
import {
  GrpoMetrics,
  type GrpoConfig,
  type GrpoConfigInput,
  type PromptRow,
  resolveGrpoConfig,
} from '@rlhf/contracts';
import {
  add,
  buildTrainStep,
  cast,
  createTrainer,
  gather,
  mul,
  type Tensor,
  type Trainer,
  unsqueeze,
} from '@rlhf/graph';
import {
  ByteTokenizer,
  createGenerator,
  createScorer,
  hashString,
  leftPad,
  paramShapes,
  type ResponseBatch,
  scoreResponses,
  type Tokenizer,
} from '@rlhf/model';
import { approxKlK3, ppoPolicyLoss } from '@rlhf/ppo';
import { float32, int64, type Runtime } from '@rlhf/runtime';
import {
  batchOrder,
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  optimizerFiles,
  optimizerFromFiles,
  optimizerOf,
  permutation,
  promptTokens,
  runStage,
  sampleGroups,
  type SampleRow,
  type StageHooks,
  type StageResult,
} from '@rlhf/stage-kit';
import { grpoAdvantages, rlooAdvantages, zeroSpreadGroups } from './advantages.js';

export interface GrpoInput {
  config: GrpoConfig | GrpoConfigInput;
  /** The policy to sample from and update (usually SFT); also the frozen reference when β > 0. */
  policy: ModelWeights;
  /** Scores responses when config.reward is 'reward_model'. */
  rewardModel?: ModelWeights;
  /** The programmatic reward config.reward names (resolved by the caller: the worker's tasks). */
  task?: (prompt: string, response: string) => number;
  prompts: readonly PromptRow[];
  runtime: Runtime;
  hooks?: StageHooks;
  tokenizer?: Tokenizer;
}

const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, x) => a + x, 0) / Math.max(xs.length, 1);

/** The training graph: K = epochs × minibatches clipped-surrogate steps over the shared rollout tensors. */
function grpoTrainStep(policy: ModelWeights['config'], config: GrpoConfig, rows: number) {
  const miniBatch = rows / config.minibatches;
  const perToken = (name: string) => ({ name, dtype: 'float32' as const, shape: ['rows', 'response'] });
  const ids = (name: string, length: string) => ({ name, dtype: 'int64' as const, shape: ['rows', length] });
  return buildTrainStep({
    name: 'grpo_train',
    params: paramShapes(policy),
    batch: [{ name: 'rows', dtype: 'int64', shape: [miniBatch] }],
    shared: [
      ids('prompt_ids', 'prompt'),
      ids('prompt_mask', 'prompt'),
      ids('response_ids', 'response'),
      ids('response_mask', 'response'),
      perToken('old_logprobs'),
      perToken('ref_logprobs'),
      { name: 'advantages', dtype: 'float32', shape: ['rows'] },
    ],
    steps: config.epochs * config.minibatches,
    optimizer: optimizerOf(config),
    loss: (params: Map<string, Tensor>, batch: Record<string, Tensor>, shared: Record<string, Tensor>) => {
      const pick = (name: string) => gather(shared[name], batch.rows, 0);
      const minibatch: ResponseBatch = {
        promptIds: pick('prompt_ids'),
        promptMask: pick('prompt_mask'),
        responseIds: pick('response_ids'),
        responseMask: pick('response_mask'),
      };
      const mask = cast(minibatch.responseMask, 'float32');
      const { logprobs } = scoreResponses(params, policy, minibatch, { temperature: config.temperature });
      // The sequence's advantage at each of its tokens; token-level mean over the minibatch (DAPO).
      const advantages = mul(unsqueeze(pick('advantages'), [1]), mask);
      const low = ppoPolicyLoss(logprobs, pick('old_logprobs'), advantages, mask, config.clipRange, 1e9);
      const high = ppoPolicyLoss(logprobs, pick('old_logprobs'), advantages, mask, 1e9, config.clipRangeHigh);
      const pg = ppoPolicyLoss(
        logprobs,
        pick('old_logprobs'),
        advantages,
        mask,
        config.clipRange,
        config.clipRangeHigh,
      );
      // k3 estimate of KL(π ‖ π_ref) on the sampled tokens (Shao et al. 2024 eq. 4).
      const kl = approxKlK3(pick('ref_logprobs'), logprobs, mask);
      const loss = config.beta > 0 ? add(pg.loss, mul(kl, config.beta)) : pg.loss;
      return { loss, metrics: { kl, clipLow: low.clipFrac, clipHigh: high.clipFrac } };
    },
  });
}

export async function trainGrpo(input: GrpoInput): Promise<StageResult> {
  const config = resolveGrpoConfig(input.config);
  const { runtime, policy: start } = input;
  const tokenizer = input.tokenizer ?? new ByteTokenizer();
  if (input.prompts.length === 0) throw new Error('grpo: no prompts');
  if (start.config.scalarHead)
    throw new Error('grpo: the policy must be a language model without a scalar head');
  const useRewardModel = config.reward === 'reward_model';
  if (useRewardModel && !input.rewardModel?.config.scalarHead)
    throw new Error("grpo: reward 'reward_model' needs a reward model with a scalar head");
  if (!useRewardModel && !input.task)
    throw new Error(`grpo: no programmatic reward '${config.reward}' was given`);
  const context = Math.min(
    start.config.maxPositions,
    input.rewardModel?.config.maxPositions ?? Number.POSITIVE_INFINITY,
  );
  const maxPromptLen = Math.min(config.maxPromptLen, context - config.maxNewTokens);
  if (maxPromptLen < 1)
    throw new Error(
      `grpo: maxNewTokens ${config.maxNewTokens} leaves no room for a prompt in a context of ${context}`,
    );
  const B = config.promptsPerIteration;
  const G = config.groupSize;
  const rows = B * G;
  if (rows % config.minibatches !== 0)
    throw new Error(
      `grpo: minibatches (${config.minibatches}) must divide promptsPerIteration × groupSize (${rows})`,
    );
  const prompts = input.prompts.map((row) => ({
    text: row.prompt,
    ids: promptTokens(tokenizer, row.prompt, maxPromptLen),
  }));
  const promptOrder = batchOrder(prompts.length, B, config.seed);
  const hyperparameters = {
    stage: 'grpo',
    config,
    model: start.config,
    effective: {
      maxPromptLen,
      rowsPerIteration: rows,
      stepsPerIteration: config.epochs * config.minibatches,
    },
  };

  const run = await runStage({
    stage: 'grpo',
    totalSteps: config.iterations,
    checkpointEvery: config.checkpointEvery,
    hooks: input.hooks,
    async start(resume) {
      const model = resume ? await modelFromFiles(resume.files) : start;
      const trainer: Trainer = await createTrainer(runtime, grpoTrainStep(model.config, config, rows), {
        params: model.params,
        ...(resume ? optimizerFromFiles(resume.files) : {}),
        step: Number(resume?.state.optimizerStep ?? 0),
      });
      const generator = await createGenerator(runtime, model.config);
      const logprobScorer = await createScorer(runtime, model.config, { outputs: ['logprobs'] });
      const rewardScorer = useRewardModel
        ? await createScorer(runtime, input.rewardModel!.config, { outputs: ['scores'] })
        : undefined;
      const current = (): ModelWeights => ({ ...model, params: trainer.state.params });
      let last: Record<string, number> = {};

      return {
        async step(it) {
          const batch = promptOrder(it).map((i) => prompts[i]);
          const group = await sampleGroups(generator, {
            params: trainer.state.params,
            prompts: batch.map((p) => p.ids),
            n: G,
            maxNewTokens: config.maxNewTokens,
            temperature: config.temperature,
            seed: hashString(`${config.seed}:grpo:${it}`),
            tokenizer,
          });
          const { tokens, scored, generated: out } = group;
          const { prompts: repeated, responses, responseMask } = scored;
          const width = responses[0]?.length ?? 0;
          const texts = tokens.map((row) => tokenizer.decode(row, { skipSpecialTokens: true }));
          const rewards = rewardScorer
            ? (await rewardScorer.score({ ...scored, params: input.rewardModel!.params })).scores!
            : texts.map((text, r) => input.task!(batch[Math.floor(r / G)].text, text));
          const advantages =
            config.advantage === 'rloo'
              ? rlooAdvantages(rewards, G)
              : grpoAdvantages(rewards, G, config.scaleByStd);
          // Old log-probs from the scoring graph the update reads (as PPO recomputes them); the reference's too.
          const old = (
            await logprobScorer.score({
              ...scored,
              params: trainer.state.params,
              temperature: config.temperature,
            })
          ).logprobs!;
          const ref =
            config.beta > 0
              ? (
                  await logprobScorer.score({
                    ...scored,
                    params: start.params,
                    temperature: config.temperature,
                  })
                ).logprobs!
              : old;
          const prompt = leftPad(repeated, tokenizer.padId);
          const N = width;
          const shared = {
            prompt_ids: prompt.ids,
            prompt_mask: prompt.mask,
            response_ids: int64([rows, N], responses.flat()),
            response_mask: int64([rows, N], responseMask.flat()),
            old_logprobs: float32([rows, N], old.flat()),
            ref_logprobs: float32([rows, N], ref.flat()),
            advantages: float32([rows], advantages),
          };
          const order: number[] = [];
          for (let epoch = 0; epoch < config.epochs; epoch++)
            order.push(...permutation(rows, config.seed, `grpo-${it}-${epoch}`));
          const K = config.epochs * config.minibatches;
          const report = await trainer.run(
            { rows: int64([K, 1, rows / config.minibatches], order) },
            config.lr,
            shared,
          );

          const groupStd = mean(
            Array.from({ length: B }, (_, b) => {
              const group = rewards.slice(b * G, (b + 1) * G);
              const m = mean(group);
              return Math.sqrt(mean(group.map((x) => (x - m) ** 2)));
            }),
          );
          const metrics: Record<string, number> = {
            [GrpoMetrics.reward]: mean(rewards),
            [GrpoMetrics.rewardStd]: groupStd,
            [GrpoMetrics.zeroStdGroups]: zeroSpreadGroups(rewards, G),
            [GrpoMetrics.kl]: mean(report.metrics.kl),
            [GrpoMetrics.clipLow]: mean(report.metrics.clipLow),
            [GrpoMetrics.clipHigh]: mean(report.metrics.clipHigh),
            [GrpoMetrics.loss]: mean(report.loss),
            [GrpoMetrics.responseLenMean]: mean(tokens.map((row) => row.length)),
            [GrpoMetrics.eosRate]: mean(out.finished.map((f) => (f ? 1 : 0))),
          };
          last = metrics;
          const step = it + 1;
          const sampled = step % config.sampleEvery === 0 || step === config.iterations;
          const samples: SampleRow[] = texts.slice(0, config.sampleCount).map((text, r) => ({
            prompt: batch[Math.floor(r / G)].text,
            response: text,
            score: rewards[r],
            kl: 0,
            eos: out.finished[r],
          }));
          input.hooks?.log?.(
            `grpo ${step}/${config.iterations}: reward ${metrics[GrpoMetrics.reward].toFixed(4)}`,
          );
          return { steps: 1, metrics: [metrics], ...(sampled ? { samples } : {}) };
        },
        weights: () => trainer.state.params,
        async checkpoint() {
          return {
            files: { ...(await modelFiles(current(), { stage: 'grpo' })), ...optimizerFiles(trainer.state) },
            state: { optimizerStep: trainer.state.step, seed: config.seed },
          };
        },
        finish: async () => ({ model: current(), summary: last }),
        async release() {
          await generator.release();
          await logprobScorer.release();
          await rewardScorer?.release();
          await trainer.release();
        },
      };
    },
  });
  const { model, summary } = run.result;
  return {
    step: run.step,
    model: { ...model, metadata: { ...model.metadata, stage: 'grpo' } },
    summary,
    hyperparameters: { ...hyperparameters, resumedFrom: run.resumedFrom },
  };
}
