// RAFT, reward-ranked fine-tuning (Dong et al. 2023), as a body on the stage driver. Each iteration:
// 1. sample n responses to each of a batch of prompts with the current policy (the generation graph);
// 2. score them with the frozen reward model (the scoring graph PPO uses);
// 3. keep the best k per prompt (or the best B·k of the iteration);
// 4. fine-tune on the kept set: stepsPerIteration SFT steps in one fused call.
import {
  type PromptRow,
  RaftMetrics,
  type RaftConfig,
  type RaftConfigInput,
  resolveRaftConfig,
} from '@rlhf/contracts';
import { buildTrainStep, type Trainer } from '@rlhf/graph';
import {
  ByteTokenizer,
  createScorer,
  hashString,
  longest,
  loraSettingsOf,
  type Tokenizer,
  validateLora,
} from '@rlhf/model';
import type { Runtime } from '@rlhf/runtime';
import { sftExample, sftTensors } from '@rlhf/sft';
import {
  batchOrder,
  budgetedGenerator,
  budgetedScorer,
  loraSummary,
  type ModelWeights,
  optimizerFiles,
  optimizerFromFiles,
  optimizerOf,
  permutation,
  framingOf,
  framedPromptText,
  promptTokens,
  runStage,
  createBudgetedTrainer,
  throwIfInterrupted,
  sampleGroups,
  type SampleRow,
  type StageHooks,
  type StageResult,
  stackSteps,
} from '@rlhf/stage-kit';
import { fullTuning, loraTuning } from './lora.js';

export interface RaftInput {
  config: RaftConfig | RaftConfigInput;
  /** The policy to sample from and fine-tune (usually SFT); also where the KL is measured from. */
  policy: ModelWeights;
  /** The frozen reward model (config.scalarHead) that ranks the samples. */
  rewardModel: ModelWeights;
  prompts: readonly PromptRow[];
  runtime: Runtime;
  hooks?: StageHooks;
  /** With config.lora: the base's name or location, recorded as the adapter's base_model_name_or_path. */
  baseModel?: string;
  /** Programmatic ground truth; only feeds objective/ground_truth*. */
  groundTruth?: (prompt: string, response: string) => number;
  tokenizer?: Tokenizer;
}

/** One sampled response: prompt index in the batch, its tokens (EOS included when generated), scores. */
interface Sample {
  prompt: number;
  tokens: number[];
  logprob: number;
  score: number;
  finished: boolean;
}

/** The best k of each prompt's samples, or the best B·k of all (Dong et al. 2023 §3). */
export function selectKept<T extends { prompt: number; score: number }>(
  samples: readonly T[],
  k: number,
  selection: RaftConfig['selection'],
  prompts: number,
): T[] {
  const byScore = (a: T, b: T) => b.score - a.score;
  if (selection === 'global') return [...samples].sort(byScore).slice(0, k * prompts);
  return Array.from({ length: prompts }, (_, p) =>
    samples
      .filter((s) => s.prompt === p)
      .sort(byScore)
      .slice(0, k),
  ).flat();
}

