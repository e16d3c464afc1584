// rlhf submit <pipeline.json|yaml> [--watch]: starts a run; with --watch follows it to the end (exit 0 only
// when it succeeded).
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { readPipelineFile, resolveDatasetFiles } from '../pipeline-file.js';
import { watchCommand } from '../watch.js';

export const submit: Command = {
  name: 'submit',
  summary: 'start a run from a pipeline file (JSON or YAML); --watch follows it to the end',
  args: ['file'],
  options: {
    watch: {
      type: 'boolean',
      short: 'w',
      description: 'show live progress per stage, exit 0 only if it succeeds',
    },
    name: { type: 'string', description: 'run name (overrides the file)', placeholder: 'NAME' },
    'idempotency-key': {
      type: 'string',
      description: 'retries with the same key return the run created first',
      placeholder: 'KEY',
    },
  },
  async run(ctx) {
    const path = resolve(ctx.io.cwd, ctx.args[0]);
    const client = await ctx.client();
    const { spec, uploaded } = await resolveDatasetFiles(client, await readPipelineFile(path), path);
    const name = ctx.flags.string('name');
    const created = await client.createRun(
      name ? { ...spec, name } : spec,
      ctx.flags.string('idempotency-key'),
    );
    if (!ctx.json) {
      for (const u of uploaded)
        ctx.print(
          `${u.stage}: ${u.file} ${u.created ? 'uploaded as' : 'already stored as'} dataset ${u.datasetId}`,
        );
      ctx.print(`run ${created.id} submitted: ${created.stages.map((s) => s.kind).join(' -> ')}`);
    }
    if (!ctx.flags.boolean('watch')) {
      if (ctx.json) ctx.printJson(created);
      return 0;
    }
    return watchCommand(ctx, client, created.id);
  },
};
