// The policy GRPO samples from, scores and updates: the model itself (full fine-tuning, the start weights as the
// frozen reference) or a LoRA adapter on the frozen start weights (the base is the reference: one weight copy).
// trainGrpo drives either through this interface.
import type { GrpoConfig } from '@rlhf/contracts';
import type { Trainer } from '@rlhf/graph';
import {
  createGenerator,
  createScorer,
  type Generator,
  initLora,
  type LoraSettings,
  longest,
  mergeLora,
  peftAdapterFiles,
  peftAdapterFromFiles,
} from '@rlhf/model';
import type { HostTensor, Runtime, Weights } from '@rlhf/runtime';
import {
  budgetedGenerator,
  type CheckpointFiles,
  joinRows,
  rowSplitter,
  createBudgetedTrainer,
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  optimizerFiles,
  optimizerFromFiles,
  type ResumePoint,
  type StageAdapter,
} from '@rlhf/stage-kit';
import { BASE_PREFIX, createLoraRolloutScorer } from './lora.js';
import { frozenBaseFeeds } from '@rlhf/ppo';
import { grpoTrainStep } from './train-step.js';

/** The rows of a rollout as the scorers take them (sampleGroups' `scored`). */
export interface ScoredRows {
  prompts: number[][];
  padId: number;
  responses: number[][];
  responseMask: number[][];
}

export interface GrpoPolicy {
  trainer: Trainer;
  /** Samples from the current policy (it sets the weights of each request: `params` is ignored). */
  generator: Generator;
  /** Old log-probs and entropy of the policy; the reference's log-probs when asked for (β > 0). */
  score(
    rows: ScoredRows,
    temperature: number,
    reference: boolean,
  ): Promise<{ old: number[][]; entropy: number[][]; ref?: number[][] }>;
  /** Shared inputs of the train step besides the rollout's (the frozen base with LoRA). */
  shared: Record<string, HostTensor>;
  /** The policy as a plain model (LoRA: merged, W + s·BA). */
  current(): ModelWeights;
  checkpointFiles(): Promise<CheckpointFiles>;
  adapter(): StageAdapter | undefined;
  release(): Promise<void>;
}

export interface PolicyOptions {
  runtime: Runtime;
  start: ModelWeights;
  config: GrpoConfig;
  rows: number;
  resume: ResumePoint | null;
  lora?: LoraSettings;
  /** With lora: the adapter to start from (default PEFT's init, B = 0) and the base's name for its config. */
  initialAdapter?: Weights;
  baseModel?: string;
  /** Checked between the update's and the sampling's budget-sized calls (the stage's abort signal). */
  signal?: AbortSignal;
  log?(message: string): void;
}

// The update's epochs × minibatches steps as budget-sized calls, the signal checked between them.
const budgeted = (options: PolicyOptions, lora?: LoraSettings) => ({
  steps: options.config.epochs * options.config.minibatches,
  build: (steps: number) => grpoTrainStep(options.start.config, options.config, options.rows, lora, steps),
  signal: options.signal,
  log: options.log,
});

// Sampling and scoring as budget-sized calls of rows, the signal checked between them too.
const sampling = (options: PolicyOptions) => ({ signal: options.signal, log: options.log });

export async function createGrpoPolicy(options: PolicyOptions): Promise<GrpoPolicy> {
  const policy = options.lora ? await loraPolicy(options, options.lora) : await fullPolicy(options);
  // Scoring's rows in budget-sized calls too: every output is per row.
  const split = rowSplitter('score', sampling(options));
  return {
    ...policy,
    async score(rows, temperature, reference) {
      const width = longest(rows.prompts) + (rows.responses[0]?.length ?? 0);
      const parts = await split(rows.responses.length, width, (from, count) => {
        const slice = <T>(of: readonly T[]) => of.slice(from, from + count);
        const part = { ...rows, prompts: slice(rows.prompts), responses: slice(rows.responses) };
        return policy.score({ ...part, responseMask: slice(rows.responseMask) }, temperature, reference);
      });
      if (parts.length === 1) return parts[0];
      const ref = parts[0].ref ? { ref: joinRows(parts.map((p) => p.ref!)) } : {};
      return {
        old: joinRows(parts.map((p) => p.old)),
        entropy: joinRows(parts.map((p) => p.entropy)),
        ...ref,
      };
    },
  };
}

