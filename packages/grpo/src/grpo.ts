// GRPO (Shao et al. 2024), RLOO (Ahmadian et al. 2024) and REINFORCE++ (Hu et al. 2025): critic-free online RL as
// a body on the stage driver. Each iteration: sample G responses to each of a batch of prompts; score them with
// one BatchReward (a reward model, a named programmatic task, declared graders); advantages (group-normalised,
// leave-one-out, or per-token batch-normalised returns); optionally drop flat groups (DAPO dynamic sampling);
// μ epochs × minibatches of clipped-surrogate updates (clip-higher optional) with a k3 KL to the frozen reference
// as a loss term (β = 0: none; REINFORCE++ puts a k1 KL in the reward instead), fused in one graph run. With
// config.lora only an adapter trains and the start weights, frozen, are also the reference (policy.ts).
import {
  type GraderSpec,
  GrpoMetrics,
  type GrpoConfig,
  type GrpoConfigInput,
  type PromptRow,
  resolveGrpoConfig,
  rewardPartMetric,
} from '@rlhf/contracts';
import { createGrader } from '@rlhf/graders';
import {
  adapterSize,
  ByteTokenizer,
  hashString,
  leftPad,
  loraSettingsOf,
  type Tokenizer,
  validateLora,
} from '@rlhf/model';
import { float32, int64, type Runtime, type Weights } from '@rlhf/runtime';
import {
  type BatchReward,
  batchOrder,
  type ModelWeights,
  permutation,
  framingOf,
  framedPromptText,
  promptTokens,
  runStage,
  sampleGroups,
  type SampleRow,
  type StageHooks,
  type StageResult,
  taskReward,
  throwIfInterrupted,
} from '@rlhf/stage-kit';
import { createRewardModelReward } from './rewards.js';
import { createGrpoPolicy } from './policy.js';
import { rolloutK3, rolloutTensors, sequenceKl, tokenMean } from './rollout.js';

export interface GrpoInput {
  config: GrpoConfig | GrpoConfigInput;
  /** The policy to sample from and update (usually SFT); also the frozen reference when β > 0. */
  policy: ModelWeights;
  /** The reward (e.g. declared graders). Without it: the reward model or the task, as config.reward says. */
  reward?: BatchReward;
  /** Scores responses when config.reward is 'reward_model' and no `reward` is given. */
  rewardModel?: ModelWeights;
  /** The programmatic reward config.reward names (resolved by the caller: the worker's tasks). */
  task?: (prompt: string, response: string) => number;
  prompts: readonly PromptRow[];
  runtime: Runtime;
  hooks?: StageHooks;
  tokenizer?: Tokenizer;
  /** With config.lora: the adapter to start from (e.g. an imported PEFT adapter); default PEFT's fresh init. */
  adapter?: Weights;
  /** With config.lora: the base's name or location, recorded as the adapter's base_model_name_or_path. */
  baseModel?: string;
}

const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, x) => a + x, 0) / Math.max(xs.length, 1);

