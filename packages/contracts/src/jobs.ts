import Type, { type Static } from 'typebox';
import {
  DpoConfig,
  PpoConfig,
  ProConfig,
  RaftConfig,
  GrpoConfig,
  RewardModelConfig,
  SftConfig,
  StageKind,
  withoutDefaults,
} from './configs.js';
import type { DatasetKind } from './datasets.js';
import { EvalConfig } from './eval-stage.js';
import { Id, ModelPreset } from './run-spec.js';

// What the API puts on the BullMQ stage queue and what a worker hands back. Workers read only Redis
// and the artifact store, so a job carries every fact a stage needs; `config` is the resolved config.

const Key = Type.String({ minLength: 1, maxLength: 512, description: 'artifact store key' });
const closed = { additionalProperties: false } as const;

/**
 * A policy stage followed by an eval stage with `checkpoints`: its checkpoints are compared as that eval stage
 * compares the final policy (against, judge, sampling; prompts from `datasetKey`). Keys of this run's stages may
 * be left out (read from the children's results).
 */
const CheckpointEval = Type.Object(
  {
    config: withoutDefaults(EvalConfig),
    datasetKey: Key,
    inputs: Type.Object({ against: Type.Optional(Key), rewardModel: Type.Optional(Key) }, closed),
    names: Type.Object(
      { policy: Type.String({ maxLength: 200 }), against: Type.String({ maxLength: 200 }) },
      closed,
    ),
  },
  closed,
);
export type CheckpointEval = Static<typeof CheckpointEval>;

const common = {
  runId: Id,
  stageId: Id,
  teamId: Id,
  /** Architecture of the policy (for fromRun runs: the preset of the run it started from); null = registered. */
  modelPreset: Type.Union([ModelPreset, Type.Null()]),
  /** The registered model's files (config.json, model.safetensors, tokenizer): the architecture and tokenizer. */
  baseModel: Type.Optional(Key),
  checkpointEval: Type.Optional(CheckpointEval),
};
const dataset = <K extends DatasetKind[]>(kinds: [...K]) =>
  Type.Object({ id: Id, key: Key, kind: Type.Enum(kinds) }, closed);

/** SFT: `inputs.policy` is the checkpoint to fine-tune (fromRun), absent = fresh preset weights. */
export const SftJobData = Type.Object(
  {
    ...common,
    kind: Type.Literal('sft'),
    config: withoutDefaults(SftConfig),
    dataset: dataset(['sft']),
    inputs: Type.Object({ policy: Type.Optional(Key) }, closed),
  },
  closed,
);

/** Reward model: `inputs.policy` initialises it when config.init is 'sft'. */
export const RewardModelJobData = Type.Object(
  {
    ...common,
    kind: Type.Literal('reward_model'),
    config: withoutDefaults(RewardModelConfig),
    dataset: dataset(['preference', 'ranked']),
    inputs: Type.Object({ policy: Type.Optional(Key) }, closed),
  },
  closed,
);

/** DPO: `inputs.policy` is the starting policy and the frozen reference (the run's SFT model, or fromRun). */
export const DpoJobData = Type.Object(
  {
    ...common,
    kind: Type.Literal('dpo'),
    config: withoutDefaults(DpoConfig),
    dataset: dataset(['preference', 'ranked']),
    inputs: Type.Object({ policy: Type.Optional(Key) }, closed),
  },
  closed,
);

/** PRO / RRHF: `inputs.policy` is the starting policy (no reference). */
export const ProJobData = Type.Object(
  {
    ...common,
    kind: Type.Literal('pro'),
    config: withoutDefaults(ProConfig),
    dataset: dataset(['preference', 'ranked']),
    inputs: Type.Object({ policy: Type.Optional(Key) }, closed),
  },
  closed,
);

/** RAFT: `inputs.policy` samples and is fine-tuned; `inputs.rewardModel` ranks its samples. */
export const RaftJobData = Type.Object(
  {
    ...common,
    kind: Type.Literal('raft'),
    config: withoutDefaults(RaftConfig),
    dataset: dataset(['prompt']),
    inputs: Type.Object({ policy: Type.Optional(Key), rewardModel: Type.Optional(Key) }, closed),
  },
  closed,
);

/** GRPO / RLOO: `inputs.policy` samples, is updated and (β > 0) is the reference; `inputs.rewardModel` when the reward is one. */
export const GrpoJobData = Type.Object(
  {
    ...common,
    kind: Type.Literal('grpo'),
    config: withoutDefaults(GrpoConfig),
    dataset: dataset(['prompt']),
    inputs: Type.Object({ policy: Type.Optional(Key), rewardModel: Type.Optional(Key) }, closed),
  },
  closed,
);

/**
 * PPO: `inputs.policy` is both the starting policy and the frozen reference π_ref; `inputs.rewardModel`
 * scores responses. Keys of stages in the same run are known only after they finish: the API may leave
 * them out and the worker reads them from the children's results (StageJobResult).
 */
export const PpoJobData = Type.Object(
  {
    ...common,
    kind: Type.Literal('ppo'),
    config: withoutDefaults(PpoConfig),
    dataset: dataset(['prompt']),
    inputs: Type.Object({ policy: Type.Optional(Key), rewardModel: Type.Optional(Key) }, closed),
  },
  closed,
);

/**
 * Eval: `inputs.policy` (the run's last policy) against `inputs.against`, judged by `inputs.rewardModel` when the
 * judge is a reward model; `names` are the two models' leaderboard names. Keys of this run's stages may be left
 * out (read from the children's results, like PPO's).
 */
export const EvalJobData = Type.Object(
  {
    ...common,
    kind: Type.Literal('eval'),
    config: withoutDefaults(EvalConfig),
    dataset: dataset(['prompt']),
    inputs: Type.Object(
      { policy: Type.Optional(Key), against: Type.Optional(Key), rewardModel: Type.Optional(Key) },
      closed,
    ),
    names: Type.Object(
      { policy: Type.String({ maxLength: 200 }), against: Type.String({ maxLength: 200 }) },
      closed,
    ),
  },
  closed,
);

export const StageJobData = Type.Union([
  SftJobData,
  RewardModelJobData,
  DpoJobData,
  ProJobData,
  RaftJobData,
  GrpoJobData,
  PpoJobData,
  EvalJobData,
]);
export type StageJobData = Static<typeof StageJobData>;
export type SftJobData = Static<typeof SftJobData>;
export type RewardModelJobData = Static<typeof RewardModelJobData>;
export type DpoJobData = Static<typeof DpoJobData>;
export type ProJobData = Static<typeof ProJobData>;
export type RaftJobData = Static<typeof RaftJobData>;
export type GrpoJobData = Static<typeof GrpoJobData>;
export type PpoJobData = Static<typeof PpoJobData>;
export type EvalJobData = Static<typeof EvalJobData>;

/** A finished stage's return value: where its final model is (the next stage's input). */
export const StageJobResult = Type.Object(
  {
    stageId: Id,
    kind: StageKind,
    modelKey: Key,
    step: Type.Integer({ minimum: 0, description: 'optimizer steps (PPO: iterations) done' }),
  },
  closed,
);
export type StageJobResult = Static<typeof StageJobResult>;
