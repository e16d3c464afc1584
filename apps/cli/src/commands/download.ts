// rlhf download <id> [--stage S] [--out DIR]: a stage's final model as a Hugging Face directory (config.json,
// generation config, tokenizer files, model.safetensors), each file checked against its size and sha256.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Artifact } from '@rlhf/contracts';
import type { RunView } from '../client.js';
import type { Command } from '../command.js';
import { table } from '../format.js';
import { findStage } from '../stages.js';

/** Where the worker puts a stage's model as an HF directory: runs/{run}/{stage}/final/hf/<file>. */
const HF_DIR = '/final/hf/';

const hfName = (artifact: Artifact): string | undefined => {
  const at = artifact.key.lastIndexOf(HF_DIR);
  const name = at < 0 ? '' : artifact.key.slice(at + HF_DIR.length);
  return name && !name.includes('/') && name !== '..' && name !== '.' ? name : undefined;
};

/** The stage named, or the last one that has a finished model. */
function pickStage(run: RunView, artifacts: readonly Artifact[], ref: string | undefined) {
  if (ref) return findStage(run, ref);
  const withModel = run.stages.filter((s) => artifacts.some((a) => a.stageId === s.id && hfName(a)));
  const stage = withModel.at(-1);
  if (!stage) throw new Error(`run ${run.id} (${run.status}) has no finished model to download yet`);
  return stage;
}

export const download: Command = {
  name: 'download',
  summary: "download a stage's final model as a Hugging Face directory (config, tokenizer, safetensors)",
  args: ['id'],
  options: {
    stage: {
      type: 'string',
      description: 'which stage (kind or id; default: the last finished one)',
      placeholder: 'STAGE',
    },
    out: {
      type: 'string',
      short: 'o',
      description: 'directory to write (default: ./<run id>-<stage>)',
      placeholder: 'DIR',
    },
  },
  async run(ctx) {
    const client = await ctx.client();
    const run = await client.getRun(ctx.args[0]);
    const { items } = await client.artifacts(run.id);
    const stage = pickStage(run, items, ctx.flags.string('stage'));
    const files = items.filter((a) => a.stageId === stage.id && hfName(a));
    if (files.length === 0)
      throw new Error(`run ${run.id}: stage ${stage.kind} (${stage.status}) has no final model yet`);
    const out = resolve(ctx.io.cwd, ctx.flags.string('out') ?? `${run.id}-${stage.kind}`);
    await mkdir(out, { recursive: true });
    const written: { name: string; bytes: number; sha256: string }[] = [];
    for (const artifact of files) {
      const name = hfName(artifact)!;
      const response = await client.downloadArtifact(run.id, artifact.id, ctx.io.signal);
      if (!response.body) throw new Error(`download ${name}: empty response`);
      const hash = createHash('sha256');
      let bytes = 0;
      const tmp = join(out, `.${name}.part`);
      try {
        await pipeline(
          Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
          new Transform({
            transform(chunk: Buffer, _encoding, done) {
              hash.update(chunk);
              bytes += chunk.length;
              done(null, chunk);
            },
          }),
          createWriteStream(tmp, { mode: 0o644 }),
        );
        const sha256 = hash.digest('hex');
        if (bytes !== artifact.sizeBytes)
          throw new Error(`download ${name}: got ${bytes} bytes, the API listed ${artifact.sizeBytes}`);
        if (artifact.sha256 && artifact.sha256 !== sha256)
          throw new Error(`download ${name}: sha256 ${sha256} differs from the API's ${artifact.sha256}`);
        await rename(tmp, join(out, name));
        written.push({ name, bytes, sha256 });
      } finally {
        await rm(tmp, { force: true });
      }
    }
    written.sort((a, b) => a.name.localeCompare(b.name));
    if (ctx.json)
      ctx.printJson({ runId: run.id, stage: stage.kind, stageId: stage.id, dir: out, files: written });
    else {
      ctx.print(`${stage.kind} model of run ${run.id} -> ${out}`);
      ctx.io.stdout.write(
        table(
          ['  FILE', 'BYTES', 'SHA256'],
          written.map((f) => [`  ${f.name}`, String(f.bytes), f.sha256]),
        ),
      );
    }
    return 0;
  },
};
