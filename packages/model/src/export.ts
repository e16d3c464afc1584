// Standalone ONNX models for inference outside this project (any ONNX Runtime): the weights are baked in as
// initializers, and the inputs/outputs follow the names HF Optimum uses for GPT-2 with a KV cache.
import { Graph, type Tensor } from '@rlhf/graph';
import { type GptConfig, paramShapes, validateConfig } from './config.js';
import type { HostParams } from './feeds.js';
import { type GptParams, gptForward, type KvCache, kvShape } from './gpt.js';
import { sequenceScores } from './score.js';

/** The weights as float32 initializers named like paramShapes. */
function paramInitializers(graph: Graph, config: GptConfig, params: HostParams): GptParams {
  const tensors: GptParams = new Map();
  for (const { name, shape } of paramShapes(config)) {
    const data = params.get(name);
    if (!data) throw new Error(`export: parameter "${name}" is missing`);
    tensors.set(name, graph.initializer(name, 'float32', shape, Float32Array.from(data)));
  }
  return tensors;
}

/**
 * A policy model for incremental decoding. Inputs: `input_ids` int64 [batch, sequence], `attention_mask` int64
 * [batch, past_sequence + sequence] (1 = real token; left padding allowed), `past_key_values.{i}.key/value`
 * float32 [batch, kvHeads, past_sequence, headDim] (past_sequence may be 0). Outputs: `logits` float32
 * [batch, sequence, vocab] and `present.{i}.key/value` [batch, kvHeads, past_sequence + sequence, headDim].
 * Position ids are the count of real tokens before each token (cumsum(attention_mask) - 1).
 */
export function exportPolicyOnnx(config: GptConfig, params: HostParams): Uint8Array {
  validateConfig(config);
  const g = new Graph(`${config.architecture ?? 'gpt2'}_policy`);
  const weights = paramInitializers(g, config, params);
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const mask = g.input('attention_mask', 'int64', ['batch', 'total_sequence']);
  const pastKv: KvCache[] = Array.from({ length: config.nLayer }, (_, i) => ({
    key: g.input(`past_key_values.${i}.key`, 'float32', kvShape(config, 'batch', 'past_sequence')),
    value: g.input(`past_key_values.${i}.value`, 'float32', kvShape(config, 'batch', 'past_sequence')),
  }));
  const out = gptForward(weights, config, ids, { attentionMask: mask, pastKv });
  g.output(out.logits, 'logits');
  out.presentKv.forEach((kv: KvCache, i) => {
    g.output(kv.key, `present.${i}.key`);
    g.output(kv.value, `present.${i}.value`);
  });
  return g.toBytes({ producerName: '@rlhf/model' });
}

/**
 * A reward (or value) model: a scalar-head config. Inputs: `input_ids`, `attention_mask` int64 [batch, sequence].
 * Outputs: `scores` float32 [batch] (the head at the last real token) and `values` [batch, sequence].
 */
export function exportRewardOnnx(config: GptConfig, params: HostParams): Uint8Array {
  validateConfig(config);
  if (!config.scalarHead)
    throw new Error('exportRewardOnnx: the config has no scalar head (scalarHead: true)');
  const g = new Graph(`${config.architecture ?? 'gpt2'}_reward`);
  const weights = paramInitializers(g, config, params);
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const mask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const values = gptForward(weights, config, ids, { attentionMask: mask }).values as Tensor;
  g.output(sequenceScores(values, mask), 'scores');
  g.output(values, 'values');
  return g.toBytes({ producerName: '@rlhf/model' });
}
