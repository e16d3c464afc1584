import { describe, expect, test } from 'vitest';
import { decodeModel, encodeModel, type GraphProto, type ModelProto } from './model.js';
import { tensorProto, tensorProtoValues } from './tensor.js';

// A Loop whose body sums: acc_out = acc_in + x, run `trip` times (body graph nested in an attribute).
const body: GraphProto = {
  name: 'sum_body',
  nodes: [
    { opType: 'Add', inputs: ['acc_in', 'x'], outputs: ['acc_out'] },
    { opType: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] },
  ],
  inputs: [
    { name: 'iter', elemType: 'int64', shape: [] },
    { name: 'cond_in', elemType: 'bool', shape: [] },
    { name: 'acc_in', elemType: 'float32', shape: ['n'] },
  ],
  outputs: [
    { name: 'cond_out', elemType: 'bool', shape: [] },
    { name: 'acc_out', elemType: 'float32', shape: ['n'] },
  ],
  initializers: [],
};

const model: ModelProto = {
  irVersion: 10,
  opsetImports: [{ domain: '', version: 21 }],
  producerName: 'rlhf-test',
  graph: {
    name: 'g',
    nodes: [
      {
        opType: 'Loop',
        name: 'loop',
        inputs: ['trip', '', 'x'],
        outputs: ['sum'],
        attributes: [{ name: 'body', type: 'graph', g: body }],
      },
      {
        opType: 'ReduceSum',
        inputs: ['sum', 'axes'],
        outputs: ['total'],
        attributes: [{ name: 'keepdims', type: 'int', i: 0 }],
      },
      {
        opType: 'Softmax',
        domain: '',
        inputs: ['sum'],
        outputs: ['probs'],
        attributes: [{ name: 'axis', type: 'int', i: -1 }],
      },
      {
        opType: 'Custom',
        domain: 'test.domain',
        inputs: [],
        outputs: ['unused'],
        attributes: [
          { name: 'alpha', type: 'float', f: 0.5 },
          { name: 'mode', type: 'string', s: 'tanh ✓' },
          { name: 'scales', type: 'floats', floats: [1.5, -2] },
          { name: 'perm', type: 'ints', ints: [-1, 0, 2 ** 40, -(2 ** 40)] },
          { name: 'names', type: 'strings', strings: ['a', ''] },
          { name: 'value', type: 'tensor', t: tensorProto('v', 'int64', [2], [-1n, 3n]) },
        ],
      },
    ],
    inputs: [
      { name: 'trip', elemType: 'int64', shape: [] },
      { name: 'x', elemType: 'float32', shape: ['n'] },
      { name: 'unknown_rank', elemType: 'float64' },
      { name: 'unknown_dim', elemType: 'uint8', shape: ['', 3] },
    ],
    outputs: [
      { name: 'total', elemType: 'float32', shape: [] },
      { name: 'probs', elemType: 'float32', shape: ['n'] },
    ],
    initializers: [tensorProto('axes', 'int64', [1], [0])],
    valueInfo: [{ name: 'sum', elemType: 'float32', shape: ['n'] }],
  },
};

describe('encodeModel / decodeModel', () => {
  test('round-trips every field we model, nested graphs and negative int64 included', () => {
    const decoded = decodeModel(encodeModel(model));
    expect(decoded).toEqual(model);
    const perm = decoded.graph.nodes[3].attributes?.find((a) => a.name === 'perm');
    expect(perm?.ints).toEqual([-1, 0, 2 ** 40, -(2 ** 40)]);
    const value = decoded.graph.nodes[3].attributes?.find((a) => a.name === 'value')?.t;
    expect(value && tensorProtoValues(value)).toEqual(new BigInt64Array([-1n, 3n]));
  });

  test('a negative int attribute is a 10-byte two-complement varint on the wire', () => {
    const one = (i: number): ModelProto => ({
      ...model,
      graph: {
        ...model.graph,
        nodes: [{ opType: 'X', inputs: [], outputs: [], attributes: [{ name: 'a', type: 'int', i }] }],
      },
    });
    // -1 as int64 varint: nine 0xff bytes then 0x01; +1 is a single byte, so the sizes differ by 9.
    expect(encodeModel(one(-1)).length - encodeModel(one(1)).length).toBe(9);
  });

  test('rejects an attribute without its value and a non-integer int', () => {
    const bad = (attribute: NonNullable<ModelProto['graph']['nodes'][0]['attributes']>[0]): ModelProto => ({
      ...model,
      graph: { ...model.graph, nodes: [{ opType: 'X', inputs: [], outputs: [], attributes: [attribute] }] },
    });
    expect(() => encodeModel(bad({ name: 'axis', type: 'int' }))).toThrow(
      "attribute 'axis' (int) has no value",
    );
    expect(() => encodeModel(bad({ name: 'axis', type: 'int', i: 0.5 }))).toThrow('0.5 is not an integer');
  });

  test('decodes tensors stored in typed fields instead of raw_data', async () => {
    // Hand-encode a TensorProto with float_data (field 4, packed) as another producer would.
    const protobuf = (await import('protobufjs')).default;
    const { readFileSync } = await import('node:fs');
    const root = protobuf.parse(readFileSync(new URL('./onnx.proto', import.meta.url), 'utf8')).root;
    const Model = root.lookupType('onnx.ModelProto');
    const bytes = Model.encode({
      irVersion: 10,
      graph: {
        name: 'g',
        initializer: [
          { name: 'w', dataType: 1, dims: [2], floatData: [0.25, -4] },
          { name: 'k', dataType: 7, dims: [3], int64Data: [-5, 0, 7] },
          { name: 'h', dataType: 10, dims: [1], int32Data: [0x3c00] },
        ],
      },
    }).finish();
    const [w, k, h] = decodeModel(bytes).graph.initializers;
    expect(tensorProtoValues(w)).toEqual(new Float32Array([0.25, -4]));
    expect(tensorProtoValues(k)).toEqual(new BigInt64Array([-5n, 0n, 7n]));
    expect(tensorProtoValues(h)).toEqual(new Uint16Array([0x3c00]));
  });
});
