import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkpointFromFiles, gptConfigFromHf, loadCheckpoint } from './hf.js';
import { hfModelFiles } from './hf-export.js';
import { initParams } from './config.js';
import { readSafetensors, type SafeTensor, writeSafetensors } from './safetensors.js';
import { readShardIndex, SAFETENSORS_INDEX, shardFileName, shardWeights, weightDtypes } from './shards.js';
import { hfLlamaShapes, qwen3QkNorm } from './testing/tiny-llama.js';
import { ByteTokenizer } from './tokenizer.js';

const f32 = (n: number, fill: number): SafeTensor => ({
  dtype: 'F32',
  shape: [n],
  data: new Float32Array(n).fill(fill),
});
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe('shardWeights', () => {
  it('splits in order as transformers does: a new shard when the next tensor would pass the limit', () => {
    // 40 + 40 = 80 fits in 80 bytes; 30 starts a shard; 100 (> limit) gets its own; 10 follows it alone.
    const tensors = new Map<string, SafeTensor>([
      ['a', f32(10, 1)],
      ['b', f32(10, 2)],
      ['c', f32(7, 3)],
      ['d', f32(25, 4)],
      ['e', f32(2, 5)],
    ]);
    // c is 28 bytes, e 8: shards [a b] 80, [c] 28 (28 + 100 > 80), [d] 100, [e] 8.
    const files = shardWeights(tensors, { format: 'pt' }, 80);
    expect(Object.keys(files).sort()).toEqual([
      'model-00001-of-00004.safetensors',
      'model-00002-of-00004.safetensors',
      'model-00003-of-00004.safetensors',
      'model-00004-of-00004.safetensors',
      SAFETENSORS_INDEX,
    ]);
    const index = JSON.parse(text(files[SAFETENSORS_INDEX]));
    expect(index).toEqual({
      metadata: { total_size: 40 + 40 + 28 + 100 + 8 },
      weight_map: {
        a: shardFileName(1, 4),
        b: shardFileName(1, 4),
        c: shardFileName(2, 4),
        d: shardFileName(3, 4),
        e: shardFileName(4, 4),
      },
    });
    const second = readSafetensors(files[shardFileName(2, 4)]);
    expect([...second.tensors.keys()]).toEqual(['c']);
    expect(second.metadata).toEqual({ format: 'pt' });
  });

  it('writes one model.safetensors when everything fits', () => {
    const files = shardWeights(new Map([['a', f32(4, 1)]]), {}, 16);
    expect(Object.keys(files)).toEqual(['model.safetensors']);
  });
});

