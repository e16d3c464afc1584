// rlhf models list: the team's registered models, newest first.
import type { Command } from '../command.js';
import { table } from '../format.js';

export const modelsList: Command = {
  name: 'models list',
  summary: "the team's registered models, newest first",
  args: [],
  options: {},
  async run(ctx) {
    const client = await ctx.client();
    const items = [];
    let cursor: string | undefined;
    do {
      const page = await client.listModels({ limit: 200, ...(cursor ? { cursor } : {}) });
      items.push(...page.data);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    if (ctx.json) ctx.printJson(items);
    else
      ctx.io.stdout.write(
        table(
          ['ID', 'NAME', 'ARCHITECTURE', 'PARAMETERS', 'DTYPE', 'CREATED'],
          items.map((m) => [
            m.id,
            m.name,
            m.architecture,
            String(m.parameterCount),
            m.dtype,
            new Date(m.created * 1000).toISOString().replace('T', ' ').slice(0, 19),
          ]),
        ),
      );
    return 0;
  },
};
