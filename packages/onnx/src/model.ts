// ONNX ModelProto as plain TypeScript objects, encoded/decoded with protobufjs against onnx.proto.
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import {
  dataTypeFromCode,
  elementCount,
  ONNX_DATA_TYPE,
  type TensorDataType,
  type TensorProto,
  tensorProto,
} from './tensor.js';

export type AttributeType = 'float' | 'int' | 'string' | 'tensor' | 'graph' | 'floats' | 'ints' | 'strings';

export interface AttributeProto {
  name: string;
  type: AttributeType;
  f?: number;
  i?: number;
  s?: string;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: number[];
  strings?: string[];
}

/** shape: number = dim_value, string = dim_param ('' = unknown dim); undefined = unknown rank. */
export interface ValueInfoProto {
  name: string;
  elemType: TensorDataType;
  shape?: (number | string)[];
}

/** An input named '' is an omitted optional input. */
export interface NodeProto {
  opType: string;
  domain?: string;
  name?: string;
  inputs: string[];
  outputs: string[];
  attributes?: AttributeProto[];
}

export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializers: TensorProto[];
  valueInfo?: ValueInfoProto[];
}

export interface ModelProto {
  irVersion: number;
  opsetImports: { domain: string; version: number }[];
  producerName: string;
  graph: GraphProto;
}

// AttributeProto.AttributeType codes from onnx.proto.
const ATTRIBUTE_TYPE: Record<AttributeType, number> = {
  float: 1,
  int: 2,
  string: 3,
  tensor: 4,
  graph: 5,
  floats: 6,
  ints: 7,
  strings: 8,
};
const ATTRIBUTE_TYPE_BY_CODE = new Map(
  Object.entries(ATTRIBUTE_TYPE).map(([name, code]) => [code, name as AttributeType]),
);

const root = protobuf.parse(readFileSync(new URL('./onnx.proto', import.meta.url), 'utf8')).root;
const ModelMessage = root.lookupType('onnx.ModelProto');

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

// ---- encode: our objects -> protobufjs plain objects (camelCase field names of onnx.proto) ----

export function encodeModel(model: ModelProto): Uint8Array {
  const message = {
    irVersion: model.irVersion,
    opsetImport: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producerName: model.producerName,
    graph: graphMessage(model.graph),
  };
  const error = ModelMessage.verify(message);
  if (error) throw new Error(`invalid ONNX model: ${error}`);
  return ModelMessage.encode(message).finish();
}

function graphMessage(g: GraphProto): object {
  return {
    name: g.name,
    node: g.nodes.map(nodeMessage),
    input: g.inputs.map(valueInfoMessage),
    output: g.outputs.map(valueInfoMessage),
    initializer: g.initializers.map(tensorMessage),
    valueInfo: (g.valueInfo ?? []).map(valueInfoMessage),
  };
}

function nodeMessage(n: NodeProto): object {
  return {
    opType: n.opType,
    ...(n.domain !== undefined && { domain: n.domain }),
    ...(n.name !== undefined && { name: n.name }),
    input: n.inputs,
    output: n.outputs,
    attribute: (n.attributes ?? []).map(attributeMessage),
  };
}

function attributeMessage(a: AttributeProto): object {
  const where = `attribute '${a.name}' (${a.type})`;
  const need = <V>(value: V | undefined): V => {
    if (value === undefined) throw new Error(`${where} has no value`);
    return value;
  };
  const int = (v: number) => {
    if (!Number.isSafeInteger(v)) throw new Error(`${where}: ${v} is not an integer`);
    return v;
  };
  const base = { name: a.name, type: ATTRIBUTE_TYPE[a.type] };
  switch (a.type) {
    case 'float':
      return { ...base, f: need(a.f) };
    case 'int':
      return { ...base, i: int(need(a.i)) };
    case 'string':
      return { ...base, s: utf8.encode(need(a.s)) };
    case 'tensor':
      return { ...base, t: tensorMessage(need(a.t)) };
    case 'graph':
      return { ...base, g: graphMessage(need(a.g)) };
    case 'floats':
      return { ...base, floats: need(a.floats) };
    case 'ints':
      return { ...base, ints: need(a.ints).map(int) };
    case 'strings':
      return { ...base, strings: need(a.strings).map((s) => utf8.encode(s)) };
    default:
      throw new Error(`${where}: unknown attribute type`);
  }
}

function tensorMessage(t: TensorProto): object {
  return { name: t.name, dataType: ONNX_DATA_TYPE[t.dataType], dims: t.dims, rawData: t.rawData };
}

function valueInfoMessage(v: ValueInfoProto): object {
  const tensorType = {
    elemType: ONNX_DATA_TYPE[v.elemType],
    ...(v.shape && {
      shape: {
        dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : d === '' ? {} : { dimParam: d })),
      },
    }),
  };
  return { name: v.name, type: { tensorType } };
}

// ---- decode: protobufjs plain objects -> our objects ----

