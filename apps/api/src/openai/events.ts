// A job's events and checkpoints in OpenAI's shapes, read from what the run persisted (stage rows, metric
// points, checkpoint artifacts): nothing is stored twice.
import { SftMetrics } from '@rlhf/contracts';
import type { Team } from '@rlhf/db';
import type { RunWithStages } from '../run-store.js';
import type { Services } from '../services.js';
import { secondsOf } from './files.js';
import { fineTunedModel } from './jobs.js';

export interface JobEvent {
  object: 'fine_tuning.job.event';
  id: string;
  created_at: number;
  level: 'info' | 'warn' | 'error';
  message: string;
  data: Record<string, unknown> | null;
  type: 'message' | 'metrics';
}

const LOSS = SftMetrics.loss;
const EVAL_LOSS = SftMetrics.evalLoss;

/** Metric values of the job's stage by step: { step → { name → value } } for the loss metrics. */
async function lossesByStep(s: Services, stageId: string) {
  const points = await s.prisma.metricPoint.findMany({
    where: { stageId, name: { in: [LOSS, EVAL_LOSS] } },
    orderBy: { step: 'asc' },
  });
  const steps = new Map<number, { time: Date; train_loss?: number; valid_loss?: number }>();
  for (const p of points) {
    const entry = steps.get(p.step) ?? { time: p.time };
    if (p.name === LOSS) entry.train_loss = p.value;
    else entry.valid_loss = p.value;
    steps.set(p.step, entry);
  }
  return steps;
}

/** Every event of the job, newest first. */
export async function jobEvents(s: Services, run: RunWithStages): Promise<JobEvent[]> {
  const event = (id: string, time: Date, message: string, extra: Partial<JobEvent> = {}): JobEvent => ({
    object: 'fine_tuning.job.event',
    id: `ftevent-${id}`,
    created_at: secondsOf(time),
    level: 'info',
    message,
    data: null,
    type: 'message',
    ...extra,
  });
  const events: JobEvent[] = [event(`${run.id}-created`, run.createdAt, 'Created fine-tuning job')];
  for (const stage of run.stages) {
    if (stage.startedAt)
      events.push(event(`${stage.id}-started`, stage.startedAt, 'Fine-tuning job started'));
    for (const [step, m] of await lossesByStep(s, stage.id)) {
      if (m.train_loss === undefined) continue;
      events.push(
        event(
          `${stage.id}-step-${step}`,
          m.time,
          `Step ${step}/${stage.totalSteps ?? '?'}: training loss=${m.train_loss.toFixed(4)}`,
          {
            type: 'metrics',
            data: {
              step,
              total_steps: stage.totalSteps,
              train_loss: m.train_loss,
              ...(m.valid_loss === undefined ? {} : { valid_loss: m.valid_loss }),
            },
          },
        ),
      );
    }
  }
  // Pauses and resumes, from the run's stored messages (pause.ts publishes them with an `action`).
  const updates = await s.prisma.runEvent.findMany({
    where: { runId: run.id, type: 'run.updated' },
    orderBy: { seq: 'asc' },
  });
  for (const u of updates) {
    const action = (u.data as { action?: unknown } | null)?.action;
    if (action === 'paused' || action === 'resumed')
      events.push(event(`${run.id}-${action}-${u.seq}`, u.createdAt, `Fine-tuning job ${action}`));
  }
  const end = run.finishedAt;
  if (end && run.status === 'succeeded')
    events.push(event(`${run.id}-succeeded`, end, 'The job has successfully completed'));
  if (end && run.status === 'failed')
    events.push(
      event(`${run.id}-failed`, end, `The job failed: ${run.error ?? 'unknown error'}`, { level: 'error' }),
    );
  if (end && run.status === 'cancelled')
    events.push(event(`${run.id}-cancelled`, end, 'The job was cancelled'));
  // Newest first; events of one second keep the order they happened in, reversed.
  return events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => b.e.created_at - a.e.created_at || b.i - a.i)
    .map(({ e }) => e);
}

/** A page of a newest-first list: the items after the one with id `after`. */
export function pageAfter<T extends { id: string }>(items: T[], after: string | undefined, limit: number) {
  const start = after === undefined ? 0 : items.findIndex((item) => item.id === after) + 1;
  const data = start === 0 && after !== undefined ? [] : items.slice(start, start + limit);
  return { data, has_more: start + limit < items.length };
}

/** The job's checkpoints (the worker's saved steps, and the final model), newest first. */
export async function jobCheckpoints(s: Services, team: Team, run: RunWithStages) {
  const stage = run.stages[0];
  if (!stage) return [];
  const artifacts = await s.prisma.artifact.findMany({
    where: { stageId: stage.id, kind: 'checkpoint', step: { not: null } },
    select: { step: true, createdAt: true },
  });
  const steps = new Map<number, Date>();
  for (const a of artifacts) if (!steps.has(a.step as number)) steps.set(a.step as number, a.createdAt);
  if (run.status === 'succeeded' && stage.finishedAt) steps.set(stage.currentStep, stage.finishedAt);
  const losses = await lossesByStep(s, stage.id);
  const model = fineTunedModel(team, run);
  return [...steps]
    .sort(([a], [b]) => b - a)
    .map(([step, time]) => ({
      object: 'fine_tuning.job.checkpoint' as const,
      id: `ftckpt-${stage.id}-${step}`,
      created_at: secondsOf(time),
      fine_tuned_model_checkpoint:
        step === stage.currentStep && run.status === 'succeeded' ? model : `${model}:ckpt-step-${step}`,
      step_number: step,
      metrics: {
        step,
        train_loss: losses.get(step)?.train_loss ?? null,
        valid_loss: losses.get(step)?.valid_loss ?? null,
        // Our held-out loss is over the whole validation set: OpenAI's full_valid_loss too.
        full_valid_loss: losses.get(step)?.valid_loss ?? null,
      },
      fine_tuning_job_id: `ftjob-${run.id}`,
    }));
}
