// Malformed graphs fail at build time, naming the op and the shapes.
import { describe, expect, test } from 'vitest';
import { grad } from './autodiff.js';
import { Graph, node } from './graph.js';
import * as G from './index.js';

const graph = () => new Graph('errors');

describe('shape and dtype rules', () => {
  test('matmul with mismatched inner dims', () => {
    const g = graph();
    const a = g.input('a', 'float32', [2, 3]);
    const b = g.input('b', 'float32', [4, 5]);
    expect(() => G.matmul(a, b)).toThrow(/MatMul 'MatMul_\d+': inner dimensions differ: \[2,3\] @ \[4,5\]/);
  });

  test('broadcasting mismatch names the op and both shapes', () => {
    const g = graph();
    const a = g.input('a', 'float32', ['batch', 3]);
    const b = g.input('b', 'float32', [4]);
    expect(() => G.add(a, b)).toThrow(/Add .*shapes \[batch,3\] and \[4\] do not broadcast/);
  });

  test('dtype mismatch', () => {
    const g = graph();
    const a = g.input('a', 'float32', [3]);
    const b = g.input('b', 'float64', [3]);
    expect(() => G.mul(a, b)).toThrow(
      /Mul .*dtypes differ: float32 and float64.*inputs: float32\[3\], float64\[3\]/,
    );
  });

  test('bad axis', () => {
    const x = graph().input('x', 'float32', [2, 3]);
    expect(() => G.softmax(x, 2)).toThrow(/Softmax .*axis 2 is out of range for rank 2/);
    expect(() => G.concat([x, x], -3)).toThrow(/Concat .*axis -3/);
  });

  test('reshape to a different element count', () => {
    const x = graph().input('x', 'float32', [2, 3]);
    expect(() => G.reshape(x, [4, -1])).toThrow(/Reshape .*cannot reshape \[2,3\]/);
    expect(() => G.reshape(x, [5])).toThrow(/Reshape .*6 elements/);
  });

  test('unsupported dtypes, float indices, numbers only', () => {
    const g = graph();
    const i = g.input('i', 'int64', [3]);
    const x = g.input('x', 'float32', [3]);
    expect(() => G.sqrt(i)).toThrow(/Sqrt .*dtype int64 is not supported/);
    expect(() => G.gather(x, x)).toThrow(/Gather .*indices must be int64 or int32, not float32/);
    expect(() => G.add(1, 2)).toThrow(/at least one tensor operand/);
    expect(() => G.add(i, 0.5)).toThrow(/0.5 is not a valid int64/);
  });

  test('concat with mismatched dims; layerNorm scale of the wrong size', () => {
    const g = graph();
    const a = g.input('a', 'float32', [2, 3]);
    const b = g.input('b', 'float32', [4, 3]);
    expect(() => G.concat([a, b], 1)).toThrow(/Concat .*dim 0 differs: 2 and 4/);
    expect(() => G.layerNorm(a, g.input('s', 'float32', [4]), null)).toThrow(/LayerNormalization .*\[4\]/);
  });
});

describe('generic escape hatch', () => {
  test('unknown op types are rejected at build time', () => {
    const x = graph().input('x', 'float32', [3]);
    expect(() => node('FancyFusedThing', [x])).toThrow(/unknown op 'FancyFusedThing'/);
  });

  test('unknown attributes and wrongly typed attributes are rejected', () => {
    const x = graph().input('x', 'float32', [3]);
    expect(() => node('Softmax', [x], { axes: 0 })).toThrow(/Softmax .*unknown attribute 'axes'/);
    expect(() => node('Softmax', [x], { axis: 0.5 })).toThrow(/Softmax .*attribute 'axis' must be int/);
    expect(node('Relu', [x])[0].shape).toEqual([3]);
  });
});

