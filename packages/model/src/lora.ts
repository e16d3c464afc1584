// LoRA (Hu et al. 2022): a frozen base weight W plus a trainable low-rank update s·BA on chosen linear layers.
// This file holds the adapter's host side: which linears an adapter targets, its tensors' names and shapes
// (PEFT's: lora_A [r, in], lora_B [out, r], whatever our W's layout), PEFT's initialisation, and merging into W.
// The graph side is decoder.ts withAdapter; the PEFT file format is lora-peft.ts.
import { type GptConfig, isLlama, type ParamShape, paramShapes, shapeSize } from './config.js';
import { createRng } from './random.js';

/** A LoRA adapter's hyperparameters (PEFT LoraConfig names in camelCase; @rlhf/contracts LoraConfig). */
export interface LoraSettings {
  /** Rank r of A [r, in] and B [out, r]. */
  r: number;
  /** lora_alpha: the update is scaled by α/r (α/√r with useRslora). */
  alpha: number;
  /** Dropout probability on the adapter's input while training. */
  dropout: number;
  /** Linear layers to adapt, by name or dotted suffix (PEFT target_modules): e.g. q_proj, c_attn, mlp.c_proj. */
  targetModules: readonly string[];
  /** rsLoRA (Kalajdzievski 2023): scale α/√r, stable across ranks. */
  useRslora: boolean;
  /** Modules trained in full beside the adapters (PEFT modules_to_save): e.g. score, lm_head, wte. */
  modulesToSave: readonly string[];
}

/** A stage config's `lora` section (@rlhf/contracts LoraConfig, defaults filled) as this file reads it. */
export interface LoraSection {
  r: number;
  alpha: number;
  dropout: number;
  targetModules?: readonly string[];
  useRslora: boolean;
  modulesToSave: readonly string[];
}

/** PEFT's default targets when a config names none: the attention projections (q_proj, v_proj / c_attn). */
export function defaultTargetModules(config: GptConfig): string[] {
  return isLlama(config) ? ['q_proj', 'v_proj'] : ['c_attn'];
}

/** A stage config's LoRA section as LoraSettings for this base; `extraModules` always train in full (an RM's score). */
export function loraSettingsOf(
  lora: LoraSection,
  config: GptConfig,
  extraModules: string[] = [],
): LoraSettings {
  return {
    r: lora.r,
    alpha: lora.alpha,
    dropout: lora.dropout,
    // HF's GPT-2 module paths start with `transformer.`, ours do not.
    targetModules: (lora.targetModules ?? defaultTargetModules(config)).map((t) =>
      isLlama(config) ? t : t.replace(/^transformer\./, ''),
    ),
    useRslora: lora.useRslora,
    modulesToSave: [...lora.modulesToSave, ...extraModules.filter((m) => !lora.modulesToSave.includes(m))],
  };
}

