import { join } from 'node:path';
import { SftMetrics } from '@rlhf/contracts';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  adapterSize,
  countParams,
  initParams,
  LoraError,
  mergeLora,
  peftAdapterFromFiles,
  presetConfig,
  readSafetensors,
} from '@rlhf/model';
import { type CheckpointStore, directoryCheckpointStore, type ModelWeights, SHUTDOWN } from '@rlhf/stage-kit';
import { describe, expect, test } from 'vitest';
import { trainSft } from './index.js';
import { SORT_DIGITS_SFT, sortDigitsSft } from './testing/sort-digits-run.js';
import { loraSettingsOf } from './lora.js';

const tiny = presetConfig('tiny');
const common = SORT_DIGITS_SFT;
const lora = { r: 8, alpha: 16, targetModules: ['c_attn', 'c_proj', 'c_fc'] };

const sft = sortDigitsSft(common);
const { run } = sft;

const bytesOf = async (store: CheckpointStore, name: string) =>
  ((await store.latest())?.files[name] as Uint8Array | undefined)?.length ?? 0;

describe('LoRA SFT on sort-digits (tiny preset)', () => {
  test('only the adapter trains; held-out loss within the documented factor of full SFT; files scale with the adapter', async () => {
    // The base: a short full SFT from scratch (a model that knows bytes, not yet the task's answers).
    const warm = await run(
      { maxSteps: 60, lr: 3e-3, evalEvery: 1000 },
      { config: tiny, params: initParams(tiny, 0) },
    );
    const base = warm.result.model;
    const baseCopy = new Map([...base.params].map(([k, v]) => [k, v.slice()]));
    const steps = 200;
    const fullStore = directoryCheckpointStore(join(sft.dir, 'full'));
    const full = await run(
      { maxSteps: steps, lr: 3e-3, evalEvery: 1000, checkpointEvery: steps },
      base,
      fullStore,
    );
    const loraStore = directoryCheckpointStore(join(sft.dir, 'lora'));
    const adapted = await run(
      { maxSteps: steps, lr: 3e-3, evalEvery: 1000, checkpointEvery: steps, lora },
      base,
      loraStore,
    );
    const ratio = adapted.after / full.after;
    console.log(
      `lora sft: base held-out loss ${adapted.before.toFixed(4)}; after ${steps} steps full ${full.after.toFixed(4)}, ` +
        `LoRA r=8 ${adapted.after.toFixed(4)} (ratio ${ratio.toFixed(3)})`,
    );
    expect(adapted.before).toBeCloseTo(full.before, 5); // both start from the same base
    expect(adapted.after).toBeLessThan(0.9 * adapted.before); // measured 0.97 -> 0.82
    // Documented factor: LoRA's held-out loss ≤ 1.5 × full SFT's at the same steps and lr (measured 1.39 at r 8;
    // the tiny model's embeddings, which full SFT also trains, matter for it).
    expect(ratio).toBeLessThan(1.5);
    // The base never changed (it is a shared input, not an optimizer variable).
    for (const [name, data] of base.params) expect(data).toEqual(baseCopy.get(name));
    // The result: the adapter and the merged model.
    const adapter = adapted.result.adapter;
    if (!adapter) throw new Error('no adapter in the result');
    expect(adapted.result.model.params).toEqual(
      mergeLora(tiny, adapter.settings, base.params, adapter.params),
    );
    const imported = peftAdapterFromFiles(tiny, adapter.files);
    expect(imported.adapter).toEqual(adapter.params);
    // An imported PEFT adapter as a stage's starting point: its held-out loss at step 0 is the trained one's.
    let startLoss = Number.NaN;
    await trainSft({
      config: { ...common, maxSteps: 1, lr: 1e-3, lora },
      model: base,
      rows: sft.rows,
      runtime: sft.runtime,
      adapter: imported.adapter,
      hooks: {
        onMetrics: (step, values) => {
          if (step === 0) startLoss = values[SftMetrics.evalLoss];
        },
      },
    });
    expect(Math.abs(startLoss - adapted.after)).toBeLessThan(1e-6);
    // Checkpoint: PEFT files + the adapter's moments only; sizes scale with the adapter, not the model.
    const saved = await loraStore.latest();
    expect(Object.keys(saved?.files ?? {}).sort()).toEqual(
      [ADAPTER_CONFIG, ADAPTER_WEIGHTS, 'optimizer.safetensors', 'trainer.json'].sort(),
    );
    const optimizerKeys = [
      ...readSafetensors(saved?.files['optimizer.safetensors'] as Uint8Array).tensors.keys(),
    ];
    expect(optimizerKeys.every((k) => k.includes('.lora_'))).toBe(true);
    const values = adapterSize(
      tiny,
      loraSettingsOf({ ...lora, dropout: 0, useRslora: false, modulesToSave: [] }, tiny),
    );
    const [adapterBytes, loraMoments] = [
      await bytesOf(loraStore, ADAPTER_WEIGHTS),
      await bytesOf(loraStore, 'optimizer.safetensors'),
    ];
    const [modelBytes, fullMoments] = [
      await bytesOf(fullStore, 'model.safetensors'),
      await bytesOf(fullStore, 'optimizer.safetensors'),
    ];
    console.log(
      `checkpoint: adapter ${adapterBytes} B + moments ${loraMoments} B (${values} values) vs model ${modelBytes} B + moments ${fullMoments} B (${countParams(tiny)} values)`,
    );
    expect(Math.abs(adapterBytes - 4 * values)).toBeLessThan(8192); // float32 values + the header
    expect(Math.abs(loraMoments - 8 * values)).toBeLessThan(8192);
    expect(loraMoments / fullMoments).toBeLessThan((1.1 * values) / countParams(tiny));
    // Twice the rank: twice the adapter and optimizer bytes.
    const wideStore = directoryCheckpointStore(join(sft.dir, 'wide'));
    await run(
      { maxSteps: 1, lr: 1e-3, evalEvery: 1000, validationFraction: 0, lora: { ...lora, r: 16 } },
      base,
      wideStore,
    );
    const [wideAdapter, wideMoments] = [
      await bytesOf(wideStore, ADAPTER_WEIGHTS),
      await bytesOf(wideStore, 'optimizer.safetensors'),
    ];
    expect(wideAdapter / adapterBytes).toBeCloseTo(2, 1);
    expect(wideMoments / loraMoments).toBeCloseTo(2, 1);
  }, 600_000); // four SFT runs: ~120 s on a loaded 2-core machine, past vitest's default

  test('resumes from its adapter checkpoint to the same adapter; bad lora settings name the field', async () => {
    const base: ModelWeights = { config: tiny, params: initParams(tiny, 1) };
    const config = {
      maxSteps: 8,
      lr: 1e-2,
      stepsPerCall: 2,
      validationFraction: 0,
      lora: { ...lora, dropout: 0.1 },
    };
    const straight = await run({ ...config, lora: { ...lora } }, base);
    const store = directoryCheckpointStore(join(sft.dir, 'resume'));
    const controller = new AbortController();
    await expect(
      trainSft({
        config: { ...common, ...config, lora: { ...lora }, checkpointEvery: 4 },
        model: base,
        rows: sft.rows,
        runtime: sft.runtime,
        hooks: {
          checkpoints: store,
          signal: controller.signal,
          onMetrics: (step) => {
            if (step === 4) controller.abort(SHUTDOWN);
          },
        },
      }),
    ).rejects.toThrow();
    expect((await store.latest())?.step).toBe(4);
    const resumed = await run({ ...config, lora: { ...lora } }, base, store);
    expect(resumed.result.adapter?.params).toEqual(straight.result.adapter?.params);
    // Dropout trains too (a different adapter from the same start).
    const dropped = await run(config, base);
    expect(dropped.result.adapter?.params).not.toEqual(straight.result.adapter?.params);
    const fieldOf = async (patch: object) =>
      trainSft({
        config: { ...common, maxSteps: 1, lora: { ...lora, ...patch } },
        model: base,
        rows: sft.rows,
        runtime: sft.runtime,
      }).then(
        () => 'no error',
        (e) => (e instanceof LoraError ? e.field : String(e)),
      );
    expect(await fieldOf({ targetModules: ['q_proj'] })).toBe('targetModules');
    expect(await fieldOf({ modulesToSave: ['embed_tokens'] })).toBe('modulesToSave');
    await expect(fieldOf({ r: 0 })).resolves.toMatch(/lora\/r/);
    // Names no decoder has fail when the config is checked (a 400 at submission), before any model is known.
    await expect(fieldOf({ targetModules: ['c_attn', 'attention'] })).resolves.toMatch(
      /lora\/targetModules\/1/,
    );
  });

  test('tiny Llama: LoRA on the default targets (q_proj, v_proj) lowers the held-out loss', async () => {
    const config = presetConfig('tiny-llama');
    const base: ModelWeights = { config, params: initParams(config, 2) };
    const warm = await run({ maxSteps: 40, lr: 3e-3, evalEvery: 1000 }, base);
    const adapted = await run({ maxSteps: 60, lr: 5e-3, evalEvery: 1000, lora: { r: 8 } }, warm.result.model);
    console.log(
      `tiny-llama lora sft: held-out loss ${adapted.before.toFixed(4)} -> ${adapted.after.toFixed(4)}`,
    );
    expect(adapted.result.adapter?.settings.targetModules).toEqual(['q_proj', 'v_proj']);
    expect(adapted.after).toBeLessThan(0.95 * adapted.before);
  });
});
