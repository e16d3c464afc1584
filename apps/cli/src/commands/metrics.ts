// rlhf metrics <id> [--stage S] [--name N] [--follow]: metric history (stage, step, name, value); --follow
// goes on printing new points as the worker reports them.
import type { MetricPoint } from '@rlhf/contracts';
import { allPages } from '../client.js';
import type { Command } from '../command.js';
import { followEvents } from '../follow.js';
import { num, table } from '../format.js';
import { findStage, stageKinds } from '../stages.js';

export const metrics: Command = {
  name: 'metrics',
  summary: 'metric history of a run; --follow prints new points live',
  args: ['id'],
  options: {
    stage: { type: 'string', description: 'only this stage (kind or id)', placeholder: 'STAGE' },
    name: { type: 'string', description: 'only this metric, e.g. train/loss', placeholder: 'NAME' },
    follow: { type: 'boolean', short: 'f', description: 'keep printing new points until the run ends' },
  },
  async run(ctx) {
    const client = await ctx.client();
    const run = await client.getRun(ctx.args[0]);
    const stageRef = ctx.flags.string('stage');
    const stageId = stageRef ? findStage(run, stageRef).id : undefined;
    const name = ctx.flags.string('name');
    const kinds = stageKinds(run);
    const seen = new Set<string>();
    const row = (p: Pick<MetricPoint, 'stageId' | 'step' | 'name' | 'value'>) => [
      kinds.get(p.stageId) ?? p.stageId,
      String(p.step),
      p.name,
      num(p.value),
    ];
    const fresh = (p: Pick<MetricPoint, 'stageId' | 'step' | 'name'>) => {
      const key = `${p.stageId}\u0000${p.step}\u0000${p.name}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    };
    // The stream is opened before the history is read, so no point falls between the two.
    const live = ctx.flags.boolean('follow')
      ? followEvents(client, run.id, ctx.io.signal ? { signal: ctx.io.signal } : {})
      : undefined;
    const first = live?.next();
    const history = await allPages((cursor) =>
      client.metrics(run.id, {
        limit: 10_000,
        ...(stageId ? { stageId } : {}),
        ...(name ? { name } : {}),
        ...(cursor ? { cursor } : {}),
      }),
    );
    const points = history.filter(fresh).sort((a, b) => a.step - b.step);
    if (ctx.json) for (const p of points) ctx.printJson(p);
    else ctx.io.stdout.write(table(['STAGE', 'STEP', 'NAME', 'VALUE'], points.map(row)));
    if (!live || !first) return 0;
    let next = await first;
    while (!next.done) {
      const event = next.value;
      if (event.event === 'metrics') {
        const data = JSON.parse(event.data) as {
          stageId: string;
          step: number;
          values: Record<string, number>;
          time: string;
        };
        if (!stageId || data.stageId === stageId)
          for (const [metric, value] of Object.entries(data.values)) {
            const point = { stageId: data.stageId, step: data.step, name: metric, value, time: data.time };
            if ((name && metric !== name) || !fresh(point)) continue;
            if (ctx.json) ctx.printJson(point);
            else ctx.print(row(point).join('  '));
          }
      }
      next = await live.next();
    }
    return 0;
  },
};
