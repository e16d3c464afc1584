import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import {
  checkStageConfig,
  DpoConfig,
  DpoConfigInput,
  PpoConfig,
  ProConfig,
  ProConfigInput,
  RaftConfig,
  RaftConfigInput,
  GrpoConfig,
  GrpoConfigInput,
  PpoConfigInput,
  RewardModelConfig,
  RewardModelConfigInput,
  SftConfig,
  SftConfigInput,
  STAGE_ORDER,
  StageKind,
  withoutDefaults,
} from './configs.js';
import type { DatasetKind } from './datasets.js';
import { EvalConfig, EvalConfigInput, POLICY_STAGES, RunGateSpec } from './eval-stage.js';
import { graderSpecErrors } from './graders.js';
import { type FieldError, pointer, schemaErrors } from './errors.js';

/** Steps, iterations and their totals are stored in 32-bit integer columns. */
export const MAX_STEPS = 2 ** 31 - 1;

// The step counts of a config that the configs leave unbounded above.
function stepErrors(config: object, at: string): FieldError[] {
  const { maxSteps, batchSize, gradientAccumulation, recompute, lora } = config as {
    maxSteps?: unknown;
    batchSize?: number;
    gradientAccumulation?: number;
    recompute?: boolean;
    lora?: { dropout: number };
  };
  const errors: FieldError[] = [];
  if (typeof maxSteps === 'number' && maxSteps > MAX_STEPS)
    errors.push({ path: `${at}/maxSteps`, message: `must be <= ${MAX_STEPS}` });
  // Micro-batches of one step are equal parts of it.
  if (gradientAccumulation !== undefined && batchSize !== undefined && batchSize % gradientAccumulation !== 0)
    errors.push({
      path: `${at}/gradientAccumulation`,
      message: `must divide batchSize (${batchSize}) into equal micro-batches`,
    });
  // A recomputed layer would draw a different dropout mask than its forward did.
  if (recompute && lora && lora.dropout > 0)
    errors.push({ path: `${at}/recompute`, message: 'cannot be combined with lora.dropout > 0' });
  return errors;
}

/** Database ids and names: short, printable, no path tricks. */
export const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });

export const ModelPreset = Type.Enum(['tiny', 'small', 'gpt2'], {
  description:
    'packages/model presets: tiny (2 layers, d=64), small (6 layers, d=384), gpt2 (HF GPT-2 small)',
});
export type ModelPreset = Static<typeof ModelPreset>;

/** Whether a stored name (a run's preset read back from the database) is one of the presets. */
export const isModelPreset = (name: unknown): name is ModelPreset => Value.Check(ModelPreset, name);

export { POLICY_STAGES, type PolicyStage } from './eval-stage.js';

/** Start from a freshly initialised model preset. */
export const PresetModel = Type.Object({ preset: ModelPreset }, { additionalProperties: false });

/**
 * Start from an earlier run of the same team: its `stage` policy ('sft' by default) seeds this run's
 * policy, and its reward model serves a PPO stage that this run does not train one for.
 */
export const FromRunModel = Type.Object(
  {
    fromRun: Id,
    stage: Type.Optional(Type.Enum(POLICY_STAGES, { description: 'which policy of that run to start from' })),
  },
  { additionalProperties: false },
);

/** Start from a model the team registered (POST /v1/models): its weights, tokenizer and architecture. */
export const RegisteredModel = Type.Object(
  { modelId: Id },
  { additionalProperties: false, description: 'a model of the team, uploaded with POST /v1/models' },
);

export const ModelSource = Type.Union([PresetModel, RegisteredModel, FromRunModel]);
export type ModelSource = Static<typeof ModelSource>;

/** The dataset kinds each stage trains on. */
export const STAGE_DATASET_KINDS: Readonly<Record<StageKind, readonly DatasetKind[]>> = {
  sft: ['sft'],
  reward_model: ['preference', 'ranked'],
  dpo: ['preference', 'ranked'],
  pro: ['preference', 'ranked'],
  raft: ['prompt'],
  grpo: ['prompt'],
  ppo: ['prompt'],
  eval: ['prompt'],
};

const stage = <
  K extends string,
  C extends
    | typeof SftConfig
    | typeof RewardModelConfig
    | typeof DpoConfig
    | typeof ProConfig
    | typeof RaftConfig
    | typeof GrpoConfig
    | typeof PpoConfig
    | typeof EvalConfig,
>(
  kind: K,
  config: C,
) => Type.Object({ kind: Type.Literal(kind), datasetId: Id, config }, { additionalProperties: false });
const stageInput = <
  K extends string,
  C extends
    | typeof SftConfigInput
    | typeof RewardModelConfigInput
    | typeof DpoConfigInput
    | typeof ProConfigInput
    | typeof RaftConfigInput
    | typeof GrpoConfigInput
    | typeof PpoConfigInput
    | typeof EvalConfigInput,
