// rlhf datasets upload <file> --kind KIND [--name NAME]: sends a JSONL file; the API validates every line.
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { DATASET_KINDS, type DatasetKind } from '@rlhf/contracts';
import { UsageError } from '../args.js';
import type { Command } from '../command.js';
import { table } from '../format.js';

export const datasetsUpload: Command = {
  name: 'datasets upload',
  summary: 'upload a JSONL dataset (validated line by line; the same content is stored once)',
  args: ['file'],
  options: {
    kind: { type: 'string', description: 'what the rows are', values: DATASET_KINDS, placeholder: 'KIND' },
    name: { type: 'string', description: 'dataset name (default: the file name)', placeholder: 'NAME' },
  },
  async run(ctx) {
    const file = resolve(ctx.io.cwd, ctx.args[0]);
    const kind = ctx.flags.string('kind') as DatasetKind | undefined;
    if (!kind) throw new UsageError(`datasets upload: --kind is required (${DATASET_KINDS.join(', ')})`);
    const name = ctx.flags.string('name') ?? basename(file).replace(/\.jsonl?$/, '');
    const client = await ctx.client();
    const { dataset, created } = await client.uploadDataset({ name, kind, body: await readFile(file) });
    if (ctx.json) ctx.printJson({ ...dataset, created });
    else {
      ctx.io.stdout.write(
        table(
          ['ID', 'NAME', 'KIND', 'ROWS', 'BYTES', ''],
          [
            [
              dataset.id,
              dataset.name,
              dataset.kind,
              String(dataset.rowCount),
              String(dataset.sizeBytes),
              created ? 'uploaded' : 'already stored',
            ],
          ],
        ),
      );
    }
    return 0;
  },
};
