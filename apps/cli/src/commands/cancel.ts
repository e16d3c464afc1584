// rlhf cancel <id>: waiting and queued stages stop at once, a running one at its next check.
import type { Command } from '../command.js';

export const cancel: Command = {
  name: 'cancel',
  summary: 'cancel a run (a running stage stops within seconds)',
  args: ['id'],
  options: {},
  async run(ctx) {
    const run = await (await ctx.client()).cancelRun(ctx.args[0]);
    if (ctx.json) ctx.printJson(run);
    else
      ctx.print(
        `run ${run.id}: ${run.status}${run.stages.some((s) => s.status === 'running') ? ' (its running stage stops at its next check)' : ''}`,
      );
    return 0;
  },
};
