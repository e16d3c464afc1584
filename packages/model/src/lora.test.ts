import { checkGradients, Graph, matmul, type Tensor, transpose } from '@rlhf/graph';
import { createRuntime, float64, type HostTensor, int64, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type GptConfig, initParams, presetConfig } from './config.js';
import { LORA_SCALE, withAdapter } from './decoder.js';
import { type HostParams, paramFeeds } from './feeds.js';
import { gptForward, gptParamInputs } from './gpt.js';
import { adapterSize, initLora, LoraError, type LoraSettings, loraScale, mergeLora } from './lora.js';
import { adaptedParams, adapterFeeds, adapterInputs, createLoraScorer } from './lora-graph.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, peftAdapterFiles, peftAdapterFromFiles } from './lora-peft.js';
import { createGenerator } from './generate.js';
import { createRng } from './random.js';
import { readSafetensors } from './safetensors.js';
import { createScorer } from './score.js';
import { maxAbsDiff, runOnce } from './testing/graph-run.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

const gpt2 = presetConfig('tiny');
const llama = presetConfig('tiny-llama');
const settingsFor = (config: GptConfig, over: Partial<LoraSettings> = {}): LoraSettings => ({
  r: 4,
  alpha: 8,
  dropout: 0,
  targetModules: config.architecture === 'llama' ? ['q_proj', 'v_proj', 'down_proj'] : ['c_attn', 'c_proj'],
  useRslora: false,
  modulesToSave: [],
  ...over,
});

/** A trained-looking adapter: PEFT's init, then B filled with noise so the update is not zero. */
function noisyAdapter(config: GptConfig, settings: LoraSettings, base: HostParams, seed = 3) {
  const adapter = initLora(config, settings, base as Map<string, Float32Array>, seed);
  const rng = createRng(seed, 'noise');
  for (const [name, data] of adapter)
    if (name.endsWith('lora_B.weight')) for (let i = 0; i < data.length; i++) data[i] = 0.3 * rng.normal();
  return adapter;
}

const ids = (B: number, T: number, V: number): HostTensor =>
  int64(
    [B, T],
    Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % V),
  );

/** Logits of the plain model, or of base + adapter (adapter = null: the plain graph, no LoRA keys at all). */
async function logits(
  config: GptConfig,
  base: HostParams,
  adapter: { settings: LoraSettings; params: HostParams; scale?: number } | null,
  input: HostTensor,
): Promise<Float32Array> {
  const g = new Graph('lora_forward');
  let params = gptParamInputs(g, config);
  const feeds: Record<string, HostTensor> = { ...paramFeeds(config, base), ids: input };
  if (adapter) {
    const tensors = adapterInputs(g, config, adapter.settings);
    params = adaptedParams(params, tensors, adapter.settings, { adapterScale: adapter.scale });
    Object.assign(feeds, adapterFeeds(config, adapter.settings, adapter.params));
  }
  g.output(gptForward(params, config, g.input('ids', 'int64', ['batch', 'seq'])).logits, 'logits');
  return (await runOnce(runtime, g, feeds)).logits.data as Float32Array;
}