/** A bad adapter config or adapter file; `field` names the setting (r, targetModules, lora_A shape, ...). */
export class LoraError extends Error {
  override name = 'LoraError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** One adaptable linear layer: its module name (params prefix) and its in/out widths. */
export interface LoraLinear {
  module: string;
  inFeatures: number;
  outFeatures: number;
}

/** The linear layers of the trunk PEFT can target: GPT-2's Conv1D (W [in, out]), Llama's nn.Linear (W [out, in]). */
export function adaptableLinears(config: GptConfig): LoraLinear[] {
  const llama = isLlama(config);
  const linear = llama
    ? /^model\.layers\.\d+\.(self_attn|mlp)\.[a-z_]+_proj\.weight$/
    : /^h\.\d+\.(attn|mlp)\.c_[a-z]+\.weight$/;
  return paramShapes(config)
    .filter((p) => linear.test(p.name))
    .map(({ name, shape }) => ({
      module: name.slice(0, -'.weight'.length),
      inFeatures: llama ? shape[1] : shape[0],
      outFeatures: llama ? shape[0] : shape[1],
    }));
}

/** The short names an architecture's linears answer to (for error messages). */
export function linearKinds(config: GptConfig): string[] {
  return [...new Set(adaptableLinears(config).map((l) => l.module.split('.').at(-1) as string))];
}

/** PEFT's target matching: a module is targeted by its full name or any dotted suffix of it. */
const matches = (module: string, target: string) => module === target || module.endsWith(`.${target}`);

/** Checks the settings against the model; throws LoraError naming the field. */
export function validateLora(config: GptConfig, settings: LoraSettings): void {
  if (!Number.isSafeInteger(settings.r) || settings.r < 1)
    throw new LoraError('r', `must be a positive integer, got ${settings.r}`);
  if (!(Number.isFinite(settings.alpha) && settings.alpha > 0))
    throw new LoraError('alpha', `must be a positive number, got ${settings.alpha}`);
  if (!(settings.dropout >= 0 && settings.dropout < 1))
    throw new LoraError('dropout', `must be in [0, 1), got ${settings.dropout}`);
  if (settings.targetModules.length === 0) throw new LoraError('targetModules', 'names no module');
  const linears = adaptableLinears(config);
  for (const target of settings.targetModules)
    if (!linears.some((l) => matches(l.module, target)))
      throw new LoraError(
        'targetModules',
        `'${target}' is no linear layer of this ${isLlama(config) ? 'Llama-family' : 'GPT-2'} model ` +
          `(known: ${linearKinds(config).join(', ')})`,
      );
  const names = paramShapes(config).map((p) => p.name);
  for (const module of settings.modulesToSave)
    if (!names.some((n) => matches(n.slice(0, n.lastIndexOf('.')), module)))
      throw new LoraError('modulesToSave', `'${module}' is no module of this model`);
}

/** The linears an adapter adapts. */
export function loraTargets(config: GptConfig, settings: LoraSettings): LoraLinear[] {
  validateLora(config, settings);
  return adaptableLinears(config).filter((l) => settings.targetModules.some((t) => matches(l.module, t)));
}

/** The base parameters trained in full (modulesToSave), as paramShapes entries. */
export function savedModuleParams(config: GptConfig, settings: LoraSettings): ParamShape[] {
  return paramShapes(config).filter((p) =>
    settings.modulesToSave.some((m) => matches(p.name.slice(0, p.name.lastIndexOf('.')), m)),
  );
}

/** The adapter's trainable tensors: lora_A [r, in] and lora_B [out, r] per target, then the saved modules. */
export function loraParamShapes(config: GptConfig, settings: LoraSettings): ParamShape[] {
  const { r } = settings;
  return [
    ...loraTargets(config, settings).flatMap((l) => [
      { name: `${l.module}.lora_A.weight`, shape: [r, l.inFeatures] },
      { name: `${l.module}.lora_B.weight`, shape: [l.outFeatures, r] },
    ]),
    ...savedModuleParams(config, settings),
  ];
}

/** The update's scale s: α/r (Hu et al. 2022 §4.1), or α/√r with rsLoRA. */
export function loraScale(settings: Pick<LoraSettings, 'r' | 'alpha' | 'useRslora'>): number {
  return settings.useRslora ? settings.alpha / Math.sqrt(settings.r) : settings.alpha / settings.r;
}

/**
 * A fresh adapter as PEFT initialises one: A ~ U(−1/√in, 1/√in) (kaiming_uniform_ with a = √5), B = 0, so the
 * adapted model starts equal to the base; saved modules start as copies of the base's.
 */
export function initLora(
  config: GptConfig,
  settings: LoraSettings,
  base: ReadonlyMap<string, Float32Array>,
  seed: number,
): Map<string, Float32Array> {
  const adapter = new Map<string, Float32Array>();
  for (const { name, shape } of loraParamShapes(config, settings)) {
    const data = new Float32Array(shapeSize(shape));
    if (name.endsWith('.lora_A.weight')) {
      const bound = 1 / Math.sqrt(shape[1]);
      const rng = createRng(seed, `lora:${name}`);
      for (let i = 0; i < data.length; i++) data[i] = bound * (2 * rng.uniform() - 1);
    } else if (!name.endsWith('.lora_B.weight')) {
      const from = base.get(name);
      if (!from) throw new LoraError('modulesToSave', `the base has no parameter '${name}'`);
      data.set(from);
    }
    adapter.set(name, data);
  }
  return adapter;
}

/** Checks that an adapter has exactly the tensors and shapes the settings give for this base. */
export function checkAdapter(
  config: GptConfig,
  settings: LoraSettings,
  adapter: ReadonlyMap<string, Float32Array>,
): void {
  const expected = loraParamShapes(config, settings);
  for (const { name, shape } of expected) {
    const data = adapter.get(name);
    if (!data) throw new LoraError(name, `missing from the adapter (expected shape [${shape}])`);
    if (data.length !== shapeSize(shape))
      throw new LoraError(name, `has ${data.length} values, the base needs shape [${shape}]`);
  }
  const extra = [...adapter.keys()].find((n) => !expected.some((p) => p.name === n));
  if (extra) throw new LoraError(extra, 'is not a tensor of this adapter on this base');
}

/**
 * The merged model: W + s·BA on each target (in W's layout: BA for nn.Linear, (BA)ᵀ for Conv1D), saved modules
 * replaced; a plain checkpoint that needs no adapter support. Sums in float64, rounds once.
 */
export function mergeLora(
  config: GptConfig,
  settings: LoraSettings,
  base: ReadonlyMap<string, Float32Array>,
  adapter: ReadonlyMap<string, Float32Array>,
): Map<string, Float32Array> {
  checkAdapter(config, settings, adapter);
  const merged = new Map(base);
  const s = loraScale(settings);
  const { r } = settings;
  const llama = isLlama(config);
  for (const { module, inFeatures: n, outFeatures: m } of loraTargets(config, settings)) {
    const a = adapter.get(`${module}.lora_A.weight`) as Float32Array; // [r, in]
    const b = adapter.get(`${module}.lora_B.weight`) as Float32Array; // [out, r]
    const w = base.get(`${module}.weight`) as Float32Array;
    const out = new Float32Array(w.length);
    for (let o = 0; o < m; o++)
      for (let i = 0; i < n; i++) {
        let delta = 0;
        for (let k = 0; k < r; k++) delta += b[o * r + k] * a[k * n + i];
        const at = llama ? o * n + i : i * m + o;
        out[at] = w[at] + s * delta;
      }
    merged.set(`${module}.weight`, out);
  }
  for (const { name } of savedModuleParams(config, settings))
    merged.set(name, adapter.get(name) as Float32Array);
  return merged;
}

/** Values in the adapter (the trainable and checkpointed size). */
export function adapterSize(config: GptConfig, settings: LoraSettings): number {
  return loraParamShapes(config, settings).reduce((n, p) => n + shapeSize(p.shape), 0);
}
