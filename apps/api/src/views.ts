// Database rows -> API resources (times as ISO strings, byte counts as numbers, absent facts as null).
import {
  type Artifact,
  type Dataset,
  isModelPreset,
  type MetricPoint,
  type ModelPreset,
  POLICY_STAGES,
  type RunRecord,
  type RunSpec,
  type Sample,
  type Stage,
  type StageRecord,
} from '@rlhf/contracts';
import type {
  Artifact as ArtifactRow,
  Dataset as DatasetRow,
  MetricPoint as MetricRow,
  Run as RunRow,
  Sample as SampleRow,
  Stage as StageRow,
  Prisma,
  Team,
} from '@rlhf/db';
import { runGate } from './eval-stage.js';
import type { RunView, StageView, TeamView } from './schemas.js';

const iso = (time: Date | null): string | null => (time ? time.toISOString() : null);

export function datasetView(row: DatasetRow): Dataset {
  return {
    id: row.id,
    teamId: row.teamId,
    name: row.name,
    kind: row.kind,
    rowCount: row.rows,
    sizeBytes: Number(row.bytes),
    sha256: row.sha256,
    createdAt: row.createdAt.toISOString(),
  };
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

export function stageView(row: StageRow, latestMetrics: Record<string, number> = {}): StageView {
  return {
    id: row.id,
    runId: row.runId,
    kind: row.kind,
    position: row.index,
    status: row.status,
    datasetId: row.datasetId ?? '',
    config: row.config as Stage['config'],
    step: row.currentStep,
    totalSteps: row.totalSteps,
    attempts: row.attempts,
    workerId: row.workerId,
    error: row.error,
    createdAt: row.createdAt.toISOString(),
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
    progress: row.status === 'succeeded' ? 1 : Math.min(1, Math.max(0, row.progress)),
    latestMetrics,
    modelKey: row.modelKey,
  };
}

/** `latest` maps a stage id to its metrics' last values. */
export function runView(
  row: RunRow & { stages: StageRow[] },
  latest: ReadonlyMap<string, Record<string, number>> = new Map(),
): RunView {
  const stages = [...row.stages].sort((a, b) => a.index - b.index).map((s) => stageView(s, latest.get(s.id)));
  const progress = stages.length === 0 ? 0 : stages.reduce((sum, s) => sum + s.progress, 0) / stages.length;
  return {
    id: row.id,
    teamId: row.teamId,
    name: row.name === '' ? null : row.name,
    status: row.status,
    spec: row.spec as RunSpec,
    stages,
    createdAt: row.createdAt.toISOString(),
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
    progress,
    error: row.error,
    hyperparameters: runRecord(row),
    admittedAt: iso(row.admittedAt),
    priority: row.priority,
    gate: runGate(row.stages),
  };
}

export const isFinished = (status: string): boolean => FINISHED.has(status);

// JSON columns hold settings by name; anything else (never written) reads as none.
const settings = (value: Prisma.JsonValue): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};

/** The run record from its columns: model source on the run, each stage's settings on its own row. */
export function runRecord(row: RunRow & { stages: StageRow[] }): RunRecord {
  const stages: RunRecord['stages'] = {};
  for (const stage of row.stages) {
    const record: StageRecord = { ...settings(stage.config), ...settings(stage.reported) };
    if (stage.resolved !== null) record.resolved = settings(stage.resolved);
    stages[stage.kind] = record;
  }
  const fromRun =
    row.fromRunId !== null && row.fromRunPolicyKey !== null
      ? {
          runId: row.fromRunId,
          stage: POLICY_STAGES.find((kind) => kind === row.fromRunStage) ?? 'sft',
          policy: row.fromRunPolicyKey,
          rewardModel: row.fromRunRewardModelKey,
        }
      : null;
  const registeredModel =
    row.modelId !== null && row.baseModelKey !== null
      ? { modelId: row.modelId, key: row.baseModelKey }
      : null;
  return { modelPreset: modelPresetOf(row), registeredModel, fromRun, stages };
}

/** A stored run's preset (null: a registered model); runs are created with a checked one, so anything else is corruption. */
export function modelPresetOf(row: { id: string; modelPreset: string | null }): ModelPreset | null {
  if (row.modelPreset === null) return null;
  if (!isModelPreset(row.modelPreset))
    throw new Error(`run ${row.id}: unknown model preset ${row.modelPreset}`);
  return row.modelPreset;
}

// The API groups the stored kinds: weights and their config/tokenizer are the model; ONNX exports are onnx.
const ARTIFACT_KINDS: Record<ArtifactRow['kind'], Artifact['kind']> = {
  checkpoint: 'checkpoint',
  safetensors: 'model',
  model_config: 'model',
  tokenizer: 'model',
  onnx_policy: 'onnx',
  onnx_reward: 'onnx',
};

// A LoRA stage keeps its PEFT adapter in final/adapter/ (the worker's layout): those files are their own kind.
const isAdapterFile = (path: string) => /\/final\/adapter\/[^/]+$/.test(path);

export function artifactView(row: ArtifactRow, runId: string): Artifact {
  return {
    id: row.id,
    runId,
    stageId: row.stageId,
    kind: isAdapterFile(row.path) ? 'adapter' : ARTIFACT_KINDS[row.kind],
    key: row.path,
    step: row.step,
    sizeBytes: Number(row.bytes),
    sha256: row.sha256 === '' ? null : row.sha256,
    createdAt: row.createdAt.toISOString(),
  };
}

export function metricView(row: MetricRow): MetricPoint {
  return {
    stageId: row.stageId,
    step: row.step,
    name: row.name,
    value: row.value,
    time: row.time.toISOString(),
  };
}

export function sampleView(row: SampleRow): Sample {
  return {
    stageId: row.stageId,
    step: row.step,
    prompt: row.prompt,
    response: row.response,
    score: row.score,
    kl: row.kl,
    eos: !row.truncated,
    ...(isParts(row.parts) ? { parts: row.parts } : {}),
  };
}

const isParts = (value: unknown): value is Record<string, number> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.values(value).every((v) => typeof v === 'number');

export function teamView(row: Team): TeamView {
  return {
    id: row.id,
    name: row.name,
    maxActiveStages: row.maxActiveStages,
    maxUploadBytes: Number(row.maxUploadBytes),
    requestsPerMinute: row.requestsPerMinute,
    createdAt: row.createdAt.toISOString(),
  };
}
