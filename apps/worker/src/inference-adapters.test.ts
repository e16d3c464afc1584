// Serving LoRA adapters on one loaded base: each adapter's model directory (merged model + adapter/, as a LoRA
// stage leaves it) answers with base + its adapter unmerged, token for token what its merged model answers, and
// the cache holds one base for both; without a stored base the merged model serves.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  createRng,
  type GptConfig,
  initLora,
  initParams,
  type LoraSettings,
  mergeLora,
  peftAdapterFiles,
  presetConfig,
} from '@rlhf/model';
import { createRuntime, type Runtime, type Weights } from '@rlhf/runtime';
import { modelFiles } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ChunkRow, createModelCache, generateChunk } from './inference-models.js';

const config: GptConfig = presetConfig('tiny', { nLayer: 2, nEmbd: 32, maxPositions: 64 });
const settings: LoraSettings = {
  r: 4,
  alpha: 8,
  dropout: 0,
  targetModules: ['c_attn', 'c_fc'],
  useRslora: false,
  modulesToSave: [],
};
const base = initParams(config, 1);

/** A trained-looking adapter (B ≠ 0): each seed gives another. */
function adapterOf(seed: number): Weights {
  const adapter = initLora(config, settings, base, seed);
  const rng = createRng(seed, 'lora-b');
  for (const [name, data] of adapter)
    if (name.endsWith('lora_B.weight'))
      for (let i = 0; i < data.length; i++) data[i] = 0.5 * (rng.uniform() - 0.5);
  return adapter;
}

let runtime: Runtime;
let dir: string;
async function save(key: string, files: Record<string, Uint8Array>): Promise<void> {
  for (const [name, bytes] of Object.entries(files)) {
    const path = join(dir, key, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
  }
}
/** A LoRA stage's output directory: the merged model, and the adapter on `baseKey` under adapter/. */
async function saveLoraOutput(key: string, adapter: Weights, baseKey: string): Promise<void> {
  const merged = mergeLora(config, settings, base, adapter);
  await save(key, await modelFiles({ config, params: merged }));
  await save(
    key,
    Object.fromEntries(
      Object.entries(peftAdapterFiles(config, settings, adapter, baseKey)).map(([n, b]) => [
        `adapter/${n}`,
        b,
      ]),
    ),
  );
  await save(`${key}-merged`, await modelFiles({ config, params: merged }));
}

beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  dir = await mkdtemp(join(tmpdir(), 'inference-adapters-'));
  await save('runs/base/final', await modelFiles({ config, params: base }));
  await saveLoraOutput('runs/one/final', adapterOf(2), 'runs/base/final');
  await saveLoraOutput('runs/two/final', adapterOf(3), 'runs/base/final');
  // A preset's fresh base is stored nowhere: its directory's merged model serves.
  await saveLoraOutput('runs/preset/final', adapterOf(4), 'tiny');
});
afterAll(async () => {
  await runtime.close();
  await rm(dir, { recursive: true, force: true });
});

const rng = createRng(7, 'uniforms');
const rows: ChunkRow[] = [
  [1, 40, 41, 42],
  [1, 50],
  [1, 60, 61],
].map((ids) => ({ ids, uniforms: Array.from({ length: 12 }, () => rng.uniform()) }));
const sampling = { temperature: 1, topP: 1 };

describe('adapters of one base', () => {
  test('answer with their own outputs (= their merged models) from one loaded base', async () => {
    const cache = createModelCache(runtime, dir, 3);
    const one = await generateChunk(await cache.get('runs/one/final'), rows, 12, sampling);
    const two = await generateChunk(await cache.get('runs/two/final'), rows, 12, sampling);
    expect(cache.loaded()).toEqual(['runs/base/final']);
    expect(cache.adapters()).toEqual(['runs/one/final', 'runs/two/final']);

    const references = createModelCache(runtime, dir, 3);
    for (const [served, key] of [
      [one, 'runs/one/final-merged'],
      [two, 'runs/two/final-merged'],
    ] as const) {
      const merged = await generateChunk(await references.get(key), rows, 12, sampling);
      expect(served.tokens).toEqual(merged.tokens);
      served.logprobs.forEach((row, b) => {
        row.forEach((x, t) => {
          expect(Math.abs(x - merged.logprobs[b][t])).toBeLessThan(1e-5);
        });
      });
    }
    await references.close();
    // Each adapter its own answers: the two differ.
    expect(one.tokens).not.toEqual(two.tokens);
    await cache.close();
  });

  test('an adapter outlives its base in the LRU: the base is loaded again when asked for', async () => {
    const cache = createModelCache(runtime, dir, 1);
    const first = await generateChunk(await cache.get('runs/one/final'), rows, 6, sampling);
    await cache.get('runs/one/final-merged'); // evicts the base (capacity 1)
    expect(cache.loaded()).toEqual(['runs/one/final-merged']);
    const again = await generateChunk(await cache.get('runs/one/final'), rows, 6, sampling);
    expect(again.tokens).toEqual(first.tokens);
    expect(cache.loaded()).toEqual(['runs/base/final']);
    await cache.close();
  });

  test('an adapter whose base is not in the store serves its merged model', async () => {
    const cache = createModelCache(runtime, dir, 3);
    const served = await generateChunk(await cache.get('runs/preset/final'), rows, 6, sampling);
    expect(cache.loaded()).toEqual(['runs/preset/final']);
    expect(cache.adapters()).toEqual([]);
    const merged = await generateChunk(await cache.get('runs/preset/final-merged'), rows, 6, sampling);
    expect(served.tokens).toEqual(merged.tokens);
    await cache.close();
  });
});
