// rlhf events <id> [--follow]: the run's event stream, one line per event (the run snapshot, progress,
// metrics, samples, artifacts, stage transitions); without --follow it stops when the stream goes quiet.
import type { Command } from '../command.js';
import { followEvents } from '../follow.js';
import { clip, num, steps } from '../format.js';
import { stageKinds } from '../stages.js';
import type { RunView } from '../client.js';

/** How long the stream may be silent before `events` without --follow stops. */
const QUIET_MS = 500;

type Data = Record<string, unknown>;

/** One line describing an event. */
export function describeEvent(type: string, data: Data, kinds: ReadonlyMap<string, string>): string {
  const stage = typeof data.stageId === 'string' ? (kinds.get(data.stageId) ?? data.stageId) : '';
  const head = `${type.padEnd(16)} ${stage}`.trimEnd();
  switch (type) {
    case 'run': {
      const run = data as unknown as RunView;
      return `${head} ${run.status} ${run.stages.map((s) => `${s.kind}:${s.status}`).join(' ')}`;
    }
    case 'stage.progress':
      return `${head} ${steps({ step: Number(data.step), totalSteps: typeof data.totalSteps === 'number' ? data.totalSteps : null })}`;
    case 'metrics': {
      const values = Object.entries((data.values ?? {}) as Record<string, number>)
        .map(([name, value]) => `${name}=${num(value)}`)
        .join(' ');
      return `${head} step ${data.step} ${clip(values, 200)}`;
    }
    case 'samples':
      return `${head} step ${data.step} ${Array.isArray(data.rows) ? data.rows.length : 0} rows`;
    case 'artifact':
      return `${head} ${data.kind} ${data.key}`;
    case 'stage.started':
      return `${head} worker ${data.workerId} attempt ${data.attempt}${data.resumedFromStep ? ` resumed from step ${data.resumedFromStep}` : ''}`;
    case 'stage.failed':
      return `${head} ${clip(String(data.error), 200)}${data.willRetry ? ' (will retry)' : ''}`;
    case 'stage.requeued':
      return `${head} by ${data.workerId} at step ${data.step ?? '-'}`;
    case 'run.updated':
      return `${head}${data.status ? ` ${data.status}` : ''}`;
    default:
      return head;
  }
}

export const events: Command = {
  name: 'events',
  summary: "a run's events (progress, metrics, samples, stage changes); --follow until the run ends",
  args: ['id'],
  options: {
    follow: { type: 'boolean', short: 'f', description: 'keep printing events until the run ends' },
  },
  async run(ctx) {
    const client = await ctx.client();
    const follow = ctx.flags.boolean('follow');
    let kinds = new Map<string, string>();
    const stream = followEvents(client, ctx.args[0], {
      ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
      ...(follow ? {} : { once: true, idleMs: QUIET_MS }),
    });
    for await (const event of stream) {
      const data = JSON.parse(event.data) as Data;
      if (event.event === 'run') kinds = stageKinds(data as unknown as RunView);
      if (ctx.json) ctx.printJson({ event: event.event, ...(event.id ? { id: event.id } : {}), data });
      else ctx.print(describeEvent(event.event, data, kinds));
    }
    return 0;
  },
};
