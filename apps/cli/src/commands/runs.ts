// rlhf runs [--status S] [--limit N]: the team's runs, newest first.
import { RunStatus } from '@rlhf/contracts';
import type { Command } from '../command.js';
import { elapsed, table, time } from '../format.js';

const STATUSES: readonly string[] = RunStatus.enum;

export const runs: Command = {
  name: 'runs',
  summary: "the team's runs, newest first",
  args: [],
  options: {
    status: {
      type: 'string',
      description: 'only runs with this status',
      values: STATUSES,
      placeholder: 'STATUS',
    },
    limit: { type: 'string', description: 'how many (default 20)', placeholder: 'N' },
  },
  async run(ctx) {
    const client = await ctx.client();
    const status = ctx.flags.string('status') as RunStatus | undefined;
    const limit = ctx.flags.integer('limit', 20);
    const items = [];
    let cursor: string | undefined;
    do {
      const page = await client.listRuns({
        limit: Math.min(100, limit - items.length),
        ...(status ? { status } : {}),
        ...(cursor ? { cursor } : {}),
      });
      items.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor && items.length < limit);
    if (ctx.json) ctx.printJson(items);
    else
      ctx.io.stdout.write(
        table(
          ['ID', 'NAME', 'STATUS', 'STAGES', 'PROGRESS', 'CREATED', 'TIME'],
          items.map((r) => [
            r.id,
            r.name ?? '-',
            r.status,
            r.stages.map((s) => s.kind).join('>'),
            `${Math.round(r.progress * 100)}%`,
            time(r.createdAt),
            elapsed(r.startedAt, r.finishedAt),
          ]),
        ),
      );
    return 0;
  },
};
