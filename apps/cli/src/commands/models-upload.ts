// rlhf models upload <dir> [--name NAME]: registers a Hugging Face model directory (sent as one tar archive;
// the API validates config, tensors and tokenizer before storing anything). Runs start from it with
// `model: { modelId }`.
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { writeTar } from '@rlhf/artifacts';
import type { Command } from '../command.js';
import { table } from '../format.js';

/** The files of a model directory the API keeps (others, e.g. README.md, are left out). */
const MODEL_FILES = new Set([
  'config.json',
  'model.safetensors',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
]);

export const modelsUpload: Command = {
  name: 'models upload',
  summary: 'register a Hugging Face model directory (config.json, model.safetensors, tokenizer files)',
  args: ['dir'],
  options: {
    name: {
      type: 'string',
      description: 'model name, unique in the team (default: the directory name)',
      placeholder: 'NAME',
    },
  },
  async run(ctx) {
    const dir = resolve(ctx.io.cwd, ctx.args[0]);
    const entries = await readdir(dir, { withFileTypes: true });
    const names = entries
      .filter((e) => e.isFile() && MODEL_FILES.has(e.name))
      .map((e) => e.name)
      .sort();
    const skipped = entries.filter((e) => !names.includes(e.name)).map((e) => e.name);
    const files = await Promise.all(
      names.map(async (name) => [name, await readFile(join(dir, name))] as const),
    );
    const client = await ctx.client();
    const model = await client.uploadModel({
      name: ctx.flags.string('name') ?? basename(dir),
      body: writeTar(new Map(files)),
    });
    if (ctx.json) {
      ctx.printJson(model);
      return 0;
    }
    if (skipped.length > 0) ctx.warn(`left out (not model files): ${skipped.join(', ')}`);
    ctx.io.stdout.write(
      table(
        ['ID', 'NAME', 'ARCHITECTURE', 'PARAMETERS', 'DTYPE', 'CONTEXT', 'TOKENIZER'],
        [
          [
            model.id,
            model.name,
            model.architecture,
            String(model.parameterCount),
            model.dtype,
            String(model.contextLength),
            model.hasTokenizer ? 'yes' : 'no',
          ],
        ],
      ),
    );
    return 0;
  },
};
