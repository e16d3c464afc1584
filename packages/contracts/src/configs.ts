import Type, { type Static, type TProperties, type TSchema } from 'typebox';
import Value from 'typebox/value';
import { ContractError, type FieldError, schemaErrors } from './errors.js';
import { EvalConfig, EvalConfigInput } from './eval-stage.js';
import { framingField } from './framing.js';
import { graderSpecErrors } from './graders.js';

// Stage hyperparameters. Each `XConfig` schema is the fully resolved config (every field present,
// recorded with the run); `XConfigInput` is what a user sends (any subset); `resolveXConfig` fills
// the defaults and validates. Names follow TRL (camelCase), e.g. `lr` = learning_rate.

export const StageKind = Type.Enum(['sft', 'reward_model', 'dpo', 'pro', 'raft', 'grpo', 'ppo', 'eval']);
export type StageKind = Static<typeof StageKind>;
/** The order stages run in within one run. */
export const STAGE_ORDER: readonly StageKind[] = [
  'sft',
  'reward_model',
  'dpo',
  'pro',
  'raft',
  'grpo',
  'ppo',
  'eval',
];

const closed = { additionalProperties: false } as const;
/** Names of registered programmatic tasks (ground-truth rewards, graders). */
export const TASK_NAME = '^[a-z0-9][a-z0-9._-]*$';

/**
 * A copy of a schema without `default` keywords (each default is appended to its description instead).
 * Ajv's `useDefaults` (Fastify's default) refuses defaults inside anyOf branches, so schemas embedded
 * in unions (run specs, jobs) and user inputs carry none; only the XConfig schemas, which
 * resolveXConfig applies, do.
 */
export function withoutDefaults<T extends TSchema>(schema: T): T {
  const copy = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(copy);
    if (typeof node !== 'object' || node === null) return node;
    // Keep TypeBox's non-enumerable markers ('~kind', '~optional') along with the keywords.
    const out = Object.defineProperties({}, Object.getOwnPropertyDescriptors(node)) as Record<
      string,
      unknown
    >;
    for (const key of Object.keys(out)) out[key] = copy(out[key]);
    if ('default' in out) {
      const note = `default: ${JSON.stringify(out.default)}`;
      out.description = typeof out.description === 'string' ? `${out.description} (${note})` : note;
      delete out.default;
    }
    return out;
  };
  return copy(schema) as T;
}
const int = (minimum: number, maximum: number, fallback: number, description: string) =>
  Type.Integer({ minimum, maximum, default: fallback, description });
const positive = (maximum: number, fallback: number, description: string) =>
  Type.Number({ exclusiveMinimum: 0, maximum, default: fallback, description });
const unit = (fallback: number, description: string) =>
  Type.Number({ minimum: 0, maximum: 1, default: fallback, description });

const optimizerFields = {
  weightDecay: unit(0, 'AdamW decoupled weight decay (weight_decay)'),
  adamBeta1: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.9, description: 'AdamW β1' }),
  adamBeta2: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.999, description: 'AdamW β2' }),
  adamEpsilon: positive(1, 1e-8, 'AdamW ε'),
  maxGradNorm: Type.Number({
    minimum: 0,
    maximum: 1e6,
    default: 1,
    description: 'clip the global gradient norm to this (max_grad_norm); 0 = no clipping',
  }),
};

/** Fields shared by the supervised stages (SFT and reward model). */
/** Which held-out metric makes the best checkpoint (metric_for_best_model, greater_is_better). */
const KeepBest = Type.Object(
  {
    metric: Type.String({
      pattern: '^eval/[A-Za-z0-9_/]+$',
      maxLength: 64,
      description: "a held-out metric of the stage, e.g. 'eval/loss' or 'eval/accuracy'",
    }),
    mode: Type.Enum(['min', 'max'], {
      description: 'min: lower is better (losses); max: higher (accuracies)',
    }),
  },
  { additionalProperties: false },
);

