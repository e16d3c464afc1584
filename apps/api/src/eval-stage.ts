// A run's `eval` stage on the API side: at submission the models it names outside the run become artifact keys and
// leaderboard names (400 naming the field when unknown); at admission its job gets the run's last policy, the model
// it is compared with and its judge; the run view shows its gate (events/eval-record.ts records its comparison).
import {
  type CheckpointEval,
  type EvalConfig,
  type EvalJobData,
  type FieldError,
  POLICY_STAGES,
  type RunGate,
  type RunSpec,
  type StageKind,
} from '@rlhf/contracts';
import type { Stage as StageRow, Team } from '@rlhf/db';
import * as store from './run-store.js';
import type { Services } from './services.js';

type EvalStageSpec = Extract<RunSpec['stages'][number], { kind: 'eval' }>;
const isPolicy = (kind: string) => (POLICY_STAGES as readonly string[]).includes(kind);

/** The leaderboard name of a run's policy stage (standalone evaluations name them the same way). */
export const runModelName = (runId: string, kind: string) => `run:${runId}:${kind}`;

/** A finished policy of one of the team's runs: `stage`, or its last one. */
async function runPolicy(s: Services, team: Team, runId: string, stage: string | undefined) {
  const run = await store.findRun(s.prisma, team.id, runId);
  if (!run) return { run: null, chosen: undefined };
  const finished = store.finishedModels(run).filter((m) => isPolicy(m.kind));
  return { run, chosen: stage ? finished.find((m) => m.kind === stage) : finished.at(-1) };
}

async function registeredModel(s: Services, team: Team, modelId: string) {
  return s.prisma.model.findFirst({ where: { id: modelId, teamId: team.id } });
}

/**
 * Resolves what the spec's eval stage names outside the run (config.resolved): the model it is compared with, a
 * judge reward model of another run or registered, and the policy's name when no stage of this run makes it.
 * Returns the errors (path under /stages/i/config).
 */
export async function resolveEvalStage(s: Services, team: Team, spec: RunSpec): Promise<FieldError[]> {
  const i = spec.stages.findIndex((st) => st.kind === 'eval');
  if (i < 0) return [];
  const stage = spec.stages[i] as EvalStageSpec;
  const at = `/stages/${i}/config`;
  const { against, judge } = stage.config;
  const errors: FieldError[] = [];
  const resolved: NonNullable<EvalConfig['resolved']> = {};

  if ('runId' in against) {
    const { run, chosen } = await runPolicy(s, team, against.runId, against.stage);
    if (!run) errors.push({ path: `${at}/against/runId`, message: `unknown run ${against.runId}` });
    else if (!chosen)
      errors.push({
        path: `${at}/against`,
        message: `run ${against.runId} has no finished ${against.stage ?? 'policy'} stage`,
      });
    else resolved.against = { name: runModelName(run.id, chosen.kind), key: chosen.modelKey };
  } else if ('modelId' in against) {
    const row = await registeredModel(s, team, against.modelId);
    if (!row) errors.push({ path: `${at}/against/modelId`, message: `unknown model ${against.modelId}` });
    else resolved.against = { name: `model:${row.name}`, key: row.key };
  }

  if (judge.type === 'reward_model' && judge.runId !== undefined) {
    const run = await store.findRun(s.prisma, team.id, judge.runId);
    const key =
      (run && store.finishedModels(run).find((m) => m.kind === 'reward_model')?.modelKey) ??
      run?.fromRunRewardModelKey;
    if (!key)
      errors.push({
        path: `${at}/judge/runId`,
        message: run ? `run ${judge.runId} has no finished reward model` : `unknown run ${judge.runId}`,
      });
    else resolved.judgeKey = key;
  } else if (judge.type === 'reward_model' && judge.modelId !== undefined) {
    const row = await registeredModel(s, team, judge.modelId);
    const scalar = (row?.config as { scalarHead?: unknown } | undefined)?.scalarHead === true;
    if (!row) errors.push({ path: `${at}/judge/modelId`, message: `unknown model ${judge.modelId}` });
    else if (!scalar)
      errors.push({
        path: `${at}/judge/modelId`,
        message: `model ${judge.modelId} is a language model, not a reward model (no scalar score head)`,
      });
    else resolved.judgeKey = row.key;
  }

  // The policy comes from outside the run when no stage of it trains one.
  if (!spec.stages.some((st) => isPolicy(st.kind))) {
    if ('fromRun' in spec.model)
      resolved.policy = runModelName(spec.model.fromRun, spec.model.stage ?? 'sft');
    else if ('modelId' in spec.model) {
      const row = await registeredModel(s, team, spec.model.modelId);
      if (row) resolved.policy = `model:${row.name}`;
    }
  }
  if (errors.length === 0) stage.config = { ...stage.config, resolved };
  return errors;
}

