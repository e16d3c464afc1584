// Supervised fine-tuning (InstructGPT §3.5 "SFT"): next-token cross-entropy on the demonstrations' response
// tokens (prompt tokens are context only), fused K steps per session run by @rlhf/stage-kit's supervised loop.
import {
  resolveSftConfig,
  type SftConfig,
  type SftConfigInput,
  SftMetrics,
  type SftRow,
} from '@rlhf/contracts';
import { Graph, mul, neg, reduceSum, tokenLogProbs } from '@rlhf/graph';
import {
  ByteTokenizer,
  chatPromptResponse,
  type GptConfig,
  gptForward,
  gptParamInputs,
  countParams,
  type LoraSettings,
  longest,
  loraParamShapes,
  mergeLora,
  PROMPT_EMBEDDINGS,
  PROMPT_TUNING_INIT,
  paramFeeds,
  shapeSize,
  type Tokenizer,
  validateLora,
  validatePromptTuning,
} from '@rlhf/model';
import { float32, type HostTensor, int64, type Runtime, type Session, type Weights } from '@rlhf/runtime';
import {
  effectiveMaxSeqLen,
  type ModelWeights,
  padRight,
  runSupervisedLoop,
  type StageHooks,
  type StageResult,
  splitHeldOut,
  stackSteps,
  framingOf,
  type TokenizedExample,
  tokenizeConversation,
  tokenizeExample,
  microBatchSize,
  totalStepsOf,
} from '@rlhf/stage-kit';
import { sftLossGraph } from './loss.js';
import { loraLoopAdapter, loraSettingsOf, loraSftLossGraph } from './lora.js';
import {
  promptFeeds,
  promptTuningLoopAdapter,
  promptTuningSftLossGraph,
  type SftPromptAdapter,
} from './prompt-tuning.js';

export interface SftInput {
  /** A full config or any part of one (defaults from @rlhf/contracts fill the rest). */
  config: SftConfig | SftConfigInput;
  model: ModelWeights;
  rows: readonly SftRow[];
  runtime: Runtime;
  hooks?: StageHooks;
  /** Default: ByteTokenizer (bos 256, eos 257, pad 258). */
  tokenizer?: Tokenizer;
  /** With config.lora: the adapter to start from (e.g. an imported PEFT adapter); default PEFT's fresh init. */
  adapter?: Weights;
  /** With config.lora: the base's name or location, recorded as the adapter's base_model_name_or_path. */
  baseModel?: string;
}

/** A LoRA stage's adapter: its settings, tensors, PEFT files and the base it applies to. */
export interface SftAdapter {
  settings: LoraSettings;
  params: Weights;
  /** adapter_config.json + adapter_model.safetensors. */
  files: Record<string, Uint8Array>;
  baseModel: string | null;
}

/**
 * With config.lora, `model` is the merged model (base + s·BA) and `adapter` the adapter itself; with
 * config.promptTuning, `model` is the base unchanged and `promptAdapter` the trained virtual tokens.
 */
export interface SftResult extends StageResult {
  adapter?: SftAdapter;
  promptAdapter?: SftPromptAdapter;
}

/** The prompt and the response to learn of a row; `messages` rows in the built-in chat format (chat.ts). */
export function sftPromptResponse(row: SftRow): { prompt: string; response: string } {
  return 'messages' in row
    ? chatPromptResponse(row.messages)
    : { prompt: row.prompt, response: row.response };
}

/**
 * One example as model inputs: ids[:-1] in, ids[1:] as targets, loss on targets that are response tokens
 * (eos included; a conversation's lossMask says which), or on every target when completionOnly is false.
 */
export interface SftExample {
  inputs: number[];
  targets: number[];
  lossMask: number[];
}

export function sftExample(tokens: TokenizedExample, completionOnly: boolean): SftExample {
  const { ids, promptTokens, lossMask } = tokens;
  const learned = (i: number) => !completionOnly || (lossMask ? lossMask[i] === 1 : i >= promptTokens);
  return {
    inputs: ids.slice(0, -1),
    targets: ids.slice(1),
    lossMask: ids.slice(1).map((_, t) => (learned(t + 1) ? 1 : 0)),
  };
}

/** Batch inputs of the SFT graphs, each [B, T]: right-padded, so causal attention never sees the padding. */
export function sftTensors(examples: readonly SftExample[], rows: number, length: number, padId: number) {
  return {
    input_ids: int64(
      [rows, length],
      padRight(
        examples.map((e) => e.inputs),
        length,
        padId,
      ),
    ),
    targets: int64(
      [rows, length],
      padRight(
        examples.map((e) => e.targets),
        length,
        0,
      ),
    ),
    loss_mask: float32(
      [rows, length],
      padRight(
        examples.map((e) => e.lossMask),
        length,
        0,
      ),
    ),
  };
}

