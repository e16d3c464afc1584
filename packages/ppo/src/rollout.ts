// Rollouts: sample responses with the generation graph (rows in budget-sized calls, each one session.run for all
// its decode steps), then score them with the rollout scoring graph (policy, reference, critic and reward model
// side by side; rows in budget-sized calls too).
import {
  type GptConfig,
  type Generator,
  createGenerator,
  type HostParams,
  leftPad,
  longest,
  paramFeeds,
} from '@rlhf/model';
import { type HostTensor, int64, type Runtime, type Session, weightFeeds } from '@rlhf/runtime';
import { budgetedGenerator, rowSplitter } from '@rlhf/stage-kit';
import {
  buildRolloutScoringGraph,
  type ModelRole,
  type PpoLora,
  type PpoModels,
  paramName,
  trainedShapes,
} from './graphs.js';

/** A sampled and scored batch; per-token arrays are row-major [B, N]. */
export interface Rollout {
  /** [B, N] */
  shape: [number, number];
  /** Prompt token ids per row (unpadded). */
  prompts: number[][];
  /** Response token ids per row, N each (padId after EOS). */
  responses: number[][];
  /** 1 for response tokens up to and including EOS. */
  mask: Uint8Array;
  /** Rows that generated EOS (the others hit maxNewTokens). */
  finished: boolean[];
  /** log π of the sampled tokens as the generation graph reported them. */
  samplerLogprobs: Float32Array;
  /** log π recomputed by the scoring graph (the same code as training): the PPO ratio's old log-probs. */
  logprobs: Float32Array;
  /** log π_ref of the sampled tokens under the frozen reference. */
  refLogprobs: Float32Array;
  /** Critic values V(s_t) before each response token. */
  values: Float32Array;
  /** [B] reward-model score at the last real token (before normalisation). */
  scores: Float32Array;
  /** Seconds spent in generation and in scoring. */
  timing: { generate: number; score: number };
}

export interface RolloutOptions {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  eosId: number;
  padId: number;
  /** The stage's abort signal, checked between the generation's and scoring's budget-sized calls (StepInterrupted, clean). */
  signal?: AbortSignal;
  log?(message: string): void;
}

/** The four models' weights, by paramShapes name (LoRA: policy and critic are their adapters' tensors). */
export type RolloutParams = Record<ModelRole, HostParams>;

export interface RolloutEngine {
  rollout(params: RolloutParams, prompts: number[][], seed: number): Promise<Rollout>;
  release(): Promise<void>;
}

/** Creates the generation and scoring sessions once per stage (session creation is slow on CUDA). */
export async function createRolloutEngine(
  runtime: Runtime,
  models: PpoModels,
  options: RolloutOptions,
  lora?: PpoLora,
): Promise<RolloutEngine> {
  // LoRA: sample from the reference's weights + the policy's adapter, unmerged.
  const generator: Generator = budgetedGenerator(
    await createGenerator(runtime, models.policy, lora && { lora: lora.policy }),
    { signal: options.signal, log: options.log },
  );
  const scoring: Session = await runtime.createSession(
    buildRolloutScoringGraph(models, options.temperature, lora),
    {
      name: 'ppo_rollout_score',
    },
  );
  const scoreRows = rowSplitter('score', { signal: options.signal, log: options.log });
  const configs: Record<ModelRole, GptConfig> = {
    policy: models.policy,
    ref: models.policy,
    critic: models.critic,
    rm: models.rewardModel,
  };
  return {
    async rollout(params, prompts, seed) {
      const started = performance.now();
      const generated = await generator.generate({
        ...(lora ? { params: params.ref, adapter: params.policy } : { params: params.policy }),
        prompts,
        maxNewTokens: options.maxNewTokens,
        temperature: options.temperature,
        topK: options.topK,
        topP: options.topP,
        seed,
        eosId: options.eosId,
        padId: options.padId,
      });
      const generatedAt = performance.now();
      const B = prompts.length;
      const N = options.maxNewTokens;
      const weights: Record<string, HostTensor> = {};
      for (const role of Object.keys(configs) as ModelRole[]) {
        const adapter = lora && (role === 'policy' || role === 'critic');
        const roleFeeds = adapter
          ? weightFeeds(trainedShapes(models, role, lora), params[role])
          : paramFeeds(configs[role], params[role]);
        for (const [name, tensor] of Object.entries(roleFeeds)) weights[paramName(role, name)] = tensor;
      }
      // Rows in budget-sized calls too: every output is per row.
      const parts = await scoreRows(B, longest(prompts) + N, async (from, rows) => {
        const prompt = leftPad(prompts.slice(from, from + rows), options.padId);
        return scoring.run({
          ...weights,
          prompt_ids: prompt.ids,
          prompt_mask: prompt.mask,
          response_ids: int64([rows, N], generated.tokens.slice(from, from + rows).flat()),
          response_mask: int64([rows, N], generated.mask.slice(from, from + rows).flat()),
        });
      });
      const floats = (name: string) => {
        const joined = new Float32Array(parts.reduce((n, out) => n + out[name].data.length, 0));
        let at = 0;
        for (const out of parts) {
          joined.set(out[name].data as Float32Array, at);
          at += out[name].data.length;
        }
        return joined;
      };
      return {
        shape: [B, N],
        prompts,
        responses: generated.tokens,
        mask: Uint8Array.from(generated.mask.flat()),
        finished: generated.finished,
        samplerLogprobs: Float32Array.from(generated.logprobs.flat()),
        logprobs: floats('logprobs'),
        refLogprobs: floats('ref_logprobs'),
        values: floats('values'),
        scores: floats('scores'),
        timing: { generate: (generatedAt - started) / 1000, score: (performance.now() - generatedAt) / 1000 },
      };
    },
    async release() {
      await generator.release();
      await scoring.release();
    },
  };
}

/** max |sampler log-prob − scoring log-prob| over response tokens (rollout/sampler_logprob_diff). */
export function samplerLogprobDiff(rollout: Rollout): number {
  let worst = 0;
  for (let i = 0; i < rollout.mask.length; i++)
    if (rollout.mask[i]) worst = Math.max(worst, Math.abs(rollout.samplerLogprobs[i] - rollout.logprobs[i]));
  return worst;
}