const mean = (xs: readonly number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(xs.length, 1);

export async function trainRaft(input: RaftInput): Promise<StageResult> {
  const config = resolveRaftConfig(input.config);
  const { runtime, policy: start } = input;
  const tokenizer = input.tokenizer ?? new ByteTokenizer();
  if (input.prompts.length === 0) throw new Error('raft: no prompts');
  if (!input.rewardModel.config.scalarHead) throw new Error('raft: the reward model needs a scalar head');
  if (start.config.scalarHead)
    throw new Error('raft: the policy must be a language model without a scalar head');
  // LoRA: the start policy stays frozen (and is the KL reference); only the adapter is fine-tuned.
  const lora = config.lora && loraSettingsOf(config.lora, start.config);
  if (lora) validateLora(start.config, lora);
  const tuning = lora
    ? loraTuning(start, lora, {
        batchSize: config.batchSize,
        seed: config.seed,
        baseModel: input.baseModel ?? null,
      })
    : fullTuning(start, config.batchSize);
  const context = Math.min(start.config.maxPositions, input.rewardModel.config.maxPositions);
  const maxPromptLen = Math.min(config.maxPromptLen, context - config.maxNewTokens);
  if (maxPromptLen < 1)
    throw new Error(
      `raft: maxNewTokens ${config.maxNewTokens} leaves no room for a prompt in a context of ${context}`,
    );
  const B = config.promptsPerIteration;
  const n = config.samplesPerPrompt;
  const K = config.stepsPerIteration;
  // `messages` prompts in the model's own chat template when it has one (config.framing).
  const framing = framingOf(tokenizer, config.framing, 'config.framing');
  const prompts = input.prompts.map((row) => ({
    text: framedPromptText(row, framing),
    ids: promptTokens(tokenizer, row, maxPromptLen, framing),
  }));
  const promptOrder = batchOrder(prompts.length, B, config.seed);
  const hyperparameters = {
    stage: 'raft',
    config,
    model: start.config,
    rewardModel: input.rewardModel.config,
    effective: {
      maxPromptLen,
      samplesPerIteration: B * n,
      keptPerIteration: B * config.keepPerPrompt,
      ...(lora && { lora: loraSummary(start.config, lora) }),
    },
  };

  const run = await runStage({
    stage: 'raft',
    totalSteps: config.iterations,
    checkpointEvery: config.checkpointEvery,
    hooks: input.hooks,
    async start(resume) {
      const params = await tuning.initial(resume?.files);
      // The K SFT steps of an iteration as budget-sized calls, the abort signal checked between them.
      const trainer: Trainer = await createBudgetedTrainer(
        runtime,
        {
          params,
          ...(resume ? optimizerFromFiles(resume.files) : {}),
          step: Number(resume?.state.optimizerStep ?? 0),
        },
        {
          steps: K,
          build: (steps) =>
            buildTrainStep({
              name: 'raft_train',
              params: tuning.params,
              ...tuning.graph,
              optimizer: optimizerOf(config),
              steps,
            }),
          signal: input.hooks?.signal,
          log: (message) => input.hooks?.log?.(`raft: ${message}`),
        },
      );
      const interrupted = (clean: boolean) => throwIfInterrupted(input.hooks?.signal, clean);
      // Sampling and scoring as budget-sized calls of rows too, the signal checked between them.
      const calls = {
        signal: input.hooks?.signal,
        log: (message: string) => input.hooks?.log?.(`raft: ${message}`),
      };
      const generator = budgetedGenerator(await tuning.generator(runtime), calls);
      const scorer = budgetedScorer(
        await createScorer(runtime, input.rewardModel.config, { outputs: ['scores'] }),
        calls,
      );
      const reference = budgetedScorer(
        await createScorer(runtime, start.config, { outputs: ['logprobs'] }),
        calls,
      );
      const current = (): ModelWeights => tuning.model(trainer.state.params);
      let last: Record<string, number> = {};

      return {
        async step(it) {
          const batch = promptOrder(it).map((i) => prompts[i]);
          const {
            tokens,
            scored,
            generated: out,
          } = await sampleGroups(generator, {
            params: trainer.state.params,
            prompts: batch.map((p) => p.ids),
            n,
            maxNewTokens: config.maxNewTokens,
            temperature: config.temperature,
            topK: config.topK,
            topP: config.topP,
            seed: hashString(`${config.seed}:raft:${it}`),
            tokenizer,
          });
          interrupted(true);
          const scores = (await scorer.score({ ...scored, params: input.rewardModel.params })).scores!;
          interrupted(true);
          const samples: Sample[] = tokens.map((row, r) => ({
            prompt: Math.floor(r / n),
            tokens: row,
            logprob: out.logprobs[r].reduce((a, x) => a + x, 0),
            score: scores[r],
            finished: out.finished[r],
          }));
          // KL of the samples from the start policy: Σ_t (log π − log π_start) (the sampler's log-probs for π).
          const startLogprobs = (
            await reference.score({ ...scored, params: start.params, temperature: config.temperature })
          ).logprobs!;
          const kl = (r: number) =>
            samples[r].logprob - startLogprobs[r].slice(0, tokens[r].length).reduce((a, x) => a + x, 0);
          const kept = selectKept(
            samples.map((s, r) => ({ ...s, r })),
            config.keepPerPrompt,
            config.selection,
            B,
          );

          interrupted(true);
          // Fine-tune on the kept set: K steps, each a seeded batch drawn from it.
          const examples = kept.map((s) => {
            const ids = [...batch[s.prompt].ids, ...s.tokens];
            return sftExample({ ids, promptTokens: batch[s.prompt].ids.length, truncated: false }, true);
          });
          const order = permutation(examples.length, config.seed, `raft-${it}`);
          const steps = Array.from({ length: K }, (_, k) =>
            Array.from(
              { length: config.batchSize },
              (_, j) => examples[order[(k * config.batchSize + j) % examples.length]],
            ),
          );
          const length = longest(examples.map((e) => e.inputs));
          const report = await trainer.run(
            stackSteps(steps.map((rows) => sftTensors(rows, config.batchSize, length, tokenizer.padId))),
            config.lr,
            tuning.shared,
          );

          const texts = tokens.map((row) => tokenizer.decode(row, { skipSpecialTokens: true }));
          const metrics: Record<string, number> = {
            [RaftMetrics.rewardAll]: mean(scores),
            [RaftMetrics.rewardKept]: mean(kept.map((s) => s.score)),
            [RaftMetrics.rewardKeptMax]: Math.max(...kept.map((s) => s.score)),
            [RaftMetrics.kl]: mean(kept.map((s) => kl(s.r))),
            [RaftMetrics.loss]: mean(report.loss),
            [RaftMetrics.responseLenMean]: mean(tokens.map((row) => row.length)),
            [RaftMetrics.eosRate]: mean(samples.map((s) => (s.finished ? 1 : 0))),
          };
          if (input.groundTruth) {
            const truth = (r: number) => input.groundTruth!(batch[samples[r].prompt].text, texts[r]);
            metrics[RaftMetrics.groundTruth] = mean(samples.map((_, r) => truth(r)));
            metrics[RaftMetrics.groundTruthKept] = mean(kept.map((s) => truth(s.r)));
          }
          last = metrics;
          const step = it + 1;
          const sampled = step % config.sampleEvery === 0 || step === config.iterations;
          const rows: SampleRow[] = kept.slice(0, config.sampleCount).map((s) => ({
            prompt: batch[s.prompt].text,
            response: texts[s.r],
            score: s.score,
            kl: kl(s.r),
            eos: s.finished,
          }));
          input.hooks?.log?.(
            `raft ${step}/${config.iterations}: reward all ${metrics[RaftMetrics.rewardAll].toFixed(4)} kept ${metrics[RaftMetrics.rewardKept].toFixed(4)}`,
          );
          return { steps: 1, metrics: [metrics], ...(sampled ? { samples: rows } : {}) };
        },
        weights: () => trainer.state.params,
        async checkpoint() {
          return {
            files: { ...(await tuning.files(trainer.state.params)), ...optimizerFiles(trainer.state) },
            state: { optimizerStep: trainer.state.step, seed: config.seed },
          };
        },
        finish: async () => ({
          model: current(),
          summary: last,
          adapter: tuning.adapter(trainer.state.params),
        }),
        async release() {
          await generator.release();
          await scorer.release();
          await reference.release();
          await trainer.release();
        },
      };
    },
  });
  const { model, summary, adapter } = run.result;
  return {
    step: run.step,
    model: { ...model, metadata: { ...model.metadata, stage: 'raft' } },
    ...(adapter && { adapter }),
    summary,
    hyperparameters: { ...hyperparameters, resumedFrom: run.resumedFrom },
  };
}
