// Follows a run until it finishes: its SSE stream drives a progress line per stage (step/total and the key
// metrics, redrawn in place on a terminal); if the stream breaks, polling takes over.
import { ApiRequestError, type Client, NetworkError, type RunView } from './client.js';
import { duration, stageLine, stageTable } from './format.js';
import type { Io } from './io.js';

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);
export const isFinished = (status: string): boolean => FINISHED.has(status);
// Events after which statuses may have changed: the run is read again.
const REFETCH = new Set([
  'stage.started',
  'stage.completed',
  'stage.failed',
  'stage.cancelled',
  'stage.requeued',
  'run.updated',
]);
const POLL_MS = 1000;

/** Progress lines: redrawn in place on a terminal; elsewhere a line when a stage's status or tenth changes. */
export function progressRenderer(out: Io['stdout']): (run: RunView) => void {
  let drawn = 0;
  let lastText = '';
  const lastState = new Map<string, string>();
  return (run) => {
    if (out.isTTY) {
      const text = run.stages.map(stageLine).join('\n');
      if (text === lastText) return;
      lastText = text;
      out.write(`${drawn > 0 ? `\x1b[${drawn}A\x1b[0J` : ''}${text}\n`);
      drawn = run.stages.length;
      return;
    }
    for (const stage of run.stages) {
      const state = `${stage.status}:${Math.floor(stage.progress * 10)}`;
      if (lastState.get(stage.id) === state) continue;
      lastState.set(stage.id, state);
      out.write(`${stageLine(stage)}\n`);
    }
  };
}

/** The run with an event applied (progress and metrics in place; anything else is left to a re-read). */
function applyEvent(run: RunView, type: string, data: Record<string, unknown>): RunView {
  const stage = run.stages.find((s) => s.id === data.stageId);
  if (!stage) return run;
  // A replayed (older) progress event never moves a stage back.
  if (type === 'stage.progress' && typeof data.step === 'number' && data.step >= stage.step) {
    const totalSteps = typeof data.totalSteps === 'number' ? data.totalSteps : stage.totalSteps;
    const progress = totalSteps ? Math.min(1, data.step / totalSteps) : stage.progress;
    Object.assign(stage, { step: data.step, totalSteps, progress, status: 'running' });
  } else if (type === 'metrics' && typeof data.values === 'object' && data.values !== null) {
    stage.latestMetrics = { ...stage.latestMetrics, ...(data.values as Record<string, number>) };
  }
  return run;
}

export interface WatchOptions {
  /** Called with the run after every change (progress lines). */
  onUpdate?: (run: RunView) => void;
  signal?: AbortSignal;
}

/** Resolves with the finished run. */
export async function watchRun(client: Client, runId: string, options: WatchOptions = {}): Promise<RunView> {
  const update = options.onUpdate ?? (() => {});
  let run = await client.getRun(runId);
  update(run);
  if (isFinished(run.status)) return run;
  try {
    for await (const message of client.events(runId, options.signal ? { signal: options.signal } : {})) {
      if (message.event === 'unauthorized')
        throw new ApiRequestError(401, 'unauthorized', 'events: the API key was revoked');
      if (message.event === 'end') break;
      const data = JSON.parse(message.data) as Record<string, unknown>;
      if (message.event === 'run') run = data as unknown as RunView;
      else if (REFETCH.has(message.event)) run = await client.getRun(runId);
      else run = applyEvent(run, message.event, data);
      update(run);
      if (isFinished(run.status)) break;
    }
  } catch (error) {
    if (!(error instanceof NetworkError) || options.signal?.aborted) throw error;
  }
  // The stream ended (or broke): the run's own record decides, polled until it is final.
  for (;;) {
    options.signal?.throwIfAborted();
    run = await client.getRun(runId);
    update(run);
    if (isFinished(run.status)) return run;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The summary printed when a watch ends. */
export function runSummary(run: RunView): string {
  const took =
    run.startedAt && run.finishedAt
      ? ` in ${duration(Date.parse(run.finishedAt) - Date.parse(run.startedAt))}`
      : '';
  const lines = [`run ${run.id} ${run.status}${took}`, stageTable(run).trimEnd()];
  if (run.error) lines.push(`error: ${run.error}`);
  for (const stage of run.stages)
    if (stage.error && stage.error !== run.error) lines.push(`${stage.kind}: ${stage.error}`);
  return `${lines.join('\n')}\n`;
}

/** Watches with progress lines (or quietly with --json), prints the summary; the exit code by the run's status. */
export async function watchCommand(
  ctx: { io: Io; json: boolean; printJson(value: unknown): void; warn(line: string): void },
  client: Client,
  runId: string,
): Promise<number> {
  let run: RunView;
  try {
    run = await watchRun(client, runId, {
      ...(ctx.json ? {} : { onUpdate: progressRenderer(ctx.io.stdout) }),
      ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
    });
  } catch (error) {
    if (!ctx.io.signal?.aborted) throw error;
    ctx.warn(`rlhf: stopped watching; run ${runId} goes on (rlhf watch ${runId}, rlhf cancel ${runId})`);
    return 130;
  }
  if (ctx.json) ctx.printJson(run);
  else ctx.io.stdout.write(`\n${runSummary(run)}`);
  return exitCodeOf(run);
}

/** Exit code of a watched run: 0 when it succeeded. */
export const exitCodeOf = (run: RunView): number => (run.status === 'succeeded' ? 0 : 1);