const supervisedFields = (lr: number) => ({
  epochs: int(1, 1000, 1, 'passes over the training split (num_train_epochs); ignored when maxSteps is set'),
  maxSteps: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
    default: null,
    description: 'optimizer steps to run (max_steps); null = run `epochs` epochs',
  }),
  batchSize: int(1, 4096, 16, 'examples per optimizer step'),
  lr: positive(1, lr, 'peak learning rate (learning_rate)'),
  warmupSteps: int(0, 1_000_000, 0, 'linear warm-up steps from 0 to lr (warmup_steps)'),
  schedule: Type.Enum(['cosine', 'linear', 'constant'], {
    default: 'linear',
    description:
      'lr after warm-up: decays to 0 at the last step (cosine, linear) or stays (lr_scheduler_type)',
  }),
  ...optimizerFields,
  maxSeqLen: int(
    2,
    65_536,
    256,
    'tokens per example, prompt + response (max_length), capped at the model context; longer ones are cut',
  ),
  validationFraction: Type.Number({
    minimum: 0,
    maximum: 0.5,
    default: 0.05,
    description: 'share of the dataset held out for evaluation (seeded split)',
  }),
  validationRows: int(
    0,
    10_000_000,
    0,
    'the last N rows of the dataset are the held-out set (a validation file sent with it, e.g. OpenAI validation_file); 0 = split validationFraction off at random',
  ),
  evalEvery: int(
    1,
    1_000_000,
    100,
    'evaluate on the held-out split every N optimizer steps, exactly (eval_steps); also after the last step',
  ),
  keepBest: Type.Union([KeepBest, Type.Null()], {
    default: null,
    description:
      'keep the weights of the best evaluation as the stage output (load_best_model_at_end); the last weights stay available beside them; null = the last weights',
  }),
  checkpointEvery: int(1, 1_000_000, 200, 'save a resumable checkpoint every N optimizer steps (save_steps)'),
  seed: int(0, 2 ** 32 - 1, 42, 'seed for initialisation, shuffling and the validation split'),
  stepsPerCall: int(1, 1024, 8, 'optimizer steps fused into one ONNX Loop (one session.run)'),
  gradientAccumulation: int(
    1,
    1024,
    1,
    'micro-batches per optimizer step, run one after another with their gradients averaged: memory of batchSize / N examples (gradient_accumulation_steps); must divide batchSize',
  ),
  recompute: Type.Boolean({
    default: false,
    description:
      "recompute each layer's activations in the backward pass instead of keeping them: memory of one layer's activations for about one more forward (gradient_checkpointing)",
  }),
  ...framingField,
});

/** A linear layer of either decoder family, optionally behind a dotted path (PEFT's suffix matching). */
const LORA_TARGET =
  '^([A-Za-z0-9_]+\\.)*(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|c_attn|c_proj|c_fc)$';
/** A LoRA adapter (Hu et al. 2022), PEFT's LoraConfig in camelCase; any stage that trains one reuses it. */
export const LoraConfig = Type.Object(
  {
    r: int(1, 4096, 8, 'rank of the update BA (r)'),
    alpha: positive(
      1e6,
      16,
      'the update is scaled by alpha / r, alpha / sqrt(r) with useRslora (lora_alpha)',
    ),
    dropout: Type.Number({
      minimum: 0,
      exclusiveMaximum: 1,
      default: 0,
      description: "dropout on the adapter's input while training (lora_dropout)",
    }),
    targetModules: Type.Optional(
      Type.Array(Type.String({ pattern: LORA_TARGET, maxLength: 128 }), {
        minItems: 1,
        maxItems: 64,
        description:
          'linear layers to adapt, by name or dotted suffix: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj (Llama family), c_attn c_proj c_fc (GPT-2); absent = the attention projections q_proj v_proj / c_attn (target_modules)',
      }),
    ),
    useRslora: Type.Boolean({ default: false, description: 'rsLoRA: scale alpha / sqrt(r) (use_rslora)' }),
    modulesToSave: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.]+$', maxLength: 128 }), {
      maxItems: 64,
      default: [],
      description: 'modules trained in full beside the adapters, e.g. lm_head, wte, score (modules_to_save)',
    }),
  },
  closed,
);
export type LoraConfig = Static<typeof LoraConfig>;
export const LoraConfigInput = withoutDefaults(Type.Partial(LoraConfig, closed));
export type LoraConfigInput = Static<typeof LoraConfigInput>;

const sftFields = {
  ...supervisedFields(3e-4),
  completionOnlyLoss: Type.Boolean({
    default: true,
    description: 'loss on response tokens only; prompt tokens are context (completion_only_loss)',
  }),
};
/** A stage's fields plus `lora`: absent = full fine-tuning; set = a LoRA adapter on the frozen base. */
const withLora = <T extends TProperties>(fields: T) => ({ ...fields, lora: Type.Optional(LoraConfig) });
/** What users may send for a stage with `lora`: any part of its fields, any part of a LoraConfig. */
const loraInput = <T extends TProperties>(fields: T) =>
  withoutDefaults(Type.Partial(Type.Object({ ...fields, lora: LoraConfigInput }, closed), closed));

