// Sampling ops (no gradient): RandomUniformLike RandomNormalLike Multinomial. A seed makes a session's
// sequence reproducible; the generator advances on every run and every Loop iteration.
import { dataTypeFromCode, ONNX_DATA_TYPE } from '@rlhf/onnx';
import { defineOp, type OpContext, type Tensor } from '../graph.js';
import { type DType, isFloat } from '../types.js';

function inferLike(ctx: OpContext) {
  const x = ctx.input(0);
  const dtype = ctx.attrs.dtype === undefined ? x.dtype : dataTypeFromCode(ctx.int('dtype'));
  if (!isFloat(dtype)) ctx.fail(`random values must be float, not ${dtype}`);
  return [{ dtype, shape: x.shape }];
}

const RandomUniformLike = defineOp({
  type: 'RandomUniformLike',
  attrs: { dtype: 'int', high: 'float', low: 'float', seed: 'float' },
  nonDiff: [0],
  infer: inferLike,
});

const RandomNormalLike = defineOp({
  type: 'RandomNormalLike',
  attrs: { dtype: 'int', mean: 'float', scale: 'float', seed: 'float' },
  nonDiff: [0],
  infer: inferLike,
});

export interface RandomOptions {
  dtype?: DType;
  seed?: number;
}

/** Uniform samples in [low, high) with the shape of `like` (only its shape is used). */
export function randomUniformLike(
  like: Tensor,
  opts: RandomOptions & { low?: number; high?: number } = {},
): Tensor {
  return RandomUniformLike.one([like], {
    dtype: opts.dtype && ONNX_DATA_TYPE[opts.dtype],
    low: opts.low,
    high: opts.high,
    seed: opts.seed,
  });
}

/** Normal samples with the shape of `like`. */
export function randomNormalLike(
  like: Tensor,
  opts: RandomOptions & { mean?: number; scale?: number } = {},
): Tensor {
  return RandomNormalLike.one([like], {
    dtype: opts.dtype && ONNX_DATA_TYPE[opts.dtype],
    mean: opts.mean,
    scale: opts.scale,
    seed: opts.seed,
  });
}

const Multinomial = defineOp({
  type: 'Multinomial',
  attrs: { dtype: 'int', sample_size: 'int', seed: 'float' },
  infer: (ctx) => {
    const logits = ctx.input(0);
    if (logits.rank !== 2 || !isFloat(logits.dtype)) ctx.fail('takes float logits of shape [batch, classes]');
    const dtype = dataTypeFromCode(ctx.int('dtype', ONNX_DATA_TYPE.int32));
    return [{ dtype, shape: [logits.shape[0], ctx.int('sample_size', 1)] }];
  },
});

/** Samples class indices from unnormalized log-probabilities [batch, classes] -> int64 [batch, samples]. */
export function multinomial(logits: Tensor, samples = 1, seed?: number): Tensor {
  return Multinomial.one([logits], { dtype: ONNX_DATA_TYPE.int64, sample_size: samples, seed });
}
