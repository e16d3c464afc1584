// Graph -> ONNX ModelProto: live nodes only (dead gradient branches are dropped), opset 20.
import { writeFileSync } from 'node:fs';
import {
  type AttributeProto,
  encodeModel,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  tensorProto,
  type ValueInfoProto,
} from '@rlhf/onnx';
import type { AttrValue, ConstTensor, Graph, Node, Tensor } from './graph.js';

export const OPSET = 20;

export interface ModelOptions {
  /** Also record inferred shapes of intermediate values (for Netron; ORT checks them against its own). */
  valueInfo?: boolean;
  producerName?: string;
}

/** The ONNX model of a root graph. */
export function toModel(graph: Graph, opts: ModelOptions = {}): ModelProto {
  if (graph.parent) throw new Error(`toModel: '${graph.name}' is a subgraph`);
  const used = new Set<Tensor>();
  const proto = graphProto(graph, used, opts);
  proto.initializers = [...graph.initializers]
    .filter(([t]) => used.has(t))
    .map(([t, c]) => tensorProto(t.name, c.dtype, [...c.dims], c.data));
  return {
    irVersion: 10,
    opsetImports: [{ domain: '', version: OPSET }],
    producerName: opts.producerName ?? '@rlhf/graph',
    graph: proto,
  };
}

/** Encoded model bytes, ready for a session. */
export function toBytes(graph: Graph, opts: ModelOptions = {}): Uint8Array {
  return encodeModel(toModel(graph, opts));
}

/** Writes the model to a .onnx file (open it in Netron), with intermediate shapes. */
export function saveModel(graph: Graph, path: string): void {
  writeFileSync(path, toBytes(graph, { valueInfo: true }));
}

function graphProto(graph: Graph, used: Set<Tensor>, opts: ModelOptions): GraphProto {
  const live = liveNodes(graph);
  const nodes = graph.nodes.filter((n) => live.has(n));
  for (const node of nodes) for (const t of node.inputs) if (t) used.add(t);
  for (const t of graph.outputs) used.add(t);
  const dims = new Set([...graph.inputs, ...graph.outputs]);
  return {
    name: graph.name,
    nodes: nodes.map((n) => nodeProto(n, used, opts)),
    inputs: graph.inputs.map(valueInfo),
    outputs: graph.outputs.map(valueInfo),
    initializers: [],
    valueInfo: opts.valueInfo
      ? nodes.flatMap((n) => n.outputs.filter((t) => !dims.has(t)).map(valueInfo))
      : undefined,
  };
}

/** Nodes that some output of the graph depends on. */
function liveNodes(graph: Graph): Set<Node> {
  const live = new Set<Node>();
  const stack = [...graph.outputs];
  while (stack.length > 0) {
    const node = stack.pop()!.producer;
    if (!node || node.graph !== graph || live.has(node)) continue;
    live.add(node);
    stack.push(...node.reads);
  }
  return live;
}

function nodeProto(node: Node, used: Set<Tensor>, opts: ModelOptions): NodeProto {
  const inputs = node.inputs.map((t) => t?.name ?? ''); // '' = omitted optional input
  const attributes = Object.entries(node.attrs)
    .filter((entry): entry is [string, AttrValue] => entry[1] !== undefined)
    .map(([name, value]) => attribute(node, name, value, used, opts));
  return {
    opType: node.op.type,
    ...(node.op.domain ? { domain: node.op.domain } : {}),
    name: node.name,
    inputs,
    outputs: node.outputs.map((t) => t.name),
    ...(attributes.length > 0 ? { attributes } : {}),
  };
}

function attribute(
  node: Node,
  name: string,
  value: AttrValue,
  used: Set<Tensor>,
  opts: ModelOptions,
): AttributeProto {
  const type = node.op.attrs[name];
  switch (type) {
    case 'int':
      return { name, type, i: value as number };
    case 'float':
      return { name, type, f: value as number };
    case 'string':
      return { name, type, s: value as string };
    case 'ints':
      return { name, type, ints: [...(value as number[])] };
    case 'floats':
      return { name, type, floats: [...(value as number[])] };
    case 'strings':
      return { name, type, strings: [...(value as string[])] };
    case 'tensor': {
      const c = value as ConstTensor;
      return { name, type, t: tensorProto(name, c.dtype, [...c.dims], c.data) };
    }
    case 'graph':
      return { name, type, g: graphProto(value as Graph, used, opts) };
  }
  throw new Error(`${node.name}: attribute '${name}' has no type`);
}

function valueInfo(t: Tensor): ValueInfoProto {
  return { name: t.name, elemType: t.dtype, shape: t.shape.map((d) => (d === null ? '' : d)) };
}