/** Prompt tuning (Lester et al. 2021): trainable virtual-token embeddings before every input, the base frozen. */
export const PromptTuningConfig = Type.Object(
  {
    numVirtualTokens: int(1, 512, 8, 'virtual tokens prepended to every input (num_virtual_tokens)'),
  },
  closed,
);
export type PromptTuningConfig = Static<typeof PromptTuningConfig>;
export const PromptTuningConfigInput = withoutDefaults(Type.Partial(PromptTuningConfig, closed));
const sftPromptTuning = {
  promptTuning: Type.Optional(PromptTuningConfig),
};

/**
 * Absent = full fine-tuning; `lora` = a LoRA adapter on the frozen base, `promptTuning` = trained virtual tokens
 * (at most one of the two; defaults fill the fields not given).
 */
export const SftConfig = Type.Object({ ...withLora(sftFields), ...sftPromptTuning }, closed);
export type SftConfig = Static<typeof SftConfig>;
export const SftConfigInput = loraInput({
  ...sftFields,
  promptTuning: PromptTuningConfigInput,
});
export type SftConfigInput = Static<typeof SftConfigInput>;

const rewardModelFields = {
  ...supervisedFields(1e-4),
  margin: Type.Number({
    minimum: 0,
    maximum: 100,
    default: 0,
    description:
      'loss −log σ(r_chosen − r_rejected − margin) (Touvron et al. 2023 §3.2.2); 0 = plain Bradley–Terry',
  }),
  init: Type.Enum(['sft', 'fresh'], {
    default: 'sft',
    description: 'start from the SFT policy weights (InstructGPT) or from a freshly initialised model preset',
  }),
};
const rankedPrompts = {
  ...closed,
  description: 'batchSize counts prompts: a ranked prompt brings all its C(K,2) pairs',
};
/** With lora, the score head always trains in full (PEFT's SEQ_CLS adds `score` to modules_to_save). */
export const RewardModelConfig = Type.Object(withLora(rewardModelFields), rankedPrompts);
export type RewardModelConfig = Static<typeof RewardModelConfig>;
export const RewardModelConfigInput = loraInput(rewardModelFields);
export type RewardModelConfigInput = Static<typeof RewardModelConfigInput>;

const dpoFields = {
  ...supervisedFields(5e-7),
  beta: positive(100, 0.1, 'β: strength of the KL regularisation toward the reference (beta)'),
  lossType: Type.Enum(['sigmoid', 'ipo', 'hinge', 'simpo'], {
    default: 'sigmoid',
    description:
      'sigmoid = DPO (Rafailov et al. 2023), ipo (Azar et al. 2023), hinge = SLiC (Zhao et al. 2023), simpo = reference-free SimPO (Meng et al. 2024) (loss_type)',
  }),
  labelSmoothing: Type.Number({
    minimum: 0,
    maximum: 0.5,
    default: 0,
    description: 'sigmoid loss: assumed share of flipped labels, conservative DPO (label_smoothing)',
  }),
  simpoGamma: Type.Number({
    minimum: 0,
    maximum: 100,
    default: 0.5,
    description: 'simpo: target reward margin γ (simpo_gamma)',
  }),
  rpoAlpha: Type.Number({
    minimum: 0,
    maximum: 100,
    default: 0,
    description: 'weight of an NLL (SFT) term on the best response, RPO-style (rpo_alpha); 0 = none',
  }),
};
/** With lora, the reference is the frozen base (the adapter off), not a second model. */
export const DpoConfig = Type.Object(withLora(dpoFields), rankedPrompts);
export type DpoConfig = Static<typeof DpoConfig>;
export const DpoConfigInput = loraInput(dpoFields);
export type DpoConfigInput = Static<typeof DpoConfigInput>;

