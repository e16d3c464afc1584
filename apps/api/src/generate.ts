// POST /v1/runs/:runId/generate: sample from a finished run's policy on the API's CPU. The policy is
// the stage's final model (HF GPT-2 layout: config.json + model.safetensors [+ tokenizer.json]);
// prompts are framed as the trainers frame them: [bos] + prompt tokens, the response ends at EOS.
import type { Logger } from '@rlhf/config';
import type { PolicyStage } from '@rlhf/contracts';
import {
  CheckpointError,
  createGenerator,
  type Generator,
  type LoadedCheckpoint,
  loadCheckpoint,
} from '@rlhf/model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { Static } from 'typebox';
import { ApiError } from './errors.js';
import type { RunWithStages } from './run-store.js';
import type { GenerateBody, GenerateResponse } from './schemas.js';

/** New tokens when the request names none: the PPO stage's maxNewTokens, else this. */
const DEFAULT_NEW_TOKENS = 64;

/** The policy to sample from: the requested stage, else the last finished policy stage (ppo, raft, pro, dpo, then sft). */
export function policyStage(run: RunWithStages, stage?: PolicyStage) {
  const finished = run.stages.filter((st) => st.status === 'succeeded' && st.modelKey !== null);
  const pick = (kind: PolicyStage) => finished.find((st) => st.kind === kind);
  const found = stage
    ? pick(stage)
    : (pick('ppo') ?? pick('raft') ?? pick('pro') ?? pick('dpo') ?? pick('sft'));
  if (!found) {
    const which = stage ? `a finished ${stage} stage` : 'a finished sft, dpo, pro, raft or ppo stage';
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
}

/**
 * One CPU runtime for the process (ORT on its own thread, created on first use) and the last policy
 * used kept loaded. Requests are served one at a time.
 */
export function createSampler(modelDir: (key: string) => string, logger: Logger): Sampler {
  let runtime: Promise<Runtime> | undefined;
  let loaded: LoadedPolicy | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  async function policy(modelKey: string): Promise<LoadedPolicy> {
    if (loaded?.modelKey === modelKey) return loaded;
    let model: LoadedCheckpoint;
    try {
      model = await loadCheckpoint(modelDir(modelKey));
    } catch (error) {
      if (!(error instanceof CheckpointError)) throw error;
      throw new ApiError(409, 'model_unavailable', `the policy model cannot be loaded: ${error.message}`);
    }
    runtime ??= createRuntime({ device: 'cpu', logger: { warn: (message) => logger.warn(message) } });
    const generator = await createGenerator(await runtime, model.config);
    await loaded?.generator.release();
    loaded = { modelKey, model, generator };
    return loaded;
  }

  async function generate(run: RunWithStages, body: GenerateBody): Promise<Static<typeof GenerateResponse>> {
    const stage = policyStage(run, body.stage);
    const { model, generator } = await policy(stage.modelKey);
    const { tokenizer, config } = model;
    const ppo = run.stages.find((st) => st.kind === 'ppo')?.config as { maxNewTokens?: number } | undefined;
    const maxNewTokens =
      body.maxNewTokens ?? Math.min(ppo?.maxNewTokens ?? DEFAULT_NEW_TOKENS, config.maxPositions - 2);
    if (maxNewTokens > config.maxPositions - 2) {
      throw new ApiError(
        400,
        'invalid_request',
        `/maxNewTokens: must be <= ${config.maxPositions - 2} (the model's context is ${config.maxPositions} tokens)`,
        '/maxNewTokens',
      );
    }
    // Long prompts keep their end (where the question is), as PPO does.
    const room = config.maxPositions - maxNewTokens - 1;
    const prompts = body.prompts.map((text) => {
      const ids = tokenizer.encode(text);
      return [tokenizer.bosId, ...ids.slice(Math.max(0, ids.length - room))];
    });
    const result = await generator.generate({
      params: model.params,
      prompts,
      maxNewTokens,
      temperature: body.temperature ?? 1,
      topK: body.topK ?? 0,
      topP: body.topP ?? 1,
      seed: body.seed ?? Math.floor(Math.random() * 2 ** 32),
      eosId: tokenizer.eosId,
      padId: tokenizer.padId,
    });
    return {
      stageId: stage.id,
      completions: body.prompts.map((prompt, i) => {
        const ids = result.tokens[i].filter((id, t) => result.mask[i][t] === 1 && id !== tokenizer.eosId);
        return {
          prompt,
          response: tokenizer.decode(ids, { skipSpecialTokens: true }),
          eos: result.finished[i],
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
      if (runtime) await (await runtime).close();
    },
  };
}
