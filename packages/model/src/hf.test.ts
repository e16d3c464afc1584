import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GptConfig, initParams, presetConfig } from './config.js';
import { checkpointFiles, checkpointFromFiles, loadCheckpoint, loadHfGpt2, saveCheckpoint } from './hf.js';
import { CheckpointError, f32ToF16, readSafetensors, type SafeTensor } from './safetensors.js';
import { hfGpt2ConfigJson, hfGpt2Tensors, tinyGpt2TokenizerJson, writeHfGpt2Dir } from './testing/tiny-hf.js';
import { ByteTokenizer } from './tokenizer.js';

// A tiny GPT-2 over the 261-token test tokenizer.
const config: GptConfig = presetConfig('tiny', { vocabSize: 261, maxPositions: 16, nEmbd: 8, nHead: 2 });
const params = initParams(config, 5);

let root: string;
let n = 0;
const freshDir = () => join(root, `ckpt-${n++}`);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hf-gpt2-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function expectCheckpointError(
  promise: Promise<unknown>,
  message: RegExp,
  tensor?: string,
): Promise<void> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CheckpointError);
  expect((error as CheckpointError).message).toMatch(message);
  if (tensor !== undefined) expect((error as CheckpointError).tensor).toBe(tensor);
}

async function hfDir(
  mutate: (tensors: Map<string, SafeTensor>) => void = () => {},
  configJson = hfGpt2ConfigJson(config),
) {
  const dir = freshDir();
  const tensors = hfGpt2Tensors(config, params);
  mutate(tensors);
  await writeHfGpt2Dir(dir, configJson, tensors);
  return dir;
}

