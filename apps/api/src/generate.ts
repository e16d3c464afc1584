// POST /v1/runs/:runId/generate: sample from a finished run's policy on the API's CPU. The policy is
// the stage's final model (HF GPT-2 layout: config.json + model.safetensors [+ tokenizer.json]);
// prompts are framed as the trainers frame them: [bos] + prompt tokens, the response ends at EOS. A prompt-tuning
// stage's model (its base, PEFT PROMPT_TUNING files under adapter/) samples with its virtual tokens in front.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@rlhf/config';
import type { PolicyStage } from '@rlhf/contracts';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  CheckpointError,
  createGenerator,
  type GptConfig,
  type HostParams,
  LoraError,
  type PromptTuningSettings,
  promptTuningFromFiles,
  createScorer,
  type Generator,
  type LoadedCheckpoint,
  loadCheckpoint,
  type Scorer,
} from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { Static } from 'typebox';
import { ApiError } from './errors.js';
import type { RunWithStages } from './run-store.js';
import type { GenerateBody, GenerateResponse } from './schemas.js';

/** New tokens when the request names none: the PPO stage's maxNewTokens, else this. */
const DEFAULT_NEW_TOKENS = 64;

/** The policy to sample from: the requested stage, else the last finished policy stage (ppo, grpo, raft, pro, dpo, then sft). */
export function policyStage(run: RunWithStages, stage?: PolicyStage) {
  const finished = run.stages.filter((st) => st.status === 'succeeded' && st.modelKey !== null);
  const pick = (kind: PolicyStage) => finished.find((st) => st.kind === kind);
  const found = stage
    ? pick(stage)
    : (pick('ppo') ?? pick('grpo') ?? pick('raft') ?? pick('pro') ?? pick('dpo') ?? pick('sft'));
  if (!found) {
    const which = stage ? `a finished ${stage} stage` : 'a finished policy stage';
    throw new ApiError(409, 'no_policy', `run ${run.id} has no policy to sample from yet: it needs ${which}`);
  }
  return found as typeof found & { modelKey: string };
}

export interface Sampler {
  generate(run: RunWithStages, body: GenerateBody): Promise<Static<typeof GenerateResponse>>;
  close(): Promise<void>;
}

interface LoadedPolicy {
  modelKey: string;
  model: LoadedCheckpoint;
  generator: Generator;
  /** A prompt-tuning stage's virtual tokens (prompt_embeddings), fed with every request. */
  prompt?: { settings: PromptTuningSettings; adapter: HostParams };
}

/** The PEFT PROMPT_TUNING adapter under `dir`/adapter/, if that is what it holds (a LoRA adapter is merged). */
async function promptAdapterAt(dir: string, config: GptConfig): Promise<LoadedPolicy['prompt']> {
  const at = join(dir, 'adapter');
  if (!existsSync(join(at, ADAPTER_CONFIG))) return undefined;
  const configBytes = new Uint8Array(await readFile(join(at, ADAPTER_CONFIG)));
  if (JSON.parse(new TextDecoder().decode(configBytes)).peft_type !== 'PROMPT_TUNING') return undefined;
  const files = {
    [ADAPTER_CONFIG]: configBytes,
    [ADAPTER_WEIGHTS]: new Uint8Array(await readFile(join(at, ADAPTER_WEIGHTS))),
  };
  try {
    const { settings, adapter } = promptTuningFromFiles(config, files);
    return { settings, adapter };
  } catch (error) {
    if (!(error instanceof LoraError)) throw error;
    throw new ApiError(409, 'model_unavailable', `the policy's prompt-tuning adapter: ${error.message}`);
  }
}

interface LoadedRewardModel {
  modelKey: string;
  model: LoadedCheckpoint;
  scorer: Scorer;
}

/** The reward model best-of-n ranks with: the run's finished reward_model stage, else the run it started from. */
function rewardModelKey(run: RunWithStages): string {
  const stage = run.stages.find(
    (st) => st.kind === 'reward_model' && st.status === 'succeeded' && st.modelKey,
  );
  const key = stage?.modelKey ?? run.fromRunRewardModelKey;
  if (!key)
    throw new ApiError(
      409,
      'no_reward_model',
      `run ${run.id} has no finished reward model to rank bestOf samples with`,
    );
  return key;
}

/**
 * One CPU runtime for the process (ORT on its own thread, created on first use) and the last policy
 * used kept loaded. Requests are served one at a time.
 */