const EVAL_BATCH = 64;

/**
 * Forward-only graph: summed response-token NLL and the token count of a batch (eval loss = Σ nll / Σ tokens);
 * with `virtualTokens`, a `prompt_embeddings` input [P, d] goes in front of every row (prompt tuning).
 */
function buildEvalGraph(config: GptConfig, virtualTokens?: number): Uint8Array {
  const g = new Graph('sft_eval');
  const params = gptParamInputs(g, config);
  if (virtualTokens)
    params.set(PROMPT_EMBEDDINGS, g.input(PROMPT_EMBEDDINGS, 'float32', [virtualTokens, config.nEmbd]));
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  const targets = g.input('targets', 'int64', ['batch', 'seq']);
  const mask = g.input('loss_mask', 'float32', ['batch', 'seq']);
  const { logits } = gptForward(params, { ...config, scalarHead: false }, ids);
  const nll = tokenLogProbs(logits, targets);
  g.output(neg(reduceSum(mul(nll, mask))), 'nll_sum');
  g.output(reduceSum(mask), 'tokens');
  return g.toBytes();
}

/** Held-out loss (mean NLL per response token) of some weights on examples. */
async function evalLoss(
  session: Session,
  model: ModelWeights,
  examples: readonly SftExample[],
  padId: number,
  extraFeeds: Record<string, HostTensor> = {},
): Promise<number> {
  const feeds = { ...paramFeeds({ ...model.config, scalarHead: false }, model.params), ...extraFeeds };
  let nll = 0;
  let tokens = 0;
  for (let start = 0; start < examples.length; start += EVAL_BATCH) {
    const batch = examples.slice(start, start + EVAL_BATCH);
    const length = longest(batch.map((e) => e.inputs));
    const out = await session.run({ ...feeds, ...sftTensors(batch, batch.length, length, padId) });
    nll += (out.nll_sum.data as Float32Array)[0];
    tokens += (out.tokens.data as Float32Array)[0];
  }
  return nll / Math.max(tokens, 1);
}