describe('loadHfGpt2', () => {
  it('loads an HF GPT-2 directory: prefix stripped, buffers and tied lm_head dropped', async () => {
    const loaded = await loadHfGpt2(await hfDir());
    expect(loaded.config).toEqual(config);
    expect([...loaded.params.keys()]).toEqual([...params.keys()]);
    for (const [name, data] of params) expect(loaded.params.get(name)).toEqual(data);
    expect(loaded.metadata).toEqual({ format: 'pt' });
    expect(loaded.tokenizer.encode('hello')).toEqual([258, 78]);
    expect(loaded.tokenizer.eosId).toBe(260);
  });

  it('loads names without the transformer. prefix, without buffers, and F16 weights', async () => {
    const dir = freshDir();
    const tensors = hfGpt2Tensors(config, params, { prefix: false, buffers: false, lmHead: false });
    const wpe = tensors.get('wpe.weight')!;
    tensors.set('wpe.weight', { dtype: 'F16', shape: wpe.shape, data: f32ToF16(wpe.data as Float32Array) });
    await writeHfGpt2Dir(dir, hfGpt2ConfigJson(config), tensors);
    const loaded = await loadHfGpt2(dir);
    expect(loaded.params.get('h.1.mlp.c_fc.weight')).toEqual(params.get('h.1.mlp.c_fc.weight'));
    const maxError = params
      .get('wpe.weight')!
      .reduce((m, v, i) => Math.max(m, Math.abs(v - loaded.params.get('wpe.weight')![i])), 0);
    expect(maxError).toBeGreaterThan(0);
    expect(maxError).toBeLessThan(1e-4);
  });

  it('names missing, unexpected and mis-shaped tensors', async () => {
    await expectCheckpointError(
      loadHfGpt2(await hfDir((t) => t.delete('transformer.h.1.ln_2.bias'))),
      /missing tensor "h.1.ln_2.bias" \(expected shape \[8\]\)/,
      'h.1.ln_2.bias',
    );
    await expectCheckpointError(
      loadHfGpt2(
        await hfDir((t) =>
          t.set('transformer.h.2.ln_1.bias', { dtype: 'F32', shape: [8], data: new Float32Array(8) }),
        ),
      ),
      /unexpected tensor "transformer.h.2.ln_1.bias"/,
      'transformer.h.2.ln_1.bias',
    );
    await expectCheckpointError(
      loadHfGpt2(
        await hfDir((t) => {
          const w = t.get('transformer.h.0.attn.c_attn.weight')!;
          t.set('transformer.h.0.attn.c_attn.weight', { ...w, shape: [24, 8] } as SafeTensor);
        }),
      ),
      /tensor "transformer.h.0.attn.c_attn.weight" has shape \[24,8\] but the config expects \[8,24\]/,
      'h.0.attn.c_attn.weight',
    );
  });

  it('rejects an untied lm_head, non-finite weights and corrupt files', async () => {
    await expectCheckpointError(
      loadHfGpt2(
        await hfDir((t) => {
          const head = Float32Array.from(params.get('wte.weight')!);
          head[3] += 1;
          t.set('lm_head.weight', { dtype: 'F32', shape: [261, 8], data: head });
        }),
      ),
      /lm_head.weight differs from wte.weight/,
      'lm_head.weight',
    );
    await expectCheckpointError(
      loadHfGpt2(
        await hfDir((t) => {
          const bias = new Float32Array(8);
          bias[2] = Number.NaN;
          t.set('transformer.ln_f.bias', { dtype: 'F32', shape: [8], data: bias });
        }),
      ),
      /tensor "ln_f.bias" has a non-finite value at 2/,
      'ln_f.bias',
    );
    const truncated = await hfDir();
    const bytes = await readFile(join(truncated, 'model.safetensors'));
    await writeFile(join(truncated, 'model.safetensors'), bytes.subarray(0, bytes.length - 4));
    await expectCheckpointError(
      loadHfGpt2(truncated),
      /model\.safetensors: tensor ".*": data_offsets .* out of range/,
    );
  });

  it('reads config.json strictly', async () => {
    const base = hfGpt2ConfigJson(config);
    await expectCheckpointError(
      loadHfGpt2(await hfDir(undefined, { ...base, activation_function: 'relu' })),
      /activation_function "relu"/,
    );
    await expectCheckpointError(
      loadHfGpt2(await hfDir(undefined, { ...base, n_head: 3 })),
      /config\.json: nEmbd \(8\) must be divisible by nHead \(3\)/,
    );
    await expectCheckpointError(
      loadHfGpt2(await hfDir(undefined, { ...base, n_embd: '8' })),
      /n_embd must be an integer, got "8"/,
    );
    const noTokenizer = await hfDir();
    await rm(join(noTokenizer, 'tokenizer.json'));
    await expectCheckpointError(loadHfGpt2(noTokenizer), /missing .*tokenizer\.json/);
    await expectCheckpointError(
      loadHfGpt2(join(root, 'does-not-exist')),
      /checkpoint directory .*does-not-exist does not exist/,
    );
  });
});