async function fullPolicy(options: PolicyOptions): Promise<GrpoPolicy> {
  const { runtime, start, resume } = options;
  const model = resume ? await modelFromFiles(resume.files) : start;
  const trainer = await createBudgetedTrainer(
    runtime,
    {
      params: model.params,
      ...(resume ? optimizerFromFiles(resume.files) : {}),
      step: Number(resume?.state.optimizerStep ?? 0),
    },
    budgeted(options),
  );
  const generator = budgetedGenerator(await createGenerator(runtime, model.config), sampling(options));
  const scorer = await createScorer(runtime, model.config, { outputs: ['logprobs', 'entropy'] });
  const sample = generator.generate.bind(generator);
  const current = (): ModelWeights => ({ ...model, params: trainer.state.params });
  return {
    trainer,
    generator: {
      generate: (request) => sample({ ...request, params: trainer.state.params }),
      release: async () => {},
    },
    async score(scored, temperature, reference) {
      const policy = await scorer.score({ ...scored, params: trainer.state.params, temperature });
      const ref = reference
        ? (await scorer.score({ ...scored, params: start.params, temperature })).logprobs
        : undefined;
      return { old: policy.logprobs!, entropy: policy.entropy!, ...(ref ? { ref } : {}) };
    },
    shared: {},
    current,
    checkpointFiles: async () => ({
      ...(await modelFiles(current(), { stage: 'grpo' })),
      ...optimizerFiles(trainer.state),
    }),
    adapter: () => undefined,
    async release() {
      await generator.release();
      await scorer.release();
      await trainer.release();
    },
  };
}

async function loraPolicy(options: PolicyOptions, settings: LoraSettings): Promise<GrpoPolicy> {
  const { runtime, start, config, resume } = options;
  const base = start.params;
  const initial = resume
    ? peftAdapterFromFiles(start.config, resume.files).adapter
    : (options.initialAdapter ?? initLora(start.config, settings, base, config.seed));
  const trainer = await createBudgetedTrainer(
    runtime,
    {
      params: initial,
      ...(resume ? optimizerFromFiles(resume.files) : {}),
      step: Number(resume?.state.optimizerStep ?? 0),
    },
    budgeted(options, settings),
  );
  // Rollouts sample from base + adapter unmerged: the adapter's tensors are inputs beside the base's.
  const generator = budgetedGenerator(
    await createGenerator(runtime, start.config, { lora: settings }),
    sampling(options),
  );
  const scorer = await createLoraRolloutScorer(runtime, start.config, settings, {
    reference: config.beta > 0,
  });
  const files = () =>
    peftAdapterFiles(start.config, settings, trainer.state.params, options.baseModel ?? null);
  return {
    trainer,
    generator: {
      generate: (request) => generator.generate({ ...request, params: base, adapter: trainer.state.params }),
      release: async () => {},
    },
    async score(scored, temperature, reference) {
      const out = await scorer.score({ ...scored, base, adapter: trainer.state.params, temperature });
      return { old: out.logprobs, entropy: out.entropy, ...(reference ? { ref: out.refLogprobs } : {}) };
    },
    shared: frozenBaseFeeds(start.config, settings, base, BASE_PREFIX),
    current: () => ({ ...start, params: mergeLora(start.config, settings, base, trainer.state.params) }),
    checkpointFiles: async () => ({ ...files(), ...optimizerFiles(trainer.state) }),
    adapter: () => ({
      settings,
      params: trainer.state.params,
      files: files(),
      baseModel: options.baseModel ?? null,
    }),
    async release() {
      await generator.release();
      await scorer.release();
      await trainer.release();
    },
  };
}
