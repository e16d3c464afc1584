// An independent float64 reference of SFT optimizer steps, to check trainSft against: written from TRL's
// SFTTrainer and torch.optim.AdamW, sharing no code with packages/graph, stage-kit or sft.
//
// The loss, as TRL's SFTTrainer defines it for prompt-completion rows with completion_only_loss (its default
// there) and as trainSft defines it (stage-kit tokenizeExample + sft.ts sftExample + graph crossEntropy):
//   - a row is [bos if the tokenizer adds one] + prompt + completion + [eos] (TRL appends eos to the completion);
//   - every position t predicts token t+1 (HF shifts the labels); a prediction carries loss when its target is a
//     completion token, eos included (TRL: labels = -100 where completion_mask is 0, so prompt and bos targets
//     and padding carry none);
//   - the batch loss is the sum of those tokens' NLL over the whole batch divided by their count in the batch
//     (HF's ForCausalLMLoss with num_items_in_batch: a token-level mean, not a mean of per-row means).
// The gradient is central finite differences of that loss in float64; the update is torch.optim.AdamW after
// torch.nn.utils.clip_grad_norm_, with HF Trainer's weight-decay groups and linear/cosine/constant schedules.

/** Float64 logits [position][vocab] of one token row. */
export type ReferenceLogits = (
  params: ReadonlyMap<string, Float64Array>,
  tokens: number[],
) => ArrayLike<number>[];

/** A prompt-completion row as token ids (before framing). */
export interface ReferenceRow {
  prompt: number[];
  completion: number[];
}

export interface ReferenceFraming {
  /** The bos id when the tokenizer starts sequences with one, else null. */
  bos: number | null;
  eos: number;
}

/** TRL completion-only SFT loss of a batch (see the file comment). */
export function referenceSftLoss(
  logits: ReferenceLogits,
  params: ReadonlyMap<string, Float64Array>,
  batch: readonly ReferenceRow[],
  framing: ReferenceFraming,
): number {
  let nll = 0;
  let count = 0;
  for (const row of batch) {
    const prefix = [...(framing.bos === null ? [] : [framing.bos]), ...row.prompt];
    const ids = [...prefix, ...row.completion, framing.eos];
    const out = logits(params, ids.slice(0, -1));
    // Position t predicts ids[t + 1]; targets from prefix.length on are completion tokens.
    for (let t = prefix.length - 1; t < ids.length - 1; t++) {
      nll -= logSoftmaxAt(out[t], ids[t + 1]);
      count++;
    }
  }
  return nll / count;
}

function logSoftmaxAt(row: ArrayLike<number>, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return row[index] - max - Math.log(sum);
}

/** ∂loss/∂p for every parameter value by central differences (loss(p + h) − loss(p − h)) / 2h. */
export function finiteDifferenceGradient(
  loss: (params: ReadonlyMap<string, Float64Array>) => number,
  params: ReadonlyMap<string, Float64Array>,
  h: number,
): Map<string, Float64Array> {
  const grads = new Map<string, Float64Array>();
  for (const [name, values] of params) {
    const g = new Float64Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const saved = values[i];
      values[i] = saved + h;
      const up = loss(params);
      values[i] = saved - h;
      const down = loss(params);
      values[i] = saved;
      g[i] = (up - down) / (2 * h);
    }
    grads.set(name, g);
  }
  return grads;
}

export interface ReferenceOptimizer {
  lr: number;
  /** 'linear' / 'cosine' decay to 0 at totalSteps (HF get_linear/cosine_schedule_with_warmup), or 'constant'. */
  schedule: 'linear' | 'cosine' | 'constant';
  totalSteps: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** clip_grad_norm_ max_norm; 0 = no clipping. */
  maxGradNorm: number;
}

/** HF schedules' lr at 0-based step t without warm-up (HF's warm-up, step/W, starts at 0: not modelled here). */
export function referenceLr(o: ReferenceOptimizer, t: number): number {
  if (o.schedule === 'constant') return o.lr;
  const progress = t / o.totalSteps;
  return o.schedule === 'linear'
    ? o.lr * Math.max(0, 1 - progress)
    : o.lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** HF Trainer's get_decay_parameter_names: no weight decay on biases and on LayerNorm / RMSNorm weights. */
export function decays(name: string): boolean {
  return !/bias$/.test(name) && !/(^|\.)(ln_\d|ln_f|\w*norm)\.weight$/.test(name);
}

export interface ReferenceStepResult {
  /** Loss before each step (the loss its gradient is of). */
  losses: number[];
  /** Global gradient norm of each step, before clipping. */
  gradNorms: number[];
  /** Parameters after the last step. */
  params: Map<string, Float64Array>;
}

/**
 * `batches.length` AdamW steps from `initial` (zero moments), step t on batches[t]: gradient by finite differences
 * with step h, clipped to the global norm, then torch.optim.AdamW (decoupled decay p ← p − lr·wd·p first; then
 * m̂ = m/(1−β1^t), v̂ = v/(1−β2^t), p ← p − lr·m̂/(√v̂ + ε)).
 */
export function referenceSftSteps(
  logits: ReferenceLogits,
  initial: ReadonlyMap<string, Float32Array | Float64Array>,
  batches: readonly (readonly ReferenceRow[])[],
  framing: ReferenceFraming,
  o: ReferenceOptimizer,
  h: number,
): ReferenceStepResult {
  const params = new Map([...initial].map(([name, v]) => [name, Float64Array.from(v)]));
  const m = new Map([...params].map(([name, v]) => [name, new Float64Array(v.length)]));
  const v = new Map([...params].map(([name, p]) => [name, new Float64Array(p.length)]));
  const losses: number[] = [];
  const gradNorms: number[] = [];
  batches.forEach((batch, t) => {
    const loss = (p: ReadonlyMap<string, Float64Array>) => referenceSftLoss(logits, p, batch, framing);
    losses.push(loss(params));
    const grads = finiteDifferenceGradient(loss, params, h);
    let squares = 0;
    for (const g of grads.values()) for (const x of g) squares += x * x;
    const norm = Math.sqrt(squares);
    gradNorms.push(norm);
    // clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6), applied only when below 1.
    const coef = o.maxGradNorm > 0 ? Math.min(1, o.maxGradNorm / (norm + 1e-6)) : 1;
    const lr = referenceLr(o, t);
    const step = t + 1;
    const bias1 = 1 - o.beta1 ** step;
    const bias2 = 1 - o.beta2 ** step;
    for (const [name, p] of params) {
      const g = grads.get(name)!;
      const mi = m.get(name)!;
      const vi = v.get(name)!;
      const wd = decays(name) ? o.weightDecay : 0;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * coef;
        p[i] *= 1 - lr * wd;
        mi[i] = o.beta1 * mi[i] + (1 - o.beta1) * gi;
        vi[i] = o.beta2 * vi[i] + (1 - o.beta2) * gi * gi;
        p[i] -= ((lr / bias1) * mi[i]) / (Math.sqrt(vi[i]) / Math.sqrt(bias2) + o.eps);
      }
    }
  });
  return { losses, gradNorms, params };
}