const proFields = {
  ...supervisedFields(1e-4),
  objective: Type.Enum(['pro', 'rrhf'], {
    default: 'pro',
    description:
      'pro = list-wise Plackett–Luce over the whole ranking (Song et al. 2023), rrhf = pairwise hinge on length-normalised log-probs (Yuan et al. 2023)',
  }),
  scoreScale: positive(
    100,
    1,
    'a response scores scoreScale × its mean log-prob per token (PRO: 1 / temperature)',
  ),
  sftWeight: Type.Number({
    minimum: 0,
    maximum: 100,
    default: 1,
    description: 'weight of the NLL (SFT) term on each ranking’s best response; 0 = none',
  }),
};
export const ProConfig = Type.Object(withLora(proFields), {
  ...closed,
  description: 'batchSize counts prompts; ranked lists of any K ≥ 2 (a preference pair is K = 2)',
});
export type ProConfig = Static<typeof ProConfig>;
export const ProConfigInput = loraInput(proFields);
export type ProConfigInput = Static<typeof ProConfigInput>;

const raftFields = {
  iterations: int(1, 100_000, 10, 'sample → score → keep → fine-tune rounds'),
  promptsPerIteration: int(1, 4096, 32, 'prompts sampled each iteration'),
  samplesPerPrompt: int(2, 64, 4, 'responses generated per prompt (n of best-of-n)'),
  keepPerPrompt: int(1, 64, 1, 'responses kept per prompt, the highest-scored (at most samplesPerPrompt)'),
  selection: Type.Enum(['per_prompt', 'global'], {
    default: 'per_prompt',
    description:
      'keep the best keepPerPrompt of each prompt, or the best promptsPerIteration × keepPerPrompt of the whole iteration',
  }),
  stepsPerIteration: int(1, 1024, 4, 'fine-tuning steps on the kept set each iteration (one fused call)'),
  batchSize: int(1, 4096, 16, 'kept responses per fine-tuning step'),
  lr: positive(1, 1e-4, 'learning rate of the fine-tuning steps (learning_rate)'),
  ...optimizerFields,
  maxPromptLen: int(
    1,
    65_536,
    128,
    'prompt tokens kept (their end), also capped at model context − maxNewTokens',
  ),
  maxNewTokens: int(1, 4096, 32, 'response tokens generated at most'),
  temperature: positive(10, 1, 'sampling temperature'),
  topK: int(0, 1_000_000, 0, 'sample among the k most likely tokens; 0 = off'),
  topP: positive(1, 1, 'nucleus sampling mass; 1 = off'),
  checkpointEvery: int(1, 1_000_000, 5, 'save a resumable checkpoint every N iterations'),
  sampleEvery: int(1, 1_000_000, 5, 'log a table of kept responses every N iterations'),
  sampleCount: int(1, 256, 4, 'rows in each sample table'),
  seed: int(0, 2 ** 32 - 1, 42, 'seed for prompt order, sampling and batches'),
  ...framingField,
  groundTruth: Type.Union([Type.String({ pattern: TASK_NAME, maxLength: 64 }), Type.Null()], {
    default: null,
    description: 'a programmatic reward the workers know by this name, logged as objective/ground_truth',
  }),
};
export const RaftConfig = Type.Object(withLora(raftFields), {
  ...closed,
  description: 'reward-ranked fine-tuning (Dong et al. 2023)',
});
export type RaftConfig = Static<typeof RaftConfig>;
export const RaftConfigInput = loraInput(raftFields);
export type RaftConfigInput = Static<typeof RaftConfigInput>;

/** A grader spec as given; graderSpecErrors (graders.ts) checks it and names bad fields better than a union could. */
const GraderSpecShape = Type.Object(
  { type: Type.String({ maxLength: 32 }) },
  { additionalProperties: true, description: 'a declared grader (see POST /v1/graders/validate)' },
);

