// rlhf watch <id>: live progress of a run until it finishes (exit 0 only when it succeeded).
import type { Command } from '../command.js';
import { exitCodeOf, progressRenderer, runSummary, watchRun } from '../watch.js';

export const watch: Command = {
  name: 'watch',
  summary: 'follow a run to the end with live progress per stage',
  args: ['id'],
  options: {},
  async run(ctx) {
    const client = await ctx.client();
    const run = await watchRun(client, ctx.args[0], {
      ...(ctx.json ? {} : { onUpdate: progressRenderer(ctx.io.stdout) }),
      ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
    });
    if (ctx.json) ctx.printJson(run);
    else ctx.io.stdout.write(`\n${runSummary(run)}`);
    return exitCodeOf(run);
  },
};