>(
  kind: K,
  config: C,
) =>
  Type.Object(
    { kind: Type.Literal(kind), datasetId: Id, config: Type.Optional(config) },
    { additionalProperties: false },
  );

export const StageSpecInput = Type.Union([
  stageInput('sft', SftConfigInput),
  stageInput('reward_model', RewardModelConfigInput),
  stageInput('dpo', DpoConfigInput),
  stageInput('pro', ProConfigInput),
  stageInput('raft', RaftConfigInput),
  stageInput('grpo', GrpoConfigInput),
  stageInput('ppo', PpoConfigInput),
  stageInput('eval', EvalConfigInput),
]);
export type StageSpecInput = Static<typeof StageSpecInput>;

export const StageSpec = Type.Union([
  stage('sft', withoutDefaults(SftConfig)),
  stage('reward_model', withoutDefaults(RewardModelConfig)),
  stage('dpo', withoutDefaults(DpoConfig)),
  stage('pro', withoutDefaults(ProConfig)),
  stage('raft', withoutDefaults(RaftConfig)),
  stage('grpo', withoutDefaults(GrpoConfig)),
  stage('ppo', withoutDefaults(PpoConfig)),
  stage('eval', withoutDefaults(EvalConfig)),
]);
export type StageSpec = Static<typeof StageSpec>;

const runFields = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]+$' })),
  model: ModelSource,
  /** A release gate on the run's eval stage (the same as that stage's config.gate). */
  gate: Type.Optional(RunGateSpec),
};

/** What `POST /v1/runs` accepts: stages run in the order sft → reward_model → ppo. */
export const RunSpecInput = Type.Object(
  { ...runFields, stages: Type.Array(StageSpecInput, { minItems: 1, maxItems: STAGE_ORDER.length }) },
  { additionalProperties: false },
);
export type RunSpecInput = Static<typeof RunSpecInput>;

/** A validated run spec with every stage config resolved: what is stored and recorded with the run. */
export const RunSpec = Type.Object(
  { ...runFields, stages: Type.Array(StageSpec, { minItems: 1, maxItems: STAGE_ORDER.length }) },
  { additionalProperties: false },
);
export type RunSpec = Static<typeof RunSpec>;

// A stage's fields apart from its config, which checkStageConfig checks for the stage's kind.
const StageShape = Type.Object(
  { kind: StageKind, datasetId: Id, config: Type.Optional(Type.Unknown()) },
  { additionalProperties: false },
);

/** Facts the API knows and the spec refers to; rules that need a missing fact are not checked. */
export interface RunSpecContext {
  /** The kind of each dataset the team may use, by id. */
  datasets?: Readonly<Record<string, DatasetKind>>;
  /** Stages of the `model.fromRun` run that finished (their checkpoints exist). */
  fromRunStages?: readonly StageKind[];
}

export type RunSpecResult = { ok: true; spec: RunSpec; errors: [] } | { ok: false; errors: FieldError[] };

