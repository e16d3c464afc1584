// Writes one worker event to Postgres. Every write is idempotent (an event delivered twice, e.g.
// after an API crash between the write and the ack, changes nothing the second time), and a stage
// that finished keeps its final status whatever arrives late.
import type { ArtifactStore } from '@rlhf/artifacts';
import type { ArtifactKind, Prisma, PrismaClient, RunStatus, StageStatus } from '@rlhf/db';
import { keys, type StageEvent } from '@rlhf/queue';
import type { Redis } from 'ioredis';
import { recordEvalStage } from './eval-record.js';

const FINISHED: readonly StageStatus[] = ['succeeded', 'failed', 'cancelled'];
/** Run statuses a stage's end still moves on (a paused run whose stage finished before it could stop, too). */
const LIVE_RUN: RunStatus[] = ['queued', 'running', 'paused'];

export interface Applied {
  /** The team of a stage the event finished (admission may have room for it now), else null. */
  finishedTeamId: string | null;
  /** A worker started a stage of a run that was cancelled meanwhile: ask again. */
  cancelAgain: boolean;
}

const nothing: Applied = { finishedTeamId: null, cancelAgain: false };

/** An event no retry can store (a value its column cannot hold): the consumer dead-letters it at once. */
export class PoisonEventError extends Error {
  override name = 'PoisonEventError';
}

/** Steps and attempts live in 32-bit integer columns. */
const INT32_MAX = 2 ** 31 - 1;

// Counts an event carries, by field name (undefined/null: not reported).
function countsOf(event: StageEvent): [string, number | null | undefined][] {
  switch (event.type) {
    case 'stage.started':
      return [
        ['attempt', event.attempt],
        ['resumedFromStep', event.resumedFromStep],
        ['totalSteps', event.totalSteps],
      ];
    case 'stage.progress':
      return [
        ['step', event.step],
        ['totalSteps', event.totalSteps],
      ];
    case 'metrics':
    case 'samples':
    case 'stage.requeued':
    case 'artifact':
      return [['step', event.step]];
    case 'stage.completed':
      return [['result.step', event.result.step]];
    default:
      return [];
  }
}

/** Throws PoisonEventError for a count outside 0..2^31-1 (e.g. a run accepted before maxSteps had a bound). */
export function checkCounts(event: StageEvent): void {
  for (const [field, value] of countsOf(event)) {
    if (value === undefined || value === null) continue;
    if (!Number.isInteger(value) || value < 0 || value > INT32_MAX)
      throw new PoisonEventError(`${event.type} ${field}: ${value} is not an integer in 0..${INT32_MAX}`);
  }
}

/** Postgres text cannot hold U+0000 (the byte tokenizer can emit it): it is stored as U+FFFD. */
export const pgText = (text: string): string => text.replaceAll('\u0000', '\uFFFD');

/** Which stage.started events (by stream id) a stage's attempts already count. */
export interface StartLog {
  /** Whether this start was counted; throws when it cannot tell. */
  seen(stageId: string, eventId: string): Promise<boolean>;
  record(stageId: string, eventId: string): Promise<void>;
}

/** How long the start log remembers a stage's starts (events are redelivered within minutes). */
const START_LOG_TTL_S = 7 * 24 * 3600;

/** A StartLog in Redis: a sorted set of stream ids per stage, expiring a week after its last start. */
export function redisStartLog(redis: Redis, prefix: string): StartLog {
  const key = (stageId: string) => `${prefix}:api:stage-starts:${stageId}`;
  return {
    async seen(stageId, eventId) {
      return (await redis.zscore(key(stageId), eventId)) !== null;
    },
    async record(stageId, eventId) {
      await redis
        .multi()
        .zadd(key(stageId), 'NX', Number(eventId.split('-')[0]), eventId)
        .expire(key(stageId), START_LOG_TTL_S)
        .exec();
    },
  };
}

export interface Stores {
  prisma: PrismaClient;
  artifacts: ArtifactStore;
  /** Where the counted starts are kept; without it (or when it fails) see `isRetake`. */
  starts?: StartLog;
}

