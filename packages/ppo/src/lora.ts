// PPO with LoRA (config.lora): the policy is an adapter on the SFT weights, which stay the frozen reference (adapter
// off), and the critic an adapter plus a trainable value head on the reward model's weights, which stay the frozen
// reward model. Only the adapters train and cross the session boundary as parameters; the two bases are fed as
// they are. Checkpoints are PEFT adapter files (the critic's prefixed), the result the merged models and adapters.
import type { PpoConfig } from '@rlhf/contracts';
import {
  adapterSize,
  initLora,
  loraSettingsOf,
  mergeLora,
  peftAdapterFiles,
  peftAdapterFromFiles,
  validateLora,
} from '@rlhf/model';
import type { HostTensor, Weights } from '@rlhf/runtime';
import type { CheckpointFiles, ModelWeights, StageAdapter } from '@rlhf/stage-kit';
import { type PpoLora, type PpoModels, paramName } from './graphs.js';
import { frozenBaseFeeds } from './lora-base.js';

/** The value head the critic trains in full beside its adapter (the reward model's scalar head). */
const VALUE_HEAD = 'score';

/** The adapters' settings for this run, checked against the models; undefined without config.lora. */
export function ppoLora(config: PpoConfig, models: PpoModels): PpoLora | undefined {
  if (!config.lora) return undefined;
  const policy = loraSettingsOf(config.lora, models.policy);
  const critic = loraSettingsOf(config.lora, models.critic, [VALUE_HEAD]);
  validateLora(models.policy, policy);
  validateLora(models.critic, critic);
  return { policy, critic };
}

/** What the hyperparameters record: each adapter's settings and trainable size. */
export function loraHyperparameters(models: PpoModels, lora: PpoLora) {
  return {
    policy: { ...lora.policy, trainableParams: adapterSize(models.policy, lora.policy) },
    critic: { ...lora.critic, trainableParams: adapterSize(models.critic, lora.critic) },
  };
}

/**
 * Fresh adapters (PEFT's init: B = 0, so policy = reference and critic = the critic PPO starts from) or the
 * checkpoint's. The critic's head starts as `critic`'s (the reward model's, normalised).
 */
export function loraStart(
  models: PpoModels,
  lora: PpoLora,
  bases: { policy: ModelWeights; critic: ModelWeights },
  seed: number,
  resume: CheckpointFiles | undefined,
  criticPrefix: string,
): { policy: Weights; critic: Weights } {
  if (resume)
    return {
      policy: peftAdapterFromFiles(models.policy, resume).adapter,
      critic: peftAdapterFromFiles(models.critic, unprefixed(resume, criticPrefix)).adapter,
    };
  return {
    policy: initLora(models.policy, lora.policy, bases.policy.params, seed),
    critic: initLora(models.critic, lora.critic, bases.critic.params, seed + 1),
  };
}

/** The train step's frozen inputs: the reference's weights as `ref.*`, the reward model's as `rm.*`. */
export function loraSharedFeeds(
  models: PpoModels,
  lora: PpoLora,
  frozen: { ref: Weights; rm: Weights },
): Record<string, HostTensor> {
  return {
    ...frozenBaseFeeds(models.policy, lora.policy, frozen.ref, paramName('ref', '')),
    ...frozenBaseFeeds(models.critic, lora.critic, frozen.rm, paramName('rm', '')),
  };
}

/** The two adapters' PEFT files, the critic's under `criticPrefix`. */
export function loraFiles(
  models: PpoModels,
  lora: PpoLora,
  adapters: { policy: Weights; critic: Weights },
  criticPrefix: string,
  baseModel: string | null,
): CheckpointFiles {
  const critic = peftAdapterFiles(models.critic, lora.critic, adapters.critic, null);
  return {
    ...peftAdapterFiles(models.policy, lora.policy, adapters.policy, baseModel),
    ...Object.fromEntries(Object.entries(critic).map(([name, bytes]) => [criticPrefix + name, bytes])),
  };
}

/** The stage's models: merged policy and critic (W + s·BA), and the policy's adapter itself. */
export function loraResult(
  models: PpoModels,
  lora: PpoLora,
  adapters: { policy: Weights; critic: Weights },
  frozen: { ref: Weights; rm: Weights },
  baseModel: string | null,
): { model: ModelWeights; critic: ModelWeights; adapter: StageAdapter } {
  return {
    model: {
      config: models.policy,
      params: mergeLora(models.policy, lora.policy, frozen.ref, adapters.policy),
    },
    critic: {
      config: models.critic,
      params: mergeLora(models.critic, lora.critic, frozen.rm, adapters.critic),
    },
    adapter: {
      settings: lora.policy,
      params: adapters.policy,
      files: peftAdapterFiles(models.policy, lora.policy, adapters.policy, baseModel),
      baseModel,
    },
  };
}

function unprefixed(files: CheckpointFiles, prefix: string): CheckpointFiles {
  return Object.fromEntries(
    Object.entries(files)
      .filter(([name]) => name.startsWith(prefix))
      .map(([name, bytes]) => [name.slice(prefix.length), bytes]),
  );
}