const grpoFields = {
  iterations: int(1, 1_000_000, 20, 'sample → reward → update rounds'),
  promptsPerIteration: int(1, 4096, 16, 'prompts sampled each iteration'),
  groupSize: int(2, 64, 8, 'responses per prompt, G (num_generations)'),
  advantage: Type.Enum(['grpo', 'rloo', 'reinforce_pp'], {
    default: 'grpo',
    description:
      'grpo: (r − group mean) / group std (Shao et al. 2024); rloo: r − mean of the other G − 1 (Ahmadian et al. 2024); ' +
      'reinforce_pp: REINFORCE++ (Hu 2025), per-token returns of the reward with a β-weighted per-token KL penalty, normalised over the whole batch',
  }),
  scaleByStd: Type.Boolean({
    default: true,
    description: 'grpo: divide by the group std; false = Dr. GRPO (Liu et al. 2025)',
  }),
  dynamicSampling: Type.Boolean({
    default: false,
    description:
      'DAPO dynamic sampling (Yu et al. 2025): groups whose G rewards are all equal are left out of the update (masked, not resampled); all flat = no update that iteration',
  }),
  lossAggregation: Type.Enum(['token_mean', 'sequence_mean', 'token_sum_norm'], {
    default: 'token_mean',
    description:
      'token_mean: mean over the tokens of a minibatch (DAPO); sequence_mean: mean of each response’s token mean (GRPO); token_sum_norm: token sum / (maxNewTokens × rows) (Dr. GRPO)',
  }),
  reward: Type.Union(
    [Type.Literal('reward_model'), Type.String({ pattern: TASK_NAME, maxLength: 64 }), GraderSpecShape],
    {
      default: 'reward_model',
      description:
        "'reward_model' (the run's reward model scores responses), the name of a programmatic reward the workers know (e.g. 'sort-digits'), or a grader spec ({ type: 'string_check' | 'regex' | … })",
    },
  ),
  epochs: int(1, 100, 1, 'policy updates over each batch, μ (num_iterations)'),
  minibatches: int(1, 4096, 1, 'minibatches per epoch; must divide promptsPerIteration × groupSize'),
  lr: positive(1, 1e-5, 'learning rate (learning_rate)'),
  ...optimizerFields,
  clipRange: positive(1, 0.2, 'ε of the clipped surrogate, below 1 (epsilon)'),
  clipRangeHigh: positive(10, 0.2, 'ε above 1; larger = DAPO clip-higher (epsilon_high)'),
  beta: Type.Number({
    minimum: 0,
    maximum: 100,
    default: 0.04,
    description:
      'weight of the k3 KL to the reference in the loss (reinforce_pp: of the per-token k1 KL in the reward, no loss term); 0 = no KL and no reference (beta)',
  }),
  maxPromptLen: int(
    1,
    65_536,
    128,
    'prompt tokens kept (their end), also capped at model context − maxNewTokens',
  ),
  maxNewTokens: int(1, 4096, 32, 'response tokens generated at most'),
  temperature: positive(10, 1, 'sampling temperature (also divides the logits when training)'),
  checkpointEvery: int(1, 1_000_000, 10, 'save a resumable checkpoint every N iterations'),
  sampleEvery: int(1, 1_000_000, 10, 'log a table of samples every N iterations'),
  sampleCount: int(1, 256, 4, 'rows in each sample table'),
  seed: int(0, 2 ** 32 - 1, 42, 'seed for prompt order, sampling and minibatches'),
  ...framingField,
};
export const GrpoConfig = Type.Object(withLora(grpoFields), {
  ...closed,
  description: 'critic-free online RL (GRPO, RLOO, REINFORCE++)',
});
export type GrpoConfig = Static<typeof GrpoConfig>;
export const GrpoConfigInput = loraInput(grpoFields);
export type GrpoConfigInput = Static<typeof GrpoConfigInput>;

/** KL penalty coefficient β: fixed, or adapted towards a target KL (Ziegler et al. 2019 §2.2). */
export const KlConfig = Type.Object(
  {
    type: Type.Enum(['fixed', 'adaptive'], {
      default: 'fixed',
      description: 'fixed β, or adaptive (kl_ctl)',
    }),
    coef: Type.Number({ minimum: 0, maximum: 100, default: 0.05, description: 'initial β (init_kl_coef)' }),
    target: positive(1e6, 6, 'adaptive: KL (nats per response) to steer towards (target)'),
    horizon: positive(1e12, 10_000, 'adaptive: responses over which β can change by up to ±20 % (horizon)'),
  },
  { ...closed, default: {} },
);
export type KlConfig = Static<typeof KlConfig>;

