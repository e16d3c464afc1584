// rlhf show <id>: a run's status, stages (step, time, key metrics), errors and every metric's last value.
import type { Command } from '../command.js';
import { elapsed, num, stageTable, table, time } from '../format.js';

export const show: Command = {
  name: 'show',
  summary: 'a run: status, stages with progress and key metrics, latest value of every metric',
  args: ['id'],
  options: {},
  async run(ctx) {
    const run = await (await ctx.client()).getRun(ctx.args[0]);
    if (ctx.json) {
      ctx.printJson(run);
      return 0;
    }
    const model = run.hyperparameters.modelPreset;
    const fields: [string, string][] = [
      ['run', run.id],
      ['name', run.name ?? '-'],
      ['status', run.status],
      [
        'model',
        run.hyperparameters.fromRun ? `from run ${run.hyperparameters.fromRun.runId}` : String(model),
      ],
      ['created', time(run.createdAt)],
      ['started', time(run.startedAt)],
      ['finished', time(run.finishedAt)],
      ['time', elapsed(run.startedAt, run.finishedAt)],
      ['progress', `${Math.round(run.progress * 100)}%`],
    ];
    if (run.error) fields.push(['error', run.error]);
    for (const [name, value] of fields) ctx.print(`${name.padEnd(9)} ${value}`);
    ctx.print();
    ctx.io.stdout.write(stageTable(run));
    for (const stage of run.stages) {
      if (stage.error) ctx.print(`${stage.kind} error: ${stage.error}`);
      const metrics = Object.entries(stage.latestMetrics).sort(([a], [b]) => a.localeCompare(b));
      if (metrics.length === 0) continue;
      ctx.print();
      ctx.print(`${stage.kind} metrics (latest, step ${stage.step})`);
      ctx.io.stdout.write(
        table(
          ['  NAME', 'VALUE'],
          metrics.map(([name, value]) => [`  ${name}`, num(value)]),
        ),
      );
    }
    return 0;
  },
};