/** With config.lora, `model` is the merged policy (base + s·BA) and `adapter` the adapter itself. */
export async function trainGrpo(input: GrpoInput): Promise<StageResult> {
  const config = resolveGrpoConfig(input.config);
  const { runtime, policy: start } = input;
  const tokenizer = input.tokenizer ?? new ByteTokenizer();
  if (input.prompts.length === 0) throw new Error('grpo: no prompts');
  // LoRA: only an adapter on the start weights trains; those weights stay the reference (adapter off).
  const lora = config.lora && loraSettingsOf(config.lora, start.config);
  if (lora) validateLora(start.config, lora);
  if (start.config.scalarHead)
    throw new Error('grpo: the policy must be a language model without a scalar head');
  // A declared grader (config.reward an object) may score with the reward model too, when the run has one.
  const grader = typeof config.reward === 'object' ? (config.reward as GraderSpec) : undefined;
  const useRewardModel =
    !input.reward &&
    (config.reward === 'reward_model' || (grader !== undefined && input.rewardModel !== undefined));
  if (useRewardModel && !input.rewardModel?.config.scalarHead)
    throw new Error("grpo: reward 'reward_model' needs a reward model with a scalar head");
  if (!input.reward && !useRewardModel && !grader && !input.task)
    throw new Error(`grpo: no programmatic reward '${config.reward}' was given`);
  const context = Math.min(
    start.config.maxPositions,
    useRewardModel ? input.rewardModel!.config.maxPositions : Number.POSITIVE_INFINITY,
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
  // `messages` prompts in the model's own chat template when it has one (config.framing).
  const framing = framingOf(tokenizer, config.framing, 'config.framing');
  const prompts = input.prompts.map((row) => ({
    row,
    text: framedPromptText(row, framing),
    ids: promptTokens(tokenizer, row, maxPromptLen, framing),
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
      reward: input.reward ? 'given' : config.reward,
      ...(lora && { lora: { ...lora, trainableParams: adapterSize(start.config, lora) } }),
    },
  };

  const run = await runStage({
    stage: 'grpo',
    totalSteps: config.iterations,
    checkpointEvery: config.checkpointEvery,
    hooks: input.hooks,
    async start(resume) {
      const policy = await createGrpoPolicy({
        runtime,
        start,
        config,
        rows,
        resume,
        lora,
        initialAdapter: input.adapter,
        baseModel: input.baseModel,
        signal: input.hooks?.signal,
        log: (message) => input.hooks?.log?.(`grpo: ${message}`),
      });
      // A cancel or pause reaches the iteration between its calls (sampling, reward, scoring, the update's).
      const interrupted = (clean: boolean) => throwIfInterrupted(input.hooks?.signal, clean);
      const { trainer, generator } = policy;
      const rewardModel = useRewardModel
        ? await createRewardModelReward(runtime, input.rewardModel!, {
            tokenizer,
            maxPromptLen,
            maxResponseLen: config.maxNewTokens,
            framing,
            calls: { signal: input.hooks?.signal, log: (message) => input.hooks?.log?.(`grpo: ${message}`) },
          })
        : undefined;
      const reward: BatchReward =
        input.reward ??
        (grader
          ? createGrader(grader, {
              ...(rewardModel
                ? {
                    rewardModel: async (texts: string[], responses: string[]) =>
                      (
                        await rewardModel.reward(
                          texts.map((prompt) => ({ prompt })),
                          responses,
                        )
                      ).scores,
                  }
                : {}),
              countTokens: (text: string) => tokenizer.encode(text).length,
            })
          : (rewardModel?.reward ?? taskReward(config.reward as string, input.task!)));
      let last: Record<string, number> = {};

      return {
        async step(it) {
          const batch = promptOrder(it).map((i) => prompts[i]);
          const sampleStart = performance.now();
          const group = await sampleGroups(generator, {
            params: start.params, // the policy's generator feeds its own weights

            prompts: batch.map((p) => p.ids),
            n: G,
            maxNewTokens: config.maxNewTokens,
            temperature: config.temperature,
            seed: hashString(`${config.seed}:grpo:${it}`),
            tokenizer,
          });
          const sampleSeconds = (performance.now() - sampleStart) / 1000;
          interrupted(true);
          const { tokens, scored, generated: out } = group;
          const { prompts: repeated, responses, responseMask } = scored;
          const N = responses[0]?.length ?? 0;
          const texts = tokens.map((row) => tokenizer.decode(row, { skipSpecialTokens: true }));
          const rowOf = (r: number) => batch[Math.floor(r / G)].row;
          const graded = await reward(
            texts.map((_, r) => rowOf(r)),
            texts,
          );
          interrupted(true);
          const scores = graded.scores;
          if (scores.length !== rows || Object.values(graded.parts).some((part) => part.length !== rows))
            throw new Error(`grpo: the reward returned ${scores.length} scores for ${rows} responses`);
          const bad = scores.findIndex((x) => !Number.isFinite(x));
          if (bad >= 0)
            throw new Error(`grpo: the reward of response ${bad} is ${scores[bad]}, not a finite number`);
          // Old log-probs from the scoring graph the update reads (as PPO recomputes them); the reference's too.
          const policyScored = await policy.score(scored, config.temperature, config.beta > 0);
          interrupted(true);
          const old = policyScored.old;
          const ref = policyScored.ref ?? old;
          const rollout = rolloutTensors({ config, scores, responseMask, old, ref });
          const updated = rollout.keptRows > 0;
          let report: { loss: number[]; metrics: Record<string, number[]> } | undefined;
          if (updated) {
            const prompt = leftPad(repeated, tokenizer.padId);
            const shared = {
              prompt_ids: prompt.ids,
              prompt_mask: prompt.mask,
              response_ids: int64([rows, N], responses.flat()),
              response_mask: int64([rows, N], responseMask.flat()),
              old_logprobs: float32([rows, N], old.flat()),
              ref_logprobs: float32([rows, N], ref.flat()),
              advantages: float32([rows, N], rollout.advantages),
              loss_mask: float32([rows, N], rollout.lossMask),
              ...policy.shared,
            };
            const order: number[] = [];
            for (let epoch = 0; epoch < config.epochs; epoch++)
              order.push(...permutation(rows, config.seed, `grpo-${it}-${epoch}`));
            const K = config.epochs * config.minibatches;
            const result = await trainer.run(
              { rows: int64([K, 1, rows / config.minibatches], order) },
              config.lr,
              shared,
            );
            report = {
              loss: Array.from(result.loss),
              metrics: mapValues(result.metrics, (v) => Array.from(v)),
            };
          }

          const sampledTokens = tokens.reduce((a, row) => a + row.length, 0);
          const metrics: Record<string, number> = {
            [GrpoMetrics.reward]: mean(scores),
            [GrpoMetrics.rewardStd]: rollout.rewardStd,
            [GrpoMetrics.zeroStdGroups]: rollout.zeroStdGroups,
            [GrpoMetrics.droppedGroups]: rollout.droppedGroups,
            [GrpoMetrics.updated]: updated ? 1 : 0,
            [GrpoMetrics.kl]: report ? mean(report.metrics.kl) : rolloutK3(old, ref, responseMask),
            [GrpoMetrics.clipLow]: report ? mean(report.metrics.clipLow) : 0,
            [GrpoMetrics.clipHigh]: report ? mean(report.metrics.clipHigh) : 0,
            [GrpoMetrics.entropy]: tokenMean(policyScored.entropy, responseMask),
            [GrpoMetrics.loss]: report ? mean(report.loss) : 0,
            [GrpoMetrics.responseLenMean]: mean(tokens.map((row) => row.length)),
            [GrpoMetrics.eosRate]: mean(out.finished.map((f) => (f ? 1 : 0))),
            [GrpoMetrics.samplingTokensPerSec]: sampledTokens / Math.max(sampleSeconds, 1e-6),
          };
          for (const [name, part] of Object.entries(graded.parts))
            metrics[rewardPartMetric(name)] = mean(part);
          last = metrics;
          const step = it + 1;
          const sampled = step % config.sampleEvery === 0 || step === config.iterations;
          const kls = sequenceKl(old, ref, responseMask);
          const samples: SampleRow[] = texts.slice(0, config.sampleCount).map((text, r) => ({
            prompt: batch[Math.floor(r / G)].text,
            response: text,
            score: scores[r],
            kl: kls[r],
            eos: out.finished[r],
            parts: mapValues(graded.parts, (part) => part[r]),
          }));
          input.hooks?.log?.(
            `grpo ${step}/${config.iterations}: reward ${metrics[GrpoMetrics.reward].toFixed(4)}` +
              (updated ? '' : ': every group’s rewards are equal, no update (dynamic sampling)'),
          );
          return { steps: 1, metrics: [metrics], ...(sampled ? { samples } : {}) };
        },
        weights: () => trainer.state.params,
        async checkpoint() {
          return {
            files: await policy.checkpointFiles(),
            state: { optimizerStep: trainer.state.step, seed: config.seed },
          };
        },
        finish: async () => ({ model: policy.current(), adapter: policy.adapter(), summary: last }),
        async release() {
          await policy.release();
          await rewardModel?.release();
        },
      };
    },
  });
  const { model, adapter, summary } = run.result;
  return {
    step: run.step,
    model: { ...model, metadata: { ...model.metadata, stage: 'grpo' } },
    ...(adapter && { adapter }),
    summary,
    hyperparameters: { ...hyperparameters, resumedFrom: run.resumedFrom },
  };
}

function mapValues<T, U>(record: Record<string, T>, fn: (value: T) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, fn(value)]));
}
