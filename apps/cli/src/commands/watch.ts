// rlhf watch <id>: live progress of a run until it finishes (exit 0 only when it succeeded).
import type { Command } from '../command.js';
import { watchCommand } from '../watch.js';

export const watch: Command = {
  name: 'watch',
  summary: 'follow a run to the end with live progress per stage',
  args: ['id'],
  options: {},
  async run(ctx) {
    return watchCommand(ctx, await ctx.client(), ctx.args[0]);
  },
};
