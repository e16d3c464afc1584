import Type, { type Static, type TSchema } from 'typebox';
import type { StageKind } from './configs.js';
import { Id, ModelPreset, POLICY_STAGES } from './run-spec.js';

// What is recorded with a run beyond its spec: where its model comes from (columns of the Run row) and,
// per stage, what the worker reported when it started and what the trainer resolved (columns of the
// Stage row, each written by that stage's own events). The API shows them as `hyperparameters`.

const closed = { additionalProperties: false } as const;
const Nullable = <T extends TSchema>(type: T) => Type.Union([type, Type.Null()]);
const Key = Type.String({ minLength: 1, maxLength: 512, description: 'artifact store key' });

/** Any JSON value: trainers report settings of their own (vocabulary size, caps to the model's context). */
export const JsonValue = Type.Unsafe<unknown>({ description: 'any JSON value' });

/** Settings a worker or trainer reported, by name. */
export const ReportedSettings = Type.Record(Type.String(), JsonValue, {
  description: 'settings by name, as the worker or trainer reported them',
});
export type ReportedSettings = Static<typeof ReportedSettings>;

/** model.fromRun resolved: the earlier run and the artifact keys of the models this run starts from. */
export const FromRunSource = Type.Object(
  {
    runId: Id,
    stage: Type.Enum(POLICY_STAGES, { description: 'the policy of that run this run starts from' }),
    policy: Key,
    rewardModel: Nullable(Key),
  },
  closed,
);
export type FromRunSource = Static<typeof FromRunSource>;

/** model.modelId resolved: the registered model and where its files are. */
export const RegisteredModelSource = Type.Object({ modelId: Id, key: Key }, closed);
export type RegisteredModelSource = Static<typeof RegisteredModelSource>;

/** Where a run's model comes from (Run columns): a preset or a registered model, and maybe an earlier run. */
export const ModelRecord = Type.Object(
  {
    modelPreset: Nullable(ModelPreset),
    registeredModel: Nullable(RegisteredModelSource),
    fromRun: Nullable(FromRunSource),
  },
  closed,
);
export type ModelRecord = Static<typeof ModelRecord>;

/** What is recorded for one stage (Stage columns): its resolved config merged with what the worker reported. */
const stageRecord = (kind: string) =>
  Type.Object(
    { resolved: Type.Optional(ReportedSettings) },
    {
      additionalProperties: JsonValue,
      description: `the ${kind} stage's resolved config merged with the settings the worker reported when it started; resolved: what the trainer resolved (set once the stage finished)`,
    },
  );

/** The resolved settings of a run, as the API shows them (`hyperparameters` of a run). */
export const RunRecord = Type.Object(
  {
    ...ModelRecord.properties,
    stages: Type.Object(
      {
        sft: Type.Optional(stageRecord('sft')),
        reward_model: Type.Optional(stageRecord('reward_model')),
        dpo: Type.Optional(stageRecord('dpo')),
        pro: Type.Optional(stageRecord('pro')),
        raft: Type.Optional(stageRecord('raft')),
        grpo: Type.Optional(stageRecord('grpo')),
        ppo: Type.Optional(stageRecord('ppo')),
      },
      closed,
    ),
  },
  closed,
);
/** A stage's record: `resolved` plus the settings by name (the schema's additionalProperties). */
export type StageRecord = Static<ReturnType<typeof stageRecord>> & { [setting: string]: unknown };
export type RunRecord = ModelRecord & {
  stages: Partial<Record<StageKind, StageRecord>>;
};
