import { initParams, presetConfig } from '@rlhf/model';
import { describe, expect, test } from 'vitest';
import { modelFiles, modelFromFiles, trainerFiles, trainerFromFiles } from './files.js';

describe('checkpoint files', () => {
  test('model weights, config and metadata survive modelFiles -> modelFromFiles', async () => {
    const config = presetConfig('tiny', { scalarHead: true });
    const params = initParams(config, 7);
    const files = await modelFiles({ config, params, metadata: { stage: 'rm' } }, { reward_mean: '0.25' });
    expect(Object.keys(files).sort()).toEqual(['config.json', 'model.safetensors']);
    const back = await modelFromFiles(files);
    expect(back.config).toEqual(config);
    expect(back.metadata).toEqual({ stage: 'rm', reward_mean: '0.25' });
    expect([...back.params.keys()]).toEqual([...params.keys()]);
    for (const [name, data] of params) expect(back.params.get(name)).toEqual(data);
  });

  test('a prefix keeps two models apart in one checkpoint', async () => {
    const policy = presetConfig('tiny');
    const value = presetConfig('tiny', { scalarHead: true });
    const files = {
      ...(await modelFiles({ config: policy, params: initParams(policy, 1) })),
      ...(await modelFiles({ config: value, params: initParams(value, 2) }, {}, { prefix: 'value.' })),
    };
    expect((await modelFromFiles(files)).config.scalarHead).toBeUndefined();
    expect((await modelFromFiles(files, { prefix: 'value.' })).config.scalarHead).toBe(true);
  });

  test('optimizer moments and trainer state round-trip', () => {
    const m = new Map([['w', Float32Array.of(0.5, -1.25)]]);
    const v = new Map([['w', Float32Array.of(0.25, 2)]]);
    const files = trainerFiles({ m, v }, { step: 12, seed: 3 });
    const back = trainerFromFiles(files);
    expect(back.trainer).toEqual({ step: 12, seed: 3 });
    expect(back.moments.m.get('w')).toEqual(m.get('w'));
    expect(back.moments.v.get('w')).toEqual(v.get('w'));
  });

  test('non-finite weights are refused instead of being checkpointed', async () => {
    const config = presetConfig('tiny');
    const params = initParams(config, 1);
    params.get('ln_f.bias')![3] = Number.NaN;
    await expect(modelFiles({ config, params })).rejects.toThrow(/ln_f\.bias.*non-finite/);
  });
});