/** Applies `event`; `at` is when it was published (its stream id's timestamp), `id` its stream id. */
export async function applyEvent(
  { prisma, artifacts, starts }: Stores,
  event: StageEvent,
  at: Date,
  id?: string,
): Promise<Applied> {
  checkCounts(event);
  const stage = await prisma.stage.findUnique({ where: { id: event.stageId }, include: { run: true } });
  if (!stage || stage.runId !== event.runId) return nothing; // not ours (a deleted run, another deployment)
  const open = !FINISHED.includes(stage.status);
  switch (event.type) {
    case 'stage.started': {
      if (!open) return nothing;
      // A worker re-taking a stage that had started (a crash's stalled job, a shutdown's requeue) reports
      // BullMQ's attempt, which such a re-take does not use up: it is counted here, once per start event
      // (by its stream id in the start log; without one, a start on the worker already running the
      // stage is taken for the same event delivered again).
      const workerId = pgText(event.workerId);
      let retake = stage.startedAt !== null;
      if (retake) {
        const counted =
          starts && id !== undefined ? await starts.seen(stage.id, id).catch(() => undefined) : undefined;
        retake =
          counted === undefined ? !(stage.status === 'running' && stage.workerId === workerId) : !counted;
      }
      const total = event.totalSteps ?? stage.totalSteps;
      const resumed = event.resumedFromStep;
      // Each write touches this stage's row, or the run's only where a condition in SQL says so: events of
      // two stages persisted at once never overwrite each other.
      await prisma.$transaction([
        prisma.stage.update({
          where: { id: stage.id },
          data: {
            status: 'running',
            attempts: Math.max(retake ? stage.attempts + 1 : stage.attempts, event.attempt),
            // A resumed stage goes on from its checkpoint: the steps after it are done again.
            ...(resumed === null
              ? {}
              : { currentStep: resumed, ...(total ? { progress: Math.min(1, resumed / total) } : {}) }),
            workerId,
            startedAt: stage.startedAt ?? at,
            totalSteps: total,
            error: null,
            reported: jsonObject(event.hyperparameters),
          },
        }),
        // Conditional in SQL, not on the status read above: a cancel committed meanwhile must stay.
        prisma.run.updateMany({ where: { id: stage.runId, status: 'queued' }, data: { status: 'running' } }),
        prisma.run.updateMany({ where: { id: stage.runId, startedAt: null }, data: { startedAt: at } }),
      ]);
      // After the commit: a write that failed is tried again and must not find itself counted already.
      if (starts && id !== undefined) await starts.record(stage.id, id).catch(() => {});
      return { finishedTeamId: null, cancelAgain: stage.run.status === 'cancelled' };
    }
    case 'stage.progress': {
      if (!open) return nothing;
      const total = event.totalSteps ?? stage.totalSteps;
      await prisma.stage.update({
        where: { id: stage.id },
        data: {
          currentStep: event.step,
          totalSteps: total,
          ...(total ? { progress: Math.min(1, event.step / total) } : {}),
        },
      });
      return nothing;
    }
    case 'metrics': {
      // JSON has no NaN/Infinity: such values arrive as null and are not stored.
      const data = Object.entries(event.values)
        .filter(([, value]) => typeof value === 'number' && Number.isFinite(value))
        .map(([name, value]) => ({
          stageId: stage.id,
          name: pgText(name),
          step: event.step,
          value,
          time: new Date(event.time),
        }));
      await prisma.metricPoint.createMany({ data, skipDuplicates: true });
      return nothing;
    }
    case 'samples': {
      // Samples have no natural key: a step's table is replaced as a whole.
      await prisma.$transaction([
        prisma.sample.deleteMany({ where: { stageId: stage.id, step: event.step } }),
        prisma.sample.createMany({
          data: event.rows.map((row) => ({
            stageId: stage.id,
            step: event.step,
            prompt: pgText(row.prompt),
            response: pgText(row.response),
            score: row.score,
            kl: row.kl,
            truncated: !row.eos,
            ...(row.parts ? { parts: row.parts } : {}),
          })),
        }),
      ]);
      return nothing;
    }
    case 'artifact': {
      // Workers report a file or a directory (a checkpoint, a final model): one row per file, so each
      // can be listed and downloaded on its own.
      // The sha256 is the one the store recorded when the worker wrote the file (computed here only for
      // a file written some other way).
      const files = (await artifacts.exists(event.key))
        ? [
            {
              key: event.key,
              bytes: event.bytes,
              sha256: event.sha256 ?? (await artifacts.sha256(event.key)),
            },
          ]
        : await Promise.all(
            (await artifacts.list(event.key)).map(async (key) => {
              const info = await artifacts.info(key);
              return { key, bytes: info.bytes, sha256: info.sha256 ?? (await artifacts.sha256(key)) };
            }),
          );
      for (const file of files) {
        const data = {
          stageId: stage.id,
          kind: artifactKind(event.kind, file.key, stage.kind),
          bytes: BigInt(file.bytes),
          sha256: file.sha256,
          step: event.step ?? null,
        };
        await prisma.artifact.upsert({
          where: { path: file.key },
          create: { path: file.key, ...data },
          update: data,
        });
      }
      // The worker keeps the newest few checkpoints: forget the files it pruned.
      const checkpoints = await prisma.artifact.findMany({
        where: { stageId: stage.id, kind: 'checkpoint' },
      });
      for (const row of checkpoints) {
        if (!(await artifacts.exists(row.path))) await prisma.artifact.delete({ where: { id: row.id } });
      }
      return nothing;
    }
    case 'stage.completed': {
      if (!open) return nothing;
      const stages = await prisma.stage.findMany({ where: { runId: stage.runId } });
      const allDone = stages.every((st) => st.id === stage.id || st.status === 'succeeded');
      // What the trainer resolved beyond the config (caps to the model's context, sizes) joins the stage's record.
      const resolvedKey = keys.hyperparameters(event.result.modelKey);
      const resolved = (await artifacts.exists(resolvedKey))
        ? (JSON.parse(await artifacts.getText(resolvedKey)) as unknown)
        : null;
      // An eval stage's comparison joins the team's evaluations (the leaderboard reads them); first, so a
      // failure here leaves the event to be retried (the insert is idempotent).
      if (stage.kind === 'eval')
        await recordEvalStage(prisma, (key) => artifacts.getText(key), stage, event.result.modelKey, at);
      await prisma.$transaction([
        prisma.stage.update({
          where: { id: stage.id },
          data: {
            status: 'succeeded',
            progress: 1,
            currentStep: event.result.step,
            modelKey: event.result.modelKey,
            finishedAt: at,
            ...(isJsonObject(resolved) ? { resolved: jsonObject(resolved) } : {}),
          },
        }),
        ...(allDone && stage.run.status !== 'cancelled'
          ? [
              prisma.run.updateMany({
                where: { id: stage.runId, status: { in: LIVE_RUN } },
                data: { status: 'succeeded', finishedAt: at },
              }),
            ]
          : []),
      ]);
      return { finishedTeamId: stage.run.teamId, cancelAgain: false };
    }
    case 'stage.failed': {
      if (!open) return nothing;
      if (event.willRetry) {
        await prisma.stage.update({
          where: { id: stage.id },
          data: { status: 'queued', error: pgText(event.error) },
        });
        return nothing;
      }
      // failParentOnFailure fails the later stages in BullMQ; no worker reports them, so we do.
      await prisma.$transaction([
        prisma.stage.update({
          where: { id: stage.id },
          data: { status: 'failed', error: pgText(event.error), finishedAt: at },
        }),
        prisma.stage.updateMany({
          where: { runId: stage.runId, id: { not: stage.id }, status: { notIn: [...FINISHED] } },
          data: { status: 'cancelled', error: `the ${stage.kind} stage failed`, finishedAt: at },
        }),
        prisma.run.updateMany({
          where: { id: stage.runId, status: { in: LIVE_RUN } },
          data: {
            status: 'failed',
            error: pgText(`${stage.kind} stage failed: ${event.error}`),
            finishedAt: at,
          },
        }),
      ]);
      return { finishedTeamId: stage.run.teamId, cancelAgain: false };
    }
    case 'stage.cancelled': {
      if (!open) return nothing;
      await prisma.$transaction([
        prisma.stage.updateMany({
          where: { runId: stage.runId, status: { notIn: [...FINISHED] } },
          data: { status: 'cancelled', finishedAt: at },
        }),
        prisma.run.updateMany({
          where: { id: stage.runId, status: { in: LIVE_RUN } },
          data: { status: 'cancelled', finishedAt: at },
        }),
      ]);
      return { finishedTeamId: stage.run.teamId, cancelAgain: false };
    }
    case 'stage.requeued': {
      if (!open) return nothing;
      await prisma.stage.update({
        where: { id: stage.id },
        data: { status: 'queued', ...(event.step === null ? {} : { currentStep: event.step }) },
      });
      return nothing;
    }
    case 'stage.paused': {
      // The job is parked until the run resumes: the stage waits in the queue from its checkpoint.
      if (!open) return nothing;
      await prisma.stage.update({
        where: { id: stage.id },
        data: { status: 'queued', ...(event.step === null ? {} : { currentStep: event.step }) },
      });
      return nothing;
    }
  }
}

const isJsonObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

// Settings by name as Prisma stores JSON: a round trip through JSON drops what JSON cannot hold, and
// strings lose their NULs as text columns do (jsonb cannot hold U+0000 either).
const jsonObject = (value: Record<string, unknown>): Prisma.InputJsonObject =>
  JSON.parse(
    JSON.stringify(value, (_key, item: unknown) => (typeof item === 'string' ? pgText(item) : item)),
  ) as Prisma.InputJsonObject;

const ARTIFACT_KINDS = new Set<string>([
  'checkpoint',
  'safetensors',
  'model_config',
  'tokenizer',
  'onnx_policy',
  'onnx_reward',
]);

/** The stored kind: the worker's kind when it is one, else read from the file name ('final' models). */
export function artifactKind(kind: string, key: string, stageKind: string): ArtifactKind {
  if (ARTIFACT_KINDS.has(kind)) return kind as ArtifactKind;
  if (key.includes('/checkpoints/')) return 'checkpoint';
  const file = key.slice(key.lastIndexOf('/') + 1);
  if (file.endsWith('.onnx')) return stageKind === 'reward_model' ? 'onnx_reward' : 'onnx_policy';
  if (file === 'tokenizer.json') return 'tokenizer';
  if (file.endsWith('.json')) return 'model_config';
  return 'safetensors';
}
