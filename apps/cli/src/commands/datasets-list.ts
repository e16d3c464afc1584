// rlhf datasets list [--kind KIND]: the team's datasets, newest first.
import { DATASET_KINDS, type DatasetKind } from '@rlhf/contracts';
import { allPages } from '../client.js';
import type { Command } from '../command.js';
import { table, time } from '../format.js';

export const datasetsList: Command = {
  name: 'datasets list',
  summary: "the team's datasets, newest first",
  args: [],
  options: {
    kind: { type: 'string', description: 'only this kind', values: DATASET_KINDS, placeholder: 'KIND' },
  },
  async run(ctx) {
    const client = await ctx.client();
    const kind = ctx.flags.string('kind') as DatasetKind | undefined;
    const items = await allPages((cursor) =>
      client.listDatasets({ limit: 200, ...(kind ? { kind } : {}), ...(cursor ? { cursor } : {}) }),
    );
    if (ctx.json) ctx.printJson(items);
    else
      ctx.io.stdout.write(
        table(
          ['ID', 'NAME', 'KIND', 'ROWS', 'BYTES', 'CREATED'],
          items.map((d) => [
            d.id,
            d.name,
            d.kind,
            String(d.rowCount),
            String(d.sizeBytes),
            time(d.createdAt),
          ]),
        ),
      );
    return 0;
  },
};