describe.each([
  ['gpt2', gpt2],
  ['llama', llama],
] as const)('LoRA on %s', (_, config) => {
  const base = initParams(config, 1);
  const settings = settingsFor(config);
  const input = ids(2, 9, config.vocabSize);

  test('at init (B = 0) the logits equal the base model exactly', async () => {
    const adapter = initLora(config, settings, base, 5);
    const plain = await logits(config, base, null, input);
    expect(maxAbsDiff(await logits(config, base, { settings, params: adapter }, input), plain)).toBe(0);
  });

  test('the merged checkpoint gives base + adapter logits within 1e-5; adapter scale 0 gives the base', async () => {
    const adapter = noisyAdapter(config, settings, base);
    const withLora = await logits(config, base, { settings, params: adapter }, input);
    const merged = await logits(config, mergeLora(config, settings, base, adapter), null, input);
    const plain = await logits(config, base, null, input);
    const diff = maxAbsDiff(withLora, merged);
    console.log(
      `${config.architecture ?? 'gpt2'}: |LoRA − merged| ${diff.toExponential(2)}, |LoRA − base| ${maxAbsDiff(withLora, plain).toExponential(2)}`,
    );
    expect(diff).toBeLessThan(1e-5);
    expect(maxAbsDiff(withLora, plain)).toBeGreaterThan(1e-2); // the adapter does change the model
    const off = await logits(config, base, { settings, params: adapter, scale: 0 }, input);
    expect(maxAbsDiff(off, plain)).toBe(0);
  });

  test('policy and reference log-probs from one graph; the reference equals a separately loaded base', async () => {
    const adapter = noisyAdapter(config, settings, base);
    const request = {
      prompts: [
        [256, 50, 51],
        [256, 52],
      ],
      padId: 258,
      responses: [
        [60, 61, 257],
        [62, 257, 258],
      ],
      responseMask: [
        [1, 1, 1],
        [1, 1, 0],
      ],
    };
    const lora = await createLoraScorer(runtime, config, settings);
    const scored = await lora.score({ ...request, base, adapter });
    await lora.release();
    const plain = await createScorer(runtime, config, { outputs: ['logprobs'] });
    const baseLogprobs = (await plain.score({ ...request, params: base })).logprobs as number[][];
    const mergedLogprobs = (
      await plain.score({ ...request, params: mergeLora(config, settings, base, adapter) })
    ).logprobs as number[][];
    await plain.release();
    expect(maxAbsDiff(scored.refLogprobs!.flat(), baseLogprobs.flat())).toBeLessThan(1e-6);
    expect(maxAbsDiff(scored.logprobs!.flat(), mergedLogprobs.flat())).toBeLessThan(1e-5);
    expect(maxAbsDiff(scored.logprobs!.flat(), baseLogprobs.flat())).toBeGreaterThan(1e-3);

    // One side only: the other is not in the graph; the reference-only scorer is fed no adapter at all.
    const reference = await createLoraScorer(runtime, config, settings, 'float32', ['reference']);
    const refOnly = await reference.score({ ...request, base });
    await reference.release();
    const policy = await createLoraScorer(runtime, config, settings, 'float32', ['policy']);
    const policyOnly = await policy.score({ ...request, base, adapter });
    await policy.release();
    expect(refOnly.logprobs).toBeUndefined();
    expect(policyOnly.refLogprobs).toBeUndefined();
    expect(maxAbsDiff(refOnly.refLogprobs!.flat(), scored.refLogprobs!.flat())).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(refOnly.refLogprobs!.flat(), baseLogprobs.flat())).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(policyOnly.logprobs!.flat(), scored.logprobs!.flat())).toBeLessThanOrEqual(1e-6);
    await expect(
      (async () => {
        const needsAdapter = await createLoraScorer(runtime, config, settings, 'float32', ['policy']);
        try {
          await needsAdapter.score({ ...request, base });
        } finally {
          await needsAdapter.release();
        }
      })(),
    ).rejects.toThrow(/needs request.adapter/);
  });

  test('generation serves base + adapter unmerged: greedy tokens and log-probs of the merged model', async () => {
    const adapter = noisyAdapter(config, settings, base);
    const request = {
      prompts: [
        [256, 50, 51],
        [256, 52],
      ],
      maxNewTokens: 6,
      temperature: 0,
      eosId: -1,
      padId: 258,
    };
    const served = await createGenerator(runtime, config, { lora: settings });
    const unmerged = await served.generate({ ...request, params: base, adapter });
    await served.release();
    const plain = await createGenerator(runtime, config);
    const merged = await plain.generate({ ...request, params: mergeLora(config, settings, base, adapter) });
    const bare = await plain.generate({ ...request, params: base });
    await plain.release();
    expect(unmerged.tokens).toEqual(merged.tokens);
    expect(unmerged.tokens).not.toEqual(bare.tokens);
    expect(maxAbsDiff(unmerged.logprobs.flat(), merged.logprobs.flat())).toBeLessThan(1e-5);
  });

  test('PEFT export → import round trip: same tensors, same outputs, PEFT key names', async () => {
    const saved = { ...settings, modulesToSave: config.architecture === 'llama' ? ['lm_head'] : ['ln_f'] };
    const adapter = noisyAdapter(config, saved, base);
    const files = peftAdapterFiles(config, saved, adapter, 'org/base');
    const json = JSON.parse(new TextDecoder().decode(files[ADAPTER_CONFIG]));
    expect(json).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0,
      target_modules: settings.targetModules,
      use_rslora: false,
      bias: 'none',
      base_model_name_or_path: 'org/base',
      fan_in_fan_out: config.architecture !== 'llama',
    });
    const keys = [...readSafetensors(files[ADAPTER_WEIGHTS]).tensors.keys()];
    if (config.architecture === 'llama') {
      expect(keys).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
      expect(keys).toContain('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight');
      expect(keys).toContain('base_model.model.lm_head.weight');
    } else {
      expect(keys).toContain('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight');
      expect(keys).toContain('base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight');
      expect(keys).toContain('base_model.model.transformer.ln_f.weight');
    }
    expect(keys).toHaveLength(adapter.size);
    const loaded = peftAdapterFromFiles(config, files);
    expect(loaded.settings).toEqual(saved);
    expect(loaded.baseModel).toBe('org/base');
    expect([...loaded.adapter.keys()]).toEqual([...adapter.keys()]);
    for (const [name, data] of adapter) expect(loaded.adapter.get(name)).toEqual(data);
    const before = await logits(config, base, { settings: saved, params: adapter }, input);
    const after = await logits(config, base, { settings: saved, params: loaded.adapter }, input);
    expect(maxAbsDiff(before, after)).toBe(0);
  });
});

