// rlhf workers: the live workers (device, current stage, last heartbeat).
import type { Command } from '../command.js';
import { table, time } from '../format.js';

export const workers: Command = {
  name: 'workers',
  summary: 'live workers: device, status, current stage, last heartbeat',
  args: [],
  options: {},
  async run(ctx) {
    const { items } = await (await ctx.client()).listWorkers();
    if (ctx.json) ctx.printJson(items);
    else
      ctx.io.stdout.write(
        table(
          ['ID', 'HOST', 'DEVICE', 'STATUS', 'STAGE', 'LAST SEEN'],
          items.map((w) => [w.id, w.hostname, w.device, w.status, w.stageId ?? '-', time(w.lastSeenAt)]),
        ),
      );
    return 0;
  },
};