type RunStage = Pick<StageRow, 'index' | 'kind' | 'status' | 'modelKey' | 'config'>;

/**
 * The inputs and names of an eval stage's job. Models of this run's stages that have not finished yet come from
 * the children's results (the worker's resolveInputs); `from(kind, fallback)` is admission's lookup of them.
 */
export function evalJobParts(
  run: { id: string; stages: RunStage[]; fromRunPolicyKey: string | null; baseModelKey: string | null },
  stage: RunStage,
  from: (kind: StageKind, fallback: string | undefined) => string | undefined,
  rewardModel: string | undefined,
): Pick<EvalJobData, 'inputs' | 'names'> {
  const config = stage.config as unknown as EvalConfig;
  const resolved = config.resolved ?? {};
  const policyStage = [...run.stages]
    .filter((o) => o.index < stage.index && isPolicy(o.kind))
    .sort((a, b) => b.index - a.index)[0];
  const policy = policyStage
    ? from(policyStage.kind, undefined)
    : (run.fromRunPolicyKey ?? run.baseModelKey ?? undefined);
  const ownStage = 'stage' in config.against && !('runId' in config.against) ? config.against.stage : null;
  const against = ownStage ? from(ownStage, undefined) : resolved.against?.key;
  const judgeKey = config.judge.type === 'reward_model' ? (resolved.judgeKey ?? rewardModel) : undefined;
  return {
    inputs: {
      ...(policy ? { policy } : {}),
      ...(against ? { against } : {}),
      ...(judgeKey ? { rewardModel: judgeKey } : {}),
    },
    names: {
      policy: policyStage
        ? runModelName(run.id, policyStage.kind)
        : (resolved.policy ?? runModelName(run.id, 'base')),
      against: ownStage ? runModelName(run.id, ownStage) : (resolved.against?.name ?? 'against'),
    },
  };
}

/**
 * The checkpoint evaluation a policy stage's job carries: set on the last policy stage before an eval stage whose
 * config has `checkpoints`, with that eval stage's against, judge and names.
 */
export function checkpointEvalOf(
  run: Parameters<typeof evalJobParts>[0],
  stage: RunStage,
  from: (kind: StageKind, fallback: string | undefined) => string | undefined,
  rewardModel: string | undefined,
  datasetKey: (index: number) => string | undefined,
): CheckpointEval | undefined {
  const evalStage = run.stages.find((st) => st.kind === 'eval');
  const config = evalStage?.config as unknown as EvalConfig | undefined;
  if (!evalStage || !config?.checkpoints || !isPolicy(stage.kind)) return undefined;
  const last = run.stages.filter((st) => st.index < evalStage.index && isPolicy(st.kind)).at(-1);
  const key = datasetKey(evalStage.index);
  if (last?.index !== stage.index || !key) return undefined;
  const { inputs, names } = evalJobParts(run, evalStage, from, rewardModel);
  return {
    config,
    datasetKey: key,
    inputs: {
      ...(inputs.against ? { against: inputs.against } : {}),
      ...(inputs.rewardModel ? { rewardModel: inputs.rewardModel } : {}),
    },
    names,
  };
}

/** The gate of a run's eval stage: its measured verdict (hyperparameters.json), or pending; null = no gate. */
export function runGate(
  stages: readonly Pick<StageRow, 'id' | 'kind' | 'config' | 'resolved'>[],
): RunGate | null {
  const stage = stages.find((st) => st.kind === 'eval');
  const gate = (stage?.config as unknown as EvalConfig | undefined)?.gate;
  if (!stage || !gate) return null;
  const measured = (stage.resolved as { gate?: Omit<RunGate, 'stageId'> } | null)?.gate;
  if (measured) return { stageId: stage.id, ...measured };
  return {
    stageId: stage.id,
    passed: null,
    winRate: null,
    interval: null,
    minWinRate: gate.minWinRate,
    rule: gate.rule ?? 'lower',
  };
}