// The decoded shapes we read (after toObject with longs: Number, arrays: true, defaults: false).
interface TensorMessage {
  name?: string;
  dataType?: number;
  dims: number[];
  rawData?: Uint8Array;
  floatData: number[];
  int32Data: number[];
  int64Data: number[];
  doubleData: number[];
}
interface AttributeMessage {
  name?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorMessage;
  g?: GraphMessage;
  floats: number[];
  ints: number[];
  strings: Uint8Array[];
}
interface ValueInfoMessage {
  name?: string;
  type?: {
    tensorType?: { elemType?: number; shape?: { dim: { dimValue?: number; dimParam?: string }[] } };
  };
}
interface NodeMessage {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute: AttributeMessage[];
}
interface GraphMessage {
  node: NodeMessage[];
  name?: string;
  initializer: TensorMessage[];
  input: ValueInfoMessage[];
  output: ValueInfoMessage[];
  valueInfo: ValueInfoMessage[];
}
interface ModelMessageObject {
  irVersion?: number;
  opsetImport: { domain?: string; version?: number }[];
  producerName?: string;
  graph?: GraphMessage;
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  const decoded = ModelMessage.decode(bytes);
  const m = ModelMessage.toObject(decoded, {
    longs: Number,
    arrays: true,
    defaults: false,
  }) as ModelMessageObject;
  if (!m.graph) throw new Error('ONNX model has no graph');
  return {
    irVersion: m.irVersion ?? 0,
    opsetImports: m.opsetImport.map((o) => ({ domain: o.domain ?? '', version: o.version ?? 0 })),
    producerName: m.producerName ?? '',
    graph: decodeGraph(m.graph),
  };
}

function decodeGraph(g: GraphMessage): GraphProto {
  const graph: GraphProto = {
    name: g.name ?? '',
    nodes: g.node.map(decodeNode),
    inputs: g.input.map(decodeValueInfo),
    outputs: g.output.map(decodeValueInfo),
    initializers: g.initializer.map(decodeTensor),
  };
  if (g.valueInfo.length > 0) graph.valueInfo = g.valueInfo.map(decodeValueInfo);
  return graph;
}

function decodeNode(n: NodeMessage): NodeProto {
  const node: NodeProto = { opType: n.opType ?? '', inputs: n.input, outputs: n.output };
  if (n.domain !== undefined) node.domain = n.domain;
  if (n.name !== undefined) node.name = n.name;
  if (n.attribute.length > 0) node.attributes = n.attribute.map(decodeAttribute);
  return node;
}

function decodeAttribute(a: AttributeMessage): AttributeProto {
  const name = a.name ?? '';
  const type = ATTRIBUTE_TYPE_BY_CODE.get(a.type ?? 0);
  if (type === undefined) throw new Error(`attribute '${name}': unsupported attribute type code ${a.type}`);
  switch (type) {
    case 'float':
      return { name, type, f: a.f ?? 0 };
    case 'int':
      return { name, type, i: a.i ?? 0 };
    case 'string':
      return { name, type, s: fromUtf8.decode(a.s ?? new Uint8Array()) };
    case 'tensor':
      if (!a.t) throw new Error(`attribute '${name}': tensor attribute without a tensor`);
      return { name, type, t: decodeTensor(a.t) };
    case 'graph':
      if (!a.g) throw new Error(`attribute '${name}': graph attribute without a graph`);
      return { name, type, g: decodeGraph(a.g) };
    case 'floats':
      return { name, type, floats: a.floats };
    case 'ints':
      return { name, type, ints: a.ints };
    case 'strings':
      return { name, type, strings: a.strings.map((s) => fromUtf8.decode(s)) };
  }
}

function decodeTensor(t: TensorMessage): TensorProto {
  const name = t.name ?? '';
  const dataType = dataTypeFromCode(t.dataType ?? 0);
  if (t.rawData) return { name, dataType, dims: t.dims, rawData: new Uint8Array(t.rawData) };
  // Other producers may store values in the typed fields instead of raw_data.
  const typed =
    dataType === 'float32'
      ? t.floatData
      : dataType === 'float64'
        ? t.doubleData
        : dataType === 'int64'
          ? t.int64Data
          : dataType === 'float16'
            ? Uint16Array.from(t.int32Data) // float16 bit patterns are stored in int32_data
            : t.int32Data;
  if (typed.length === 0 && elementCount(t.dims) > 0) {
    throw new Error(`tensor '${name}' has no data (external data is not supported)`);
  }
  return tensorProto(name, dataType, t.dims, typed);
}

function decodeValueInfo(v: ValueInfoMessage): ValueInfoProto {
  const name = v.name ?? '';
  const tensorType = v.type?.tensorType;
  if (!tensorType) throw new Error(`value '${name}' is not a tensor (only tensor types are supported)`);
  const info: ValueInfoProto = { name, elemType: dataTypeFromCode(tensorType.elemType ?? 0) };
  if (tensorType.shape) info.shape = tensorType.shape.dim.map((d) => d.dimValue ?? d.dimParam ?? '');
  return info;
}