const ppoFields = {
  iterations: int(1, 1_000_000, 100, 'rollout + optimisation rounds'),
  rolloutBatchSize: int(
    2,
    4096,
    64,
    'prompts sampled and answered per iteration (batch_size); at least 2 so advantages can be whitened',
  ),
  minibatches: int(1, 4096, 1, 'minibatches per PPO epoch; must divide rolloutBatchSize (num_mini_batches)'),
  ppoEpochs: int(1, 100, 4, 'passes over each rollout batch (num_ppo_epochs)'),
  maxPromptLen: int(
    1,
    65_536,
    128,
    'prompt tokens kept (their end), also capped at model context − maxNewTokens',
  ),
  maxNewTokens: int(1, 4096, 32, 'response tokens generated at most; a response that hits it has no EOS'),
  temperature: positive(10, 1, 'sampling temperature (also divides the logits when training, as TRL does)'),
  topK: int(0, 1_000_000, 0, 'sample among the k most likely tokens; 0 = off'),
  topP: positive(1, 1, 'nucleus sampling mass; 1 = off'),
  lr: positive(1, 3e-5, 'learning rate of policy and value head (learning_rate)'),
  ...optimizerFields,
  gamma: unit(1, 'discount γ of GAE'),
  lam: unit(0.95, 'λ of GAE (Schulman et al. 2016)'),
  clipRange: positive(1, 0.2, 'ε of the clipped surrogate objective (cliprange)'),
  clipRangeValue: positive(1e6, 0.2, 'value clipping around the old values (cliprange_value)'),
  vfCoef: Type.Number({ minimum: 0, maximum: 100, default: 0.1, description: 'value loss weight (vf_coef)' }),
  entCoef: Type.Number({ minimum: 0, maximum: 100, default: 0, description: 'entropy bonus weight' }),
  missingEosPenalty: Type.Union([Type.Number({ minimum: 0, maximum: 1e6 }), Type.Null()], {
    default: null,
    description:
      'subtracted from the score of a response that ended without EOS (missing_eos_penalty); null = none',
  }),
  whitenRewards: Type.Boolean({
    default: false,
    description: 'whiten the per-token rewards over the batch, keeping their mean (whiten_rewards)',
  }),
  checkpointEvery: int(1, 1_000_000, 10, 'save a resumable checkpoint every N iterations'),
  sampleEvery: int(1, 1_000_000, 10, 'log a table of sample rollouts every N iterations'),
  sampleCount: int(1, 256, 4, 'rollouts in each sample table'),
  seed: int(0, 2 ** 32 - 1, 42, 'seed for prompt order, sampling and initialisation'),
  ...framingField,
  groundTruth: Type.Union([Type.String({ pattern: TASK_NAME, maxLength: 64 }), Type.Null()], {
    default: null,
    description:
      "a programmatic reward the workers know by this name (e.g. 'sort-digits'), logged as objective/ground_truth; null = none",
  }),
  grader: Type.Union([GraderSpecShape, Type.Null()], {
    default: null,
    description:
      "a declared grader whose score is added to the reward model's (normalised) score; null = the reward model alone",
  }),
  rewardModelWeight: Type.Number({
    minimum: 0,
    maximum: 100,
    default: 1,
    description: "weight of the reward model's score in the reward; 0 with a grader = the grader alone",
  }),
};

export const PpoConfig = Type.Object(withLora({ ...ppoFields, kl: KlConfig }), closed);
export type PpoConfig = Static<typeof PpoConfig>;
export const PpoConfigInput = loraInput({ ...ppoFields, kl: Type.Partial(KlConfig, closed) });
export type PpoConfigInput = Static<typeof PpoConfigInput>;

/** The resolved config of each stage kind. */
export interface StageConfigs {
  sft: SftConfig;
  reward_model: RewardModelConfig;
  dpo: DpoConfig;
  pro: ProConfig;
  raft: RaftConfig;
  grpo: GrpoConfig;
  ppo: PpoConfig;
  eval: EvalConfig;
}
/** What a user may send for each stage kind. */
export interface StageConfigInputs {
  sft: SftConfigInput;
  reward_model: RewardModelConfigInput;
  dpo: DpoConfigInput;
  pro: ProConfigInput;
  raft: RaftConfigInput;
  grpo: GrpoConfigInput;
  ppo: PpoConfigInput;
  eval: EvalConfigInput;
}

export const StageConfigSchemas = {
  sft: { resolved: SftConfig, input: SftConfigInput },
  reward_model: { resolved: RewardModelConfig, input: RewardModelConfigInput },
  dpo: { resolved: DpoConfig, input: DpoConfigInput },
  pro: { resolved: ProConfig, input: ProConfigInput },
  raft: { resolved: RaftConfig, input: RaftConfigInput },
  grpo: { resolved: GrpoConfig, input: GrpoConfigInput },
  ppo: { resolved: PpoConfig, input: PpoConfigInput },
  eval: { resolved: EvalConfig, input: EvalConfigInput },
} as const satisfies Record<StageKind, { resolved: TSchema; input: TSchema }>;