describe('LoRA maths', () => {
  test('one adapted linear equals x(W + sBA) computed naively in float64 (nn.Linear and Conv1D layouts)', async () => {
    const [T, n, m, r, s] = [3, 5, 4, 2, 1.75];
    const rng = createRng(9, 'linear');
    const rand = (k: number) => Array.from({ length: k }, () => rng.normal());
    const [x, w, a, b] = [rand(T * n), rand(n * m), rand(r * n), rand(m * r)];
    for (const layout of ['conv1d', 'linear'] as const) {
      const g = new Graph('adapted_linear');
      const xt = g.input('x', 'float64', [T, n]);
      const wt = g.input('w', 'float64', layout === 'conv1d' ? [n, m] : [m, n]);
      const params = new Map<string, Tensor>([
        ['l.lora_A.weight', g.input('a', 'float64', [r, n])],
        ['l.lora_B.weight', g.input('b', 'float64', [m, r])],
        [LORA_SCALE, g.constant(s, 'float64')],
      ]);
      const y = matmul(xt, layout === 'conv1d' ? wt : transpose(wt, [1, 0]));
      g.output(withAdapter(params, 'l', xt, y), 'y');
      const session = await runtime.createSession(g.toBytes());
      const out = (
        await session.run({
          x: float64([T, n], x),
          w: float64(layout === 'conv1d' ? [n, m] : [m, n], w),
          a: float64([r, n], a),
          b: float64([m, r], b),
        })
      ).y.data as Float64Array;
      await session.release();
      for (let t = 0; t < T; t++)
        for (let o = 0; o < m; o++) {
          let want = 0;
          for (let i = 0; i < n; i++) {
            let ba = 0;
            for (let k = 0; k < r; k++) ba += b[o * r + k] * a[k * n + i];
            const wio = layout === 'conv1d' ? w[i * m + o] : w[o * n + i];
            want += x[t * n + i] * (wio + s * ba);
          }
          expect(Math.abs(out[t * m + o] - want)).toBeLessThan(1e-12);
        }
    }
  });

  test('gradients w.r.t. A and B match central differences in float64', async () => {
    const [T, n, m, r] = [3, 4, 3, 2];
    const result = await checkGradients(
      (x, w, a, b) => {
        const params = new Map<string, Tensor>([
          ['l.lora_A.weight', a],
          ['l.lora_B.weight', b],
          [LORA_SCALE, x.graph.constant(0.5, 'float64')],
        ]);
        return withAdapter(params, 'l', x, matmul(x, w));
      },
      [[T, n], { shape: [n, m], wrt: false }, [r, n], [m, r]],
      { runtime },
    );
    expect(result.maxRelError).toBeLessThan(1e-6);
  });

  test('mergeLora folds s·BA into W in each layout; scale α/r or α/√r (rsLoRA)', () => {
    expect(loraScale({ r: 16, alpha: 32, useRslora: false })).toBe(2);
    expect(loraScale({ r: 16, alpha: 32, useRslora: true })).toBe(8);
    const settings = settingsFor(gpt2, { targetModules: ['c_fc'] });
    const base = initParams(gpt2, 2);
    const adapter = noisyAdapter(gpt2, settings, base);
    const merged = mergeLora(gpt2, settings, base, adapter);
    const [n, m, r] = [64, 256, 4]; // c_fc: W [in 64, out 256]
    const a = adapter.get('h.0.mlp.c_fc.lora_A.weight') as Float32Array;
    const b = adapter.get('h.0.mlp.c_fc.lora_B.weight') as Float32Array;
    const w = base.get('h.0.mlp.c_fc.weight') as Float32Array;
    const got = merged.get('h.0.mlp.c_fc.weight') as Float32Array;
    let worst = 0;
    for (let i = 0; i < n; i++)
      for (let o = 0; o < m; o++) {
        let ba = 0;
        for (let k = 0; k < r; k++) ba += b[o * r + k] * a[k * n + i];
        worst = Math.max(worst, Math.abs(got[i * m + o] - (w[i * m + o] + 2 * ba)));
      }
    expect(worst).toBeLessThan(1e-6);
    expect(merged.get('h.0.attn.c_attn.weight')).toBe(base.get('h.0.attn.c_attn.weight'));
    // A ~ U(−1/√in, 1/√in) as PEFT's kaiming_uniform_(a = √5); B = 0.
    const fresh = initLora(gpt2, settings, base, 1);
    const init = fresh.get('h.0.mlp.c_fc.lora_A.weight') as Float32Array;
    expect(Math.max(...init.map(Math.abs))).toBeLessThanOrEqual(1 / 8);
    expect(Math.max(...init.map(Math.abs))).toBeGreaterThan(0.1);
    expect((fresh.get('h.0.mlp.c_fc.lora_B.weight') as Float32Array).every((v) => v === 0)).toBe(true);
    expect(adapterSize(gpt2, settings)).toBe(2 * (4 * 64 + 256 * 4));
  });

  test('bad adapter configs name the field', () => {
    const base = initParams(gpt2, 1);
    const error = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e instanceof LoraError ? e.field : `not a LoraError: ${e}`;
      }
      return 'no error';
    };
    expect(error(() => initLora(gpt2, settingsFor(gpt2, { r: 0 }), base, 1))).toBe('r');
    expect(error(() => initLora(gpt2, settingsFor(gpt2, { targetModules: ['q_proj'] }), base, 1))).toBe(
      'targetModules',
    );
    expect(
      error(() =>
        initLora(llama, settingsFor(llama, { targetModules: ['c_attn'] }), initParams(llama, 1), 1),
      ),
    ).toBe('targetModules');
    expect(error(() => initLora(gpt2, settingsFor(gpt2, { modulesToSave: ['nope'] }), base, 1))).toBe(
      'modulesToSave',
    );
    // PEFT files: the JSON field, or the tensor key whose shape does not fit the base.
    const settings = settingsFor(gpt2);
    const files = peftAdapterFiles(gpt2, settings, initLora(gpt2, settings, base, 1));
    const withJson = (patch: Record<string, unknown>) => {
      const json = JSON.parse(new TextDecoder().decode(files[ADAPTER_CONFIG]));
      return { ...files, [ADAPTER_CONFIG]: new TextEncoder().encode(JSON.stringify({ ...json, ...patch })) };
    };
    expect(error(() => peftAdapterFromFiles(gpt2, withJson({ r: -1 })))).toBe('r');
    expect(error(() => peftAdapterFromFiles(gpt2, withJson({ target_modules: ['q_proj'] })))).toBe(
      'target_modules',
    );
    expect(error(() => peftAdapterFromFiles(gpt2, withJson({ peft_type: 'IA3' })))).toBe('peft_type');
    const wider = presetConfig('tiny', { nEmbd: 128 });
    expect(error(() => peftAdapterFromFiles(wider, files))).toBe(
      'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight',
    );
    expect(error(() => peftAdapterFromFiles(gpt2, withJson({ r: 8 })))).toBe(
      'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight',
    );
  });
});