/** Checks a run spec (shape, every config value, stage rules) and resolves its configs. */
export function validateRunSpec(input: unknown, context: RunSpecContext = {}): RunSpecResult {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, errors: [{ path: '', message: 'must be an object' }] };
  }
  const raw = input as Record<string, unknown>;
  const errors: FieldError[] = [];
  for (const key of Object.keys(raw)) {
    if (!['name', 'model', 'stages', 'gate'].includes(key))
      errors.push({ path: pointer('', key), message: 'unknown field' });
  }
  if (raw.name !== undefined) errors.push(...schemaErrors(runFields.name, raw.name, '/name'));
  if (raw.gate !== undefined) errors.push(...schemaErrors(RunGateSpec, raw.gate, '/gate'));
  const model = raw.model;
  const has = (key: string) => typeof model === 'object' && model !== null && key in model;
  const fromRun = has('fromRun');
  const registered = !fromRun && has('modelId');
  errors.push(
    ...schemaErrors(fromRun ? FromRunModel : registered ? RegisteredModel : PresetModel, model, '/model'),
  );

  const stages: StageSpec[] = [];
  if (!Array.isArray(raw.stages)) {
    errors.push({ path: '/stages', message: raw.stages === undefined ? 'required' : 'must be an array' });
  } else if (raw.stages.length === 0) {
    errors.push({ path: '/stages', message: 'must have at least 1 stage' });
  } else {
    raw.stages.forEach((item: unknown, i) => {
      const at = pointer('/stages', i);
      const kind = (item as { kind?: unknown } | null)?.kind;
      if (!STAGE_ORDER.includes(kind as StageKind)) {
        errors.push({
          path: `${at}/kind`,
          message: `must be one of ${STAGE_ORDER.map((k) => `"${k}"`).join(', ')}`,
        });
        return;
      }
      const shape = schemaErrors(StageShape, item, at);
      const { datasetId, config } = item as { datasetId: string; config?: unknown };
      const checked = checkStageConfig(kind as StageKind, config, `${at}/config`);
      const steps = checked.config ? stepErrors(checked.config, `${at}/config`) : [];
      errors.push(...shape, ...checked.errors, ...steps);
      if (shape.length === 0 && steps.length === 0 && checked.config)
        stages.push({ kind, datasetId, config: checked.config } as StageSpec);
    });
    errors.push(
      ...stageRuleErrors(
        raw.stages,
        fromRun ? (model as Static<typeof FromRunModel>) : null,
        registered,
        context,
      ),
    );
  }
  errors.push(...evalStageErrors(raw, stages));
  if (errors.length > 0) return { ok: false, errors };
  // A run-level gate is its eval stage's gate.
  const { against: _against, ...gate } = (raw.gate ?? {}) as RunGateSpec;
  const gated = stages.map((st) =>
    st.kind === 'eval' && raw.gate !== undefined ? { ...st, config: { ...st.config, gate } } : st,
  ) as StageSpec[];
  const spec = {
    ...(raw.name === undefined ? {} : { name: raw.name }),
    model,
    stages: gated,
    ...(raw.gate === undefined ? {} : { gate: raw.gate }),
  } as RunSpec;
  return { ok: true, spec, errors: [] };
}

// An eval stage's references to this run: the stage it compares against, its reward-model judge; a run-level gate.
function evalStageErrors(raw: Record<string, unknown>, stages: StageSpec[]): FieldError[] {
  const errors: FieldError[] = [];
  const at = Array.isArray(raw.stages)
    ? raw.stages.findIndex((st) => (st as { kind?: unknown } | null)?.kind === 'eval')
    : -1;
  if (raw.gate !== undefined && at < 0)
    errors.push({ path: '/gate', message: 'a gate needs an eval stage at the end of the run to measure it' });
  const evalStage = stages.find((st) => st.kind === 'eval');
  if (!evalStage || at < 0) return errors;
  const base = `/stages/${at}/config`;
  if (raw.gate !== undefined && evalStage.config.gate !== null)
    errors.push({ path: '/gate', message: `set the gate here or at ${base}/gate, not both` });
  const gateAgainst = (raw.gate as RunGateSpec | undefined)?.against;
  if (gateAgainst !== undefined && !Value.Equal(gateAgainst, evalStage.config.against))
    errors.push({
      path: '/gate/against',
      message: `the gate is measured by the eval stage: must be its against (${JSON.stringify(evalStage.config.against)})`,
    });
  const kinds = stages.map((st) => st.kind);
  const { against, judge } = evalStage.config;
  if ('stage' in against && !('runId' in against) && !kinds.includes(against.stage))
    errors.push({ path: `${base}/against/stage`, message: `the run has no ${against.stage} stage` });
  const trained = stages.filter((st) => (POLICY_STAGES as readonly string[]).includes(st.kind)).at(-1);
  if (evalStage.config.checkpoints !== null && !trained)
    errors.push({
      path: `${base}/checkpoints`,
      message: 'the run has no policy stage whose checkpoints to compare',
    });
  else if (evalStage.config.checkpoints !== null && 'stage' in against && against.stage === trained?.kind)
    errors.push({
      path: `${base}/checkpoints`,
      message: `the checkpoints of the ${against.stage} stage cannot be compared against that stage itself`,
    });
  if (judge.type === 'grader') errors.push(...graderSpecErrors(judge.grader, `${base}/judge/grader`));
  if (judge.type === 'reward_model' && judge.runId !== undefined && judge.modelId !== undefined)
    errors.push({ path: `${base}/judge`, message: 'name a runId or a modelId, not both' });
  return errors;
}

