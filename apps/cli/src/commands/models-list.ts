// rlhf models list: the team's registered models, newest first, then the models its runs fine-tuned.
import type { RegisteredModelView } from '@rlhf/contracts';
import type { FineTunedModel } from '../client.js';
import type { Command } from '../command.js';
import { table } from '../format.js';

const isRegistered = (m: RegisteredModelView | FineTunedModel): m is RegisteredModelView =>
  'architecture' in m;

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
            ...(isRegistered(m)
              ? [m.name, m.architecture, String(m.parameterCount), m.dtype]
              : ['-', 'fine-tuned by a run', '-', '-']),
            new Date(m.created * 1000).toISOString().replace('T', ' ').slice(0, 19),
          ]),
        ),
      );
    return 0;
  },
};