/** Supervised fine-tuning; resumes from hooks.checkpoints when it holds a checkpoint of this stage. */
export async function trainSft(input: SftInput): Promise<SftResult> {
  const config = resolveSftConfig(input.config);
  const tokenizer = input.tokenizer ?? new ByteTokenizer();
  const modelConfig: GptConfig = { ...input.model.config, scalarHead: false };
  const model: ModelWeights = { ...input.model, config: modelConfig };
  if (input.model.config.scalarHead) {
    model.params = new Map(input.model.params);
    model.params.delete('score.weight');
    model.params.delete('score.bias');
  }
  const lora = config.lora && loraSettingsOf(config.lora, modelConfig);
  if (lora) validateLora(modelConfig, lora);
  const prompt = config.promptTuning;
  if (prompt) validatePromptTuning(modelConfig, prompt);
  // Virtual tokens take the first positions of the model's context.
  const maxSeqLen = Math.min(
    effectiveMaxSeqLen(config.maxSeqLen, modelConfig),
    modelConfig.maxPositions - (prompt?.numVirtualTokens ?? 0),
  );
  const loopAdapter = lora
    ? loraLoopAdapter(model, lora, { seed: config.seed, initial: input.adapter, baseModel: input.baseModel })
    : prompt
      ? promptTuningLoopAdapter(model, prompt, { seed: config.seed, baseModel: input.baseModel })
      : undefined;

  const framing = framingOf(tokenizer, config.framing, 'config.framing');
  // Conversations in the model's chat template (every assistant turn learned), or the built-in one (the last).
  const tokenized = input.rows.map((row, i) =>
    'messages' in row
      ? tokenizeConversation(
          framing,
          row.messages,
          maxSeqLen,
          config.completionOnlyLoss,
          `rows[${i}].messages`,
        )
      : tokenizeExample(tokenizer, row.prompt, row.response, maxSeqLen, framing),
  );
  const all = tokenized.map((t) => sftExample(t, config.completionOnlyLoss));
  // A prompt that fills the whole context leaves no token to learn from.
  const source = all.flatMap((e, i) => (e.lossMask.some((m) => m === 1) ? [i] : []));
  const usable = source.map((i) => all[i]);
  if (usable.length === 0) throw new Error('sft: no example has a response token within maxSeqLen');
  const { train, validation } = splitHeldOut(usable, source, all.length, config);
  const B = microBatchSize(config);
  const forward = { recompute: config.recompute };
  const totalSteps = totalStepsOf(config, train.length);
  const hyperparameters = {
    stage: 'sft',
    config,
    model: modelConfig,
    effective: {
      maxSeqLen,
      totalSteps,
      microBatchSize: B,
      trainExamples: train.length,
      validationExamples: validation.length,
      truncatedExamples: tokenized.filter((t) => t.truncated).length,
      ...(lora && {
        lora: {
          ...lora,
          trainableParams: loraParamShapes(modelConfig, lora).reduce((n, p) => n + shapeSize(p.shape), 0),
          baseParams: countParams(modelConfig),
        },
      }),
      ...(prompt && {
        promptTuning: {
          ...prompt,
          init: PROMPT_TUNING_INIT,
          trainableParams: prompt.numVirtualTokens * modelConfig.nEmbd,
          baseParams: countParams(modelConfig),
        },
      }),
      droppedExamples: all.length - usable.length,
      framing: {
        chatTemplate: framing.chatTemplate ? 'model' : 'builtin',
        text: framing.text,
        templated: framing.templated,
      },
      tokenizer: {
        bos: tokenizer.bosId,
        eos: tokenizer.eosId,
        pad: tokenizer.padId,
        vocab: tokenizer.vocabSize,
      },
    },
  };
  input.hooks?.log?.(`sft: ${JSON.stringify(hyperparameters.effective)}`);

  const evalSession = await input.runtime.createSession(
    buildEvalGraph(modelConfig, prompt?.numVirtualTokens),
    { name: 'sft_eval' },
  );
  const result = await runSupervisedLoop({
    stage: 'sft',
    config,
    model,
    runtime: input.runtime,
    hooks: input.hooks,
    trainSize: train.length,
    graph: lora
      ? loraSftLossGraph(modelConfig, lora, B, forward)
      : prompt
        ? promptTuningSftLossGraph(modelConfig, B, forward)
        : sftLossGraph(modelConfig, B, forward),
    adapter: loopAdapter,
    feeds(batches) {
      let tokens = 0;
      const length = longest(batches.flat().map((i) => train[i].inputs));
      const tensors = batches.map((indices) => {
        const examples = indices.map((i) => train[i]);
        tokens += examples.reduce((n, e) => n + e.inputs.length, 0);
        return sftTensors(examples, B, length, tokenizer.padId);
      });
      return { feeds: stackSteps(tensors), tokens };
    },
    evaluate: async (weights): Promise<Record<string, number>> => {
      if (validation.length === 0) return {};
      if (prompt) {
        const feeds = promptFeeds(modelConfig, weights.params);
        return {
          [SftMetrics.evalLoss]: await evalLoss(evalSession, model, validation, tokenizer.padId, feeds),
        };
      }
      // With an adapter the weights are its tensors: evaluate the merged model (the same function, in one graph).
      const evaluated = lora
        ? { ...model, params: mergeLora(modelConfig, lora, model.params, weights.params) }
        : weights;
      return { [SftMetrics.evalLoss]: await evalLoss(evalSession, evaluated, validation, tokenizer.padId) };
    },
  }).finally(() => evalSession.release());
  const evalLossValue = result.eval[SftMetrics.evalLoss];
  const summary =
    evalLossValue === undefined ? {} : { ...result.eval, 'eval/perplexity': Math.exp(evalLossValue) };
  const adapter: SftAdapter | undefined =
    loopAdapter && lora
      ? {
          settings: lora,
          params: result.model.params,
          files: loopAdapter.files(result.model.params),
          baseModel: input.baseModel ?? null,
        }
      : undefined;
  if (loopAdapter && prompt) {
    const promptAdapter: SftPromptAdapter = {
      settings: prompt,
      params: result.model.params,
      files: loopAdapter.files(result.model.params),
      baseModel: input.baseModel ?? null,
    };
    return {
      step: result.step,
      model,
      promptAdapter,
      summary,
      hyperparameters: {
        ...hyperparameters,
        resumedFrom: result.resumedFrom,
        ...(result.best && { best: result.best }),
      },
    };
  }
  return {
    step: result.step,
    model: adapter
      ? { ...model, params: mergeLora(modelConfig, adapter.settings, model.params, adapter.params) }
      : result.model,
    ...(adapter && { adapter }),
    ...(result.last && {
      last: adapter
        ? { ...model, params: mergeLora(modelConfig, adapter.settings, model.params, result.last.params) }
        : result.last,
    }),
    summary,
    hyperparameters: {
      ...hyperparameters,
      resumedFrom: result.resumedFrom,
      ...(result.best && { best: result.best }),
    },
  };
}