// The pipeline rules: order, uniqueness, dataset kinds, and that PPO has a policy and a reward model.
function stageRuleErrors(
  items: unknown[],
  fromRun: Static<typeof FromRunModel> | null,
  registered: boolean,
  context: RunSpecContext,
): FieldError[] {
  const errors: FieldError[] = [];
  const kinds = items.map((s) => (s as { kind?: unknown } | null)?.kind as StageKind);
  const has = (kind: StageKind) => kinds.includes(kind);
  const earlier = (kind: StageKind) => fromRun !== null && (context.fromRunStages?.includes(kind) ?? true);

  if (fromRun && context.fromRunStages && !context.fromRunStages.includes(fromRun.stage ?? 'sft')) {
    errors.push({
      path: '/model/fromRun',
      message: `run ${fromRun.fromRun} has no finished ${fromRun.stage ?? 'sft'} stage`,
    });
  }
  kinds.forEach((kind, i) => {
    const at = pointer('/stages', i);
    if (!STAGE_ORDER.includes(kind)) return;
    if (kinds.indexOf(kind) !== i) {
      errors.push({ path: `${at}/kind`, message: `"${kind}" appears more than once` });
    } else if (kinds.slice(0, i).some((k) => STAGE_ORDER.indexOf(k) > STAGE_ORDER.indexOf(kind))) {
      errors.push({ path: `${at}/kind`, message: `stages must be in the order ${STAGE_ORDER.join(' -> ')}` });
    }
    const datasetId = (items[i] as { datasetId?: unknown }).datasetId;
    if (context.datasets && typeof datasetId === 'string') {
      const datasetKind = context.datasets[datasetId];
      const accepted = STAGE_DATASET_KINDS[kind];
      if (datasetKind === undefined) {
        errors.push({ path: `${at}/datasetId`, message: `unknown dataset ${datasetId}` });
      } else if (!accepted.includes(datasetKind)) {
        errors.push({
          path: `${at}/datasetId`,
          message: `dataset ${datasetId} is of kind "${datasetKind}"; a ${kind} stage needs ${accepted.map((k) => `"${k}"`).join(' or ')}`,
        });
      }
    }
    const policy =
      registered || has('sft') || earlier('sft') || (fromRun?.stage !== undefined && earlier(fromRun.stage));
    if (kind === 'dpo' && !policy) {
      errors.push({
        path: at,
        message:
          'a dpo stage needs a policy to start from and to keep as its reference: add an sft stage or set model.fromRun',
      });
    }
    if (kind === 'pro' && !policy) {
      errors.push({
        path: at,
        message: 'a pro stage needs a policy to start from: add an sft stage or set model.fromRun',
      });
    }
    if (kind === 'ppo' && !policy) {
      errors.push({
        path: at,
        message: 'a ppo stage needs an SFT policy: add an sft stage or set model.fromRun',
      });
    }
    if (kind === 'ppo' && !has('reward_model') && !earlier('reward_model')) {
      errors.push({
        path: at,
        message:
          'a ppo stage needs a reward model: add a reward_model stage or set model.fromRun to a run with one',
      });
    }
    const reward = (items[i] as { config?: { reward?: unknown } }).config?.reward ?? 'reward_model';
    if (kind === 'grpo' && !policy) {
      errors.push({
        path: at,
        message: 'a grpo stage needs a policy to sample from: add an sft stage or set model.fromRun',
      });
    }
    if (kind === 'grpo' && reward === 'reward_model' && !has('reward_model') && !earlier('reward_model')) {
      errors.push({
        path: `${at}/config/reward`,
        message:
          "reward 'reward_model' needs a reward_model stage or model.fromRun to a run with one; or name a programmatic reward",
      });
    }
    if (kind === 'raft' && !policy) {
      errors.push({
        path: at,
        message: 'a raft stage needs a policy to sample from: add an sft stage or set model.fromRun',
      });
    }
    if (kind === 'raft' && !has('reward_model') && !earlier('reward_model')) {
      errors.push({
        path: at,
        message:
          'a raft stage needs a reward model to rank its samples: add a reward_model stage or set model.fromRun to a run with one',
      });
    }
    if (kind === 'eval' && !policy && !POLICY_STAGES.some((k) => has(k))) {
      errors.push({
        path: at,
        message:
          'an eval stage needs a policy to evaluate: add a policy stage, a registered model or model.fromRun',
      });
    }
    const judge = (
      items[i] as { config?: { judge?: { type?: unknown; runId?: unknown; modelId?: unknown } } }
    ).config?.judge;
    const ownRewardModel =
      judge?.type === 'reward_model' && judge.runId === undefined && judge.modelId === undefined;
    if (kind === 'eval' && ownRewardModel && !has('reward_model') && !earlier('reward_model')) {
      errors.push({
        path: `${at}/config/judge`,
        message:
          "a reward_model judge without runId or modelId is this run's reward model: add a reward_model stage, set model.fromRun to a run with one, or name one",
      });
    }
    const init = (items[i] as { config?: { init?: unknown } }).config?.init ?? 'sft';
    if (kind === 'reward_model' && init === 'sft' && !policy) {
      errors.push({
        path: `${at}/config/init`,
        message:
          'init "sft" needs an sft stage before it or model.fromRun; use init "fresh" to start from the preset',
      });
    }
  });
  return errors;
}