export function createSampler(modelDir: (key: string) => string, logger: Logger): Sampler {
  let runtime: Promise<Runtime> | undefined;
  let loaded: LoadedPolicy | undefined;
  let ranker: LoadedRewardModel | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  async function policy(modelKey: string): Promise<LoadedPolicy> {
    if (loaded?.modelKey === modelKey) return loaded;
    const model = await loadModel(modelKey, 'policy model');
    const prompt = await promptAdapterAt(modelDir(modelKey), model.config);
    runtime ??= createRuntime({ device: 'cpu', logger: { warn: (message) => logger.warn(message) } });
    const generator = await createGenerator(
      await runtime,
      model.config,
      prompt ? { promptTuning: prompt.settings } : {},
    );
    await loaded?.generator.release();
    loaded = { modelKey, model, generator, ...(prompt ? { prompt } : {}) };
    return loaded;
  }

  async function loadModel(modelKey: string, what: string): Promise<LoadedCheckpoint> {
    try {
      return await loadCheckpoint(modelDir(modelKey));
    } catch (error) {
      if (!(error instanceof CheckpointError)) throw error;
      throw new ApiError(409, 'model_unavailable', `the ${what} cannot be loaded: ${error.message}`);
    }
  }

  async function rewardModel(modelKey: string): Promise<LoadedRewardModel> {
    if (ranker?.modelKey === modelKey) return ranker;
    const model = await loadModel(modelKey, 'reward model');
    runtime ??= createRuntime({ device: 'cpu', logger: { warn: (message) => logger.warn(message) } });
    const scorer = await createScorer(await runtime, model.config, { outputs: ['scores'] });
    await ranker?.scorer.release();
    ranker = { modelKey, model, scorer };
    return ranker;
  }

  async function generate(run: RunWithStages, body: GenerateBody): Promise<Static<typeof GenerateResponse>> {
    const stage = policyStage(run, body.stage);
    const { model, generator, prompt } = await policy(stage.modelKey);
    const { tokenizer } = model;
    // Prompt tuning's virtual tokens take positions before every prompt.
    const context = model.config.maxPositions - (prompt?.settings.numVirtualTokens ?? 0);
    const ppo = run.stages.find((st) => st.kind === 'ppo')?.config as { maxNewTokens?: number } | undefined;
    const maxNewTokens = body.maxNewTokens ?? Math.min(ppo?.maxNewTokens ?? DEFAULT_NEW_TOKENS, context - 2);
    if (maxNewTokens > context - 2) {
      throw new ApiError(
        400,
        'invalid_request',
        `/maxNewTokens: must be <= ${context - 2} (the model's context is ${context} tokens)`,
        '/maxNewTokens',
      );
    }
    // Long prompts keep their end (where the question is), as PPO does.
    const room = context - maxNewTokens - 1;
    const prompts = body.prompts.map((text) => {
      const ids = tokenizer.encode(text);
      return [tokenizer.bosId, ...ids.slice(Math.max(0, ids.length - room))];
    });
    const n = body.bestOf ?? 1;
    const ranking = n > 1 ? await rewardModel(rewardModelKey(run)) : undefined;
    const result = await generator.generate({
      params: model.params,
      ...(prompt ? { adapter: prompt.adapter } : {}),
      prompts: prompts.flatMap((p) => Array.from({ length: n }, () => p)),
      maxNewTokens,
      temperature: body.temperature ?? 1,
      topK: body.topK ?? 0,
      topP: body.topP ?? 1,
      seed: body.seed ?? Math.floor(Math.random() * 2 ** 32),
      eosId: tokenizer.eosId,
      padId: tokenizer.padId,
    });
    const responses = result.tokens.map((row, r) => row.filter((_, t) => result.mask[r][t] === 1));
    // Best of n: every sample scored by the reward model (the scoring graph PPO uses), the highest kept.
    let scores: number[] | undefined;
    if (ranking) {
      const width = Math.max(1, ...responses.map((row) => row.length));
      const pad = (row: number[], value: number) => [...row, ...new Array(width - row.length).fill(value)];
      scores = (
        await ranking.scorer.score({
          params: ranking.model.params,
          prompts: prompts.flatMap((p) => Array.from({ length: n }, () => p)),
          padId: tokenizer.padId,
          responses: responses.map((row) => pad(row, tokenizer.padId)),
          responseMask: responses.map((row) =>
            pad(
              row.map(() => 1),
              0,
            ),
          ),
        })
      ).scores;
    }
    return {
      stageId: stage.id,
      completions: body.prompts.map((prompt, i) => {
        let best = i * n;
        for (let r = i * n + 1; r < (i + 1) * n; r++) if (scores && scores[r] > scores[best]) best = r;
        const ids = responses[best].filter((id) => id !== tokenizer.eosId);
        return {
          prompt,
          response: tokenizer.decode(ids, { skipSpecialTokens: true }),
          eos: result.finished[best],
          ...(scores ? { score: scores[best] } : {}),
        };
      }),
    };
  }

  return {
    generate(run, body) {
      const next = queue.then(() => generate(run, body));
      queue = next.catch(() => {});
      return next;
    },
    async close() {
      await queue;
      await loaded?.generator.release();
      await ranker?.scorer.release();
      if (runtime) await (await runtime).close();
    },
  };
}
