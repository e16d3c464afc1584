// Small ONNX models the runtime tests run, built with @rlhf/onnx.
import { encodeModel, type GraphProto, tensorProto } from '@rlhf/onnx';

const model = (graph: GraphProto): Uint8Array =>
  encodeModel({
    irVersion: 10,
    opsetImports: [{ domain: '', version: 21 }],
    producerName: 'runtime-test',
    graph,
  });

/** y = (a + b) * w with w = [1, 2, 3] an initializer; p = softmax(y, axis -1); acc = a + trip * b (a Loop). */
export function addLoopModel(): Uint8Array {
  const body: GraphProto = {
    name: 'body',
    nodes: [
      { opType: 'Add', inputs: ['acc_in', 'b'], outputs: ['acc_out'] },
      { opType: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] },
    ],
    inputs: [
      { name: 'i', elemType: 'int64', shape: [] },
      { name: 'cond_in', elemType: 'bool', shape: [] },
      { name: 'acc_in', elemType: 'float32', shape: [3] },
    ],
    outputs: [
      { name: 'cond_out', elemType: 'bool', shape: [] },
      { name: 'acc_out', elemType: 'float32', shape: [3] },
    ],
    initializers: [],
  };
  return model({
    name: 'add_loop',
    nodes: [
      { opType: 'Add', inputs: ['a', 'b'], outputs: ['s'] },
      { opType: 'Mul', inputs: ['s', 'w'], outputs: ['y'] },
      {
        opType: 'Softmax',
        inputs: ['y'],
        outputs: ['p'],
        attributes: [{ name: 'axis', type: 'int', i: -1 }],
      },
      {
        opType: 'Loop',
        inputs: ['trip', '', 'a'],
        outputs: ['acc'],
        attributes: [{ name: 'body', type: 'graph', g: body }],
      },
    ],
    inputs: [
      { name: 'a', elemType: 'float32', shape: [3] },
      { name: 'b', elemType: 'float32', shape: [3] },
      { name: 'trip', elemType: 'int64', shape: [] },
    ],
    outputs: [
      { name: 'y', elemType: 'float32', shape: [3] },
      { name: 'p', elemType: 'float32', shape: [3] },
      { name: 'acc', elemType: 'float32', shape: [3] },
    ],
    initializers: [tensorProto('w', 'float32', [3], [1, 2, 3])],
  });
}

/** y = x @ w in `type` (float64 or float32), x: [m, k], w: [k, n]. */
export function matmulModel(type: 'float32' | 'float64'): Uint8Array {
  return model({
    name: 'matmul',
    nodes: [{ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] }],
    inputs: [
      { name: 'x', elemType: type, shape: ['m', 'k'] },
      { name: 'w', elemType: type, shape: ['k', 'n'] },
    ],
    outputs: [{ name: 'y', elemType: type, shape: ['m', 'n'] }],
    initializers: [],
  });
}

/** int64: sum = a + b, prod = a * b, last = CumSum(a, axis -1). */
export function int64Model(): Uint8Array {
  return model({
    name: 'int64',
    nodes: [
      { opType: 'Add', inputs: ['a', 'b'], outputs: ['sum'] },
      { opType: 'Mul', inputs: ['a', 'b'], outputs: ['prod'] },
      { opType: 'CumSum', inputs: ['a', 'axis'], outputs: ['cumsum'] },
    ],
    inputs: [
      { name: 'a', elemType: 'int64', shape: ['n'] },
      { name: 'b', elemType: 'int64', shape: ['n'] },
    ],
    outputs: [
      { name: 'sum', elemType: 'int64', shape: ['n'] },
      { name: 'prod', elemType: 'int64', shape: ['n'] },
      { name: 'cumsum', elemType: 'int64', shape: ['n'] },
    ],
    initializers: [tensorProto('axis', 'int64', [], [-1])],
  });
}

/** x_{t+1} = tanh(x_t @ w), `trip` times inside one Loop (one long run). */
export function tanhMatmulLoopModel(): Uint8Array {
  const body: GraphProto = {
    name: 'step',
    nodes: [
      { opType: 'MatMul', inputs: ['x_in', 'w'], outputs: ['xw'] },
      { opType: 'Tanh', inputs: ['xw'], outputs: ['x_out'] },
      { opType: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] },
    ],
    inputs: [
      { name: 'i', elemType: 'int64', shape: [] },
      { name: 'cond_in', elemType: 'bool', shape: [] },
      { name: 'x_in', elemType: 'float32', shape: ['m', 'n'] },
    ],
    outputs: [
      { name: 'cond_out', elemType: 'bool', shape: [] },
      { name: 'x_out', elemType: 'float32', shape: ['m', 'n'] },
    ],
    initializers: [],
  };
  return model({
    name: 'tanh_matmul_loop',
    nodes: [
      {
        opType: 'Loop',
        inputs: ['trip', '', 'x'],
        outputs: ['y'],
        attributes: [{ name: 'body', type: 'graph', g: body }],
      },
    ],
    inputs: [
      { name: 'trip', elemType: 'int64', shape: [] },
      { name: 'x', elemType: 'float32', shape: ['m', 'n'] },
      { name: 'w', elemType: 'float32', shape: ['n', 'n'] },
    ],
    outputs: [{ name: 'y', elemType: 'float32', shape: ['m', 'n'] }],
    initializers: [],
  });
}

/** y = x + x: Add is x's only reader, so y may be written into x's own buffer. */
export function doubleModel(): Uint8Array {
  return model({
    name: 'double',
    nodes: [{ opType: 'Add', inputs: ['x', 'x'], outputs: ['y'] }],
    inputs: [{ name: 'x', elemType: 'float32', shape: ['n'] }],
    outputs: [{ name: 'y', elemType: 'float32', shape: ['n'] }],
    initializers: [],
  });
}