describe('sharded HF checkpoints', () => {
  const hf = { ...qwen3QkNorm, vocab_size: 259 }; // the byte tokenizer's vocabulary
  const config = gptConfigFromHf(hf);
  const params = initParams(config, 7);
  const exported = () =>
    hfModelFiles({ config, params }, { tokenizer: new ByteTokenizer(), maxShardBytes: 16384 });

  it('an export above the shard size has shards + index and loads back exactly, from bytes and from a directory', async () => {
    const files = exported();
    const shards = Object.keys(files).filter((f) => f.startsWith('model-'));
    expect(shards.length).toBeGreaterThan(2);
    expect(files['model.safetensors']).toBeUndefined();
    for (const shard of shards) expect(files[shard].length).toBeLessThan(16384 + 40000); // one tensor may pass it
    const back = checkpointFromFiles({ 'config.json': files['config.json'], ...files });
    expect([...back.params.keys()].sort()).toEqual([...params.keys()].sort());
    for (const [name, values] of params) expect(back.params.get(name)).toEqual(values);

    const dir = await mkdtemp(join(tmpdir(), 'shards-'));
    try {
      for (const [name, data] of Object.entries(files)) await writeFile(join(dir, name), data);
      const loaded = await loadCheckpoint(dir);
      expect(loaded.config).toEqual(back.config);
      for (const [name, values] of params) expect(loaded.params.get(name)).toEqual(values);
      expect((await readdir(dir)).filter((f) => f.endsWith('.safetensors')).length).toBe(shards.length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the default (5 GB) keeps a small model in one model.safetensors', () => {
    const files = hfModelFiles({ config, params }, { tokenizer: new ByteTokenizer() });
    expect(files['model.safetensors']).toBeDefined();
    expect(files[SAFETENSORS_INDEX]).toBeUndefined();
  });

  it('refuses a missing shard, a tensor in another shard than the index says, extra and missing tensors', () => {
    const files: Record<string, Uint8Array> = exported();
    const index = readShardIndex(files[SAFETENSORS_INDEX]);
    // shardNames[0]: a shard of two or more tensors (moving one away leaves it named by the index).
    const counts = new Map<string, number>();
    for (const shard of index.values()) counts.set(shard, (counts.get(shard) ?? 0) + 1);
    const shardNames = [...counts.keys()].sort(
      (a, b) => (counts.get(b) ?? 0) - (counts.get(a) ?? 0) || (a < b ? -1 : 1),
    );
    expect(counts.get(shardNames[0])).toBeGreaterThan(1);
    const load = (changed: Record<string, Uint8Array | undefined>) => () =>
      checkpointFromFiles({ 'config.json': files['config.json'], ...files, ...changed } as never, 'm');

    expect(load({ [shardNames[1]]: undefined })).toThrow(
      `missing ${shardNames[1]} (named by ${SAFETENSORS_INDEX})`,
    );

    const [moved] = [...index].filter(([, shard]) => shard === shardNames[0]).map(([name]) => name);
    const wrongMap = Object.fromEntries([...index].map(([n, s]) => [n, n === moved ? shardNames[1] : s]));
    expect(load({ [SAFETENSORS_INDEX]: json({ weight_map: wrongMap }) })).toThrow(
      `m/${shardNames[0]}: tensor "${moved}" belongs to ${shardNames[1]} according to ${SAFETENSORS_INDEX}`,
    );

    const withExtra = readSafetensors(files[shardNames[0]]).tensors;
    withExtra.set('model.extra.weight', f32(3, 0));
    expect(load({ [shardNames[0]]: writeSafetensors(withExtra) })).toThrow(
      `m/${shardNames[0]}: tensor "model.extra.weight" is not in ${SAFETENSORS_INDEX}`,
    );

    const without = readSafetensors(files[shardNames[0]]).tensors;
    without.delete(moved);
    expect(load({ [shardNames[0]]: writeSafetensors(without) })).toThrow(
      `m/${shardNames[0]}: missing tensor "${moved}" (named by ${SAFETENSORS_INDEX})`,
    );

    const reshaped = readSafetensors(files[shardNames[0]]).tensors;
    const original = reshaped.get(moved) as SafeTensor;
    reshaped.set(moved, { dtype: 'F32', shape: [original.data.length], data: original.data as Float32Array });
    const [, expectedShape] = hfLlamaShapes(hf).find(([n]) => n === moved) ?? [];
    expect(load({ [shardNames[0]]: writeSafetensors(reshaped) })).toThrow(
      `tensor "${moved}" has shape [${original.data.length}] but the config expects [${expectedShape}]`,
    );

    expect(load({ 'model.safetensors': files[shardNames[0]] })).toThrow('both model.safetensors and');
  });

  it('refuses an index with a file that is not a shard, mixed shard counts, or a shard nothing maps to', () => {
    const bad = (weight_map: Record<string, string>) => () => readShardIndex(json({ weight_map }));
    expect(bad({ a: '../x.safetensors' })).toThrow('not a model-0000i-of-0000n.safetensors file');
    expect(bad({ a: shardFileName(1, 2), b: shardFileName(2, 3) })).toThrow(
      'shards of 2 and of 3 files are mixed',
    );
    expect(bad({ a: shardFileName(1, 2) })).toThrow(`no tensor maps to ${shardFileName(2, 2)}`);
    expect(bad({})).toThrow('weight_map is empty');
  });

  it('reads the dtypes of every shard from the headers', () => {
    const files = exported();
    expect([...weightDtypes(files)]).toEqual(['F32']);
  });
});