describe('saveCheckpoint / loadCheckpoint', () => {
  it('round trips a model in the layout HF save_pretrained writes', async () => {
    const dir = freshDir();
    await saveCheckpoint(dir, config, params, { metadata: { step: '40' } });
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']); // no temp files left
    const hfConfig = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    expect(hfConfig).toMatchObject({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      n_embd: 8,
      n_layer: 2,
    });
    const file = readSafetensors(await readFile(join(dir, 'model.safetensors')));
    expect(file.metadata).toEqual({ step: '40', format: 'pt' });
    expect(file.tensors.get('transformer.h.0.attn.c_attn.weight')!.shape).toEqual([8, 24]);
    expect(file.tensors.has('lm_head.weight')).toBe(false);

    const loaded = await loadCheckpoint(dir);
    expect(loaded.config).toEqual(config);
    for (const [name, data] of params) expect(loaded.params.get(name)).toEqual(data);
    expect(loaded.tokenizer).toBeInstanceOf(ByteTokenizer);
    expect(loaded.metadata.step).toBe('40');
  });

  it('round trips a scalar-head model with score.weight stored as HF [1, d]', async () => {
    const rmConfig = { ...config, scalarHead: true };
    const rmParams = initParams(rmConfig, 9);
    rmParams.get('score.bias')![0] = 0.25;
    const dir = freshDir();
    await saveCheckpoint(dir, rmConfig, rmParams);
    const file = readSafetensors(await readFile(join(dir, 'model.safetensors')));
    expect(file.tensors.get('score.weight')!.shape).toEqual([1, 8]);
    expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).architectures).toEqual([
      'GPT2ForSequenceClassification',
    ]);
    const loaded = await loadCheckpoint(dir);
    expect(loaded.config).toEqual(rmConfig);
    for (const [name, data] of rmParams) expect(loaded.params.get(name)).toEqual(data);
  });

  it('loads an HF GPT2ForSequenceClassification checkpoint (score.weight, no score.bias)', async () => {
    const dir = await hfDir((t) => {
      t.delete('lm_head.weight');
      t.set('score.weight', { dtype: 'F32', shape: [1, 8], data: new Float32Array(8).fill(0.5) });
    });
    const loaded = await loadHfGpt2(dir);
    expect(loaded.config.scalarHead).toBe(true);
    expect(loaded.params.get('score.weight')).toEqual(new Float32Array(8).fill(0.5));
    expect(loaded.params.get('score.bias')).toEqual(new Float32Array(1));
  });

  it('copies the tokenizer files and refuses incomplete or non-finite parameters', async () => {
    const tokenizerDir = freshDir();
    await writeHfGpt2Dir(tokenizerDir, hfGpt2ConfigJson(config), hfGpt2Tensors(config, params));
    const dir = freshDir();
    await saveCheckpoint(dir, config, params, { tokenizerDir });
    expect(JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8'))).toEqual(tinyGpt2TokenizerJson());
    expect((await loadCheckpoint(dir)).tokenizer.encode(' world')[0]).toBe(259);

    const missing = new Map(params);
    missing.delete('wpe.weight');
    await expectCheckpointError(
      saveCheckpoint(freshDir(), config, missing),
      /missing parameter "wpe.weight"/,
      'wpe.weight',
    );
    const extra = new Map(params).set('score.weight', new Float32Array(8));
    await expectCheckpointError(
      saveCheckpoint(freshDir(), config, extra),
      /unexpected parameter "score.weight"/,
    );
    const nan = new Map(params).set('ln_f.bias', new Float32Array(8).fill(Number.NaN));
    const nanDir = freshDir();
    await expectCheckpointError(saveCheckpoint(nanDir, config, nan), /non-finite/, 'ln_f.bias');
    expect(existsSync(nanDir)).toBe(false);
  });

  it('rejects a model whose vocabulary is smaller than its tokenizer', async () => {
    const small = { ...config, vocabSize: 200 };
    const dir = freshDir();
    await saveCheckpoint(dir, small, initParams(small, 1));
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tinyGpt2TokenizerJson()));
    await expectCheckpointError(
      loadCheckpoint(dir),
      /tokenizer has 261 tokens but the model's vocab_size is 200/,
    );
  });
});

describe('in-memory checkpoint files', () => {
  it('checkpointFiles -> checkpointFromFiles round trip, scalar head included', () => {
    const config = { ...presetConfig('tiny'), nLayer: 1, scalarHead: true };
    const params = initParams(config, 3);
    const files = checkpointFiles(config, params, { step: '7' });
    const back = checkpointFromFiles(files);
    expect(back.config).toEqual(config);
    expect(back.metadata).toEqual({ step: '7', format: 'pt' });
    for (const [name, data] of params) expect(back.params.get(name), name).toEqual(data);
  });

  it('a corrupt weights file names the source', () => {
    const config = { ...presetConfig('tiny'), nLayer: 1 };
    const files = checkpointFiles(config, initParams(config, 1));
    const broken = { ...files, 'model.safetensors': files['model.safetensors'].subarray(0, 100) };
    expect(() => checkpointFromFiles(broken, 'runs/r1/step-3')).toThrow(
      /runs\/r1\/step-3\/model\.safetensors/,
    );
  });
});