describe('autodiff', () => {
  test('gradient through ArgMax fails, naming the op', () => {
    const g = graph();
    const x = g.input('x', 'float32', [2, 5]);
    const loss = G.reduceSum(G.cast(G.argmax(x, -1), 'float32'));
    expect(() => grad(loss, [x])).toThrow(
      /ArgMax 'ArgMax_\d+': is not differentiable: the loss depends on its int64 output/,
    );
  });

  test('gradient through a comparison fails; the same comparison under Where is fine', () => {
    const g = graph();
    const x = g.input('x', 'float32', [4]);
    const viaMask = G.reduceSum(G.mul(x, G.cast(G.greater(x, 0), 'float32')));
    expect(() => grad(viaMask, [x])).toThrow(/Greater .*not differentiable.*bool output/);
    const viaWhere = G.reduceSum(G.where(G.greater(x, 0), x, 0));
    expect(grad(viaWhere, [x])[0].shape).toEqual([4]);
    const stopped = G.reduceSum(G.mul(x, G.stopGradient(G.cast(G.greater(x, 0), 'float32'))));
    expect(grad(stopped, [x])[0].shape).toEqual([4]);
  });

  test('gradient through TopK indices fails, through TopK values works', () => {
    const g = graph();
    const x = g.input('x', 'float32', [2, 5]);
    const { values, indices } = G.topk(x, 2);
    expect(() => grad(G.reduceSum(G.cast(indices, 'float32')), [x])).toThrow(/TopK .*int64 output/);
    expect(grad(G.reduceSum(values), [x])[0].shape).toEqual([2, 5]);
  });

  test('gradient through a float-to-int cast or a Loop fails', () => {
    const g = graph();
    const x = g.input('x', 'float32', [3]);
    const truncated = G.cast(G.cast(x, 'int32'), 'float32');
    expect(() => grad(G.reduceSum(truncated), [x])).toThrow(/Cast .*int32 output/);
    const looped = G.loop({ trips: 2, carried: [x], body: (_, [c]) => ({ carried: [G.mul(c, 2)] }) });
    expect(() => grad(G.reduceSum(looped.carried[0]), [x])).toThrow(/Loop .*has no gradient rule/);
  });

  test('random samples of a parameter-shaped tensor do not block gradients (dropout)', () => {
    const g = graph();
    const x = g.input('x', 'float32', [3]);
    const keep = G.cast(G.less(G.randomUniformLike(x, { seed: 1 }), 0.9), 'float32');
    expect(grad(G.reduceSum(G.div(G.mul(x, keep), 0.9)), [x])[0].shape).toEqual([3]);
  });

  test('loss must be a float scalar; unused parameters get zeros', () => {
    const g = graph();
    const x = g.input('x', 'float32', [3]);
    const unused = g.input('u', 'float32', [2]);
    expect(() => grad(x, [x])).toThrow(/loss .* must be a scalar/);
    const [, gu] = grad(G.reduceSum(x), [x, unused]);
    expect(gu.producer?.op.type).toBe('ConstantOfShape');
  });
});

describe('graphs and loops', () => {
  test('tensors of different graphs cannot be mixed; names are unique', () => {
    const a = graph().input('a', 'float32', [3]);
    const g = graph();
    const b = g.input('b', 'float32', [3]);
    expect(() => G.add(a, b)).toThrow(/not visible here/);
    expect(() => g.input('b', 'float32', [1])).toThrow(/name 'b' is used twice/);
  });

  test('a carried value that changes shape must be declared', () => {
    const g = graph();
    const cache = g.input('cache', 'float32', [1, 4]);
    const grow = (declared?: (number | string | null)[]) =>
      G.loop({
        trips: 3,
        carried: [cache],
        carriedShapes: declared && [declared],
        body: (_, [c]) => ({ carried: [G.concat([c, G.slice(c, [0], [1], [0])], 0)] }),
      });
    expect(() => grow()).toThrow(/carried value 0 enters as float32\[1,4\] but leaves as float32\[2,4\]/);
    expect(grow([null, 4]).carried[0].shape).toEqual([null, 4]);
  });

  test('a loop body tensor cannot be used after its loop', () => {
    const g = graph();
    const x = g.input('x', 'float32', [3]);
    let inner: G.Tensor | undefined;
    G.loop({
      trips: 2,
      carried: [x],
      body: (_, [c]) => {
        inner = G.mul(c, 2);
        return { carried: [inner] };
      },
    });
    expect(() => G.add(inner!, 1)).toThrow(/Add: graph '.*' is finished/);
  });
});