/** Checks and completes a stage config; errors carry paths under `base` (e.g. '/stages/2/config'). */
export function checkStageConfig<K extends StageKind>(
  kind: K,
  input: unknown,
  base = '',
): { config: StageConfigs[K]; errors: [] } | { config: undefined; errors: FieldError[] } {
  return checkConfig<StageConfigs[K]>(StageConfigSchemas[kind], input, base, (config) =>
    crossFieldErrors(kind, config, base),
  );
}

/** A config checked against what users may send, then completed with the defaults and checked again. */
function checkConfig<T>(
  schemas: { resolved: TSchema; input: TSchema },
  input: unknown,
  base: string,
  crossField: (config: T) => FieldError[] = () => [],
): { config: T; errors: [] } | { config: undefined; errors: FieldError[] } {
  const given = input === undefined ? {} : input;
  let errors = schemaErrors(schemas.input, given, base);
  if (errors.length > 0) return { config: undefined, errors };
  const config = Value.Default(schemas.resolved, structuredClone(given)) as T;
  errors = [...schemaErrors(schemas.resolved, config, base), ...crossField(config)];
  return errors.length > 0 ? { config: undefined, errors } : { config, errors: [] };
}

function crossFieldErrors(kind: StageKind, config: StageConfigs[StageKind], base: string): FieldError[] {
  if (kind === 'sft') {
    const sft = config as SftConfig;
    if (!(sft.lora && sft.promptTuning)) return [];
    return [
      { path: `${base}/promptTuning`, message: 'cannot be combined with lora (one adapter per stage)' },
    ];
  }
  if (kind === 'raft') {
    const raft = config as RaftConfig;
    if (raft.keepPerPrompt <= raft.samplesPerPrompt) return [];
    return [
      {
        path: `${base}/keepPerPrompt`,
        message: `must be at most samplesPerPrompt (${raft.samplesPerPrompt})`,
      },
    ];
  }
  if (kind === 'grpo') {
    const grpo = config as GrpoConfig;
    const rows = grpo.promptsPerIteration * grpo.groupSize;
    const grader = typeof grpo.reward === 'object' ? graderSpecErrors(grpo.reward, `${base}/reward`) : [];
    if (rows % grpo.minibatches === 0) return grader;
    return [
      ...grader,
      { path: `${base}/minibatches`, message: `must divide promptsPerIteration × groupSize (${rows})` },
    ];
  }
  if (kind !== 'ppo') return [];
  const ppo = config as PpoConfig;
  const errors = ppo.grader === null ? [] : graderSpecErrors(ppo.grader, `${base}/grader`);
  if (ppo.grader === null && ppo.rewardModelWeight === 0)
    errors.push({
      path: `${base}/rewardModelWeight`,
      message: 'must be > 0 without a grader (the reward would be 0)',
    });
  if (ppo.rolloutBatchSize % ppo.minibatches !== 0)
    errors.push({
      path: `${base}/minibatches`,
      message: `must divide rolloutBatchSize (${ppo.rolloutBatchSize})`,
    });
  return errors;
}

/** A full config for `kind`: defaults filled in, every value checked. Throws ContractError naming the bad fields. */
export function resolveStageConfig<K extends StageKind>(
  kind: K,
  input?: StageConfigInputs[K],
): StageConfigs[K] {
  const result = checkStageConfig(kind, input);
  if (result.errors.length > 0) throw new ContractError(result.errors);
  return result.config as StageConfigs[K];
}

export const resolveSftConfig = (input?: SftConfigInput): SftConfig => resolveStageConfig('sft', input);
export const resolveRewardModelConfig = (input?: RewardModelConfigInput): RewardModelConfig =>
  resolveStageConfig('reward_model', input);
export const resolvePpoConfig = (input?: PpoConfigInput): PpoConfig => resolveStageConfig('ppo', input);
export const resolveDpoConfig = (input?: DpoConfigInput): DpoConfig => resolveStageConfig('dpo', input);
export const resolveProConfig = (input?: ProConfigInput): ProConfig => resolveStageConfig('pro', input);
export const resolveRaftConfig = (input?: RaftConfigInput): RaftConfig => resolveStageConfig('raft', input);
export const resolveGrpoConfig = (input?: GrpoConfigInput): GrpoConfig => resolveStageConfig('grpo', input);
