// The graph: tensors, nodes, ops (builder, shape rule and gradient rule in one OpDef) and subgraphs, and
// its ONNX encoding (toModel/toBytes: live nodes only, dead gradient branches are dropped; opset 20).
import { writeFileSync } from 'node:fs';
import {
  type AttributeProto,
  encodeModel,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  tensorProto,
  toTypedArray,
  type ValueInfoProto,
} from '@rlhf/onnx';
import { type DType, type Dim, formatShape, type Shape, type TensorData } from './types.js';

/** A build-time mistake in a graph (bad shapes, dtypes, axes, unknown ops, non-differentiable paths). */
export class GraphError extends Error {
  override name = 'GraphError';
}

/** Constant tensor data: initializers and tensor-valued attributes. */
export interface ConstTensor {
  dtype: DType;
  dims: readonly number[];
  data: TensorData;
}

export type AttrType = 'int' | 'float' | 'string' | 'ints' | 'floats' | 'strings' | 'tensor' | 'graph';
export type AttrValue = number | string | readonly number[] | readonly string[] | ConstTensor | Graph;
export type Attrs = Readonly<Record<string, AttrValue | undefined>>;

/** What shape inference says about one output. `value` = known elements of a small int tensor (shapes). */
export interface OutputInfo {
  dtype: DType;
  shape: Shape;
  value?: readonly Dim[];
}

/** One op: its ONNX type, attribute schema, shape rule and (optional) gradient rule, side by side. */
export interface OpDef {
  /** Registry name: the ONNX type unless two defs share one (StopGradient is an Identity). */
  readonly name: string;
  readonly type: string;
  readonly domain: string;
  /** Attribute names and their ONNX types; anything else is rejected at build time. */
  readonly attrs: Readonly<Record<string, AttrType>>;
  /** Inputs the outputs depend on only through shapes or indices: their gradient is zero by construction. */
  readonly nonDiff: readonly number[];
  readonly infer: (ctx: OpContext) => OutputInfo[];
  /** Local backward rule: gradients of the inputs given gradients of the outputs (null = none). */
  readonly grad?: (ctx: GradContext) => readonly (Tensor | null | undefined)[];
}

const registry = new Map<string, OpDef>();

/** Declares an op once: builder functions call `op.apply(...)`, autodiff calls `op.grad`. */
export function defineOp(spec: {
  type: string;
  name?: string;
  domain?: string;
  attrs?: Record<string, AttrType>;
  nonDiff?: readonly number[];
  infer: (ctx: OpContext) => OutputInfo[];
  grad?: (ctx: GradContext) => readonly (Tensor | null | undefined)[];
}): Op {
  const def: OpDef = { name: spec.type, domain: '', attrs: {}, nonDiff: [], ...spec };
  if (registry.has(def.name)) throw new GraphError(`op ${def.name} is defined twice`);
  registry.set(def.name, def);
  return new Op(def);
}

/** Looks an op up by ONNX type name (the generic escape hatch); unknown types fail here, at build time. */
export function opByType(type: string): Op {
  const def = registry.get(type);
  if (!def) throw new GraphError(`unknown op '${type}': only ops defined with defineOp can be emitted`);
  return new Op(def);
}

/** Emits any defined op by name: `node('Relu', [x])`. */
export function node(type: string, inputs: readonly (Tensor | null)[], attrs: Attrs = {}): Tensor[] {
  return opByType(type).apply(inputs, attrs);
}

export class Op {
  constructor(readonly def: OpDef) {}

  /** Adds a node to the innermost graph of its inputs (or the graph being built) and returns its outputs. */
  apply(inputs: readonly (Tensor | null)[], attrs: Attrs = {}): Tensor[] {
    const graph = targetGraph(this.def.type, inputs);
    const root = graph.root;
    const id = root.nextId();
    const name = [...scopes, `${this.def.type}_${id}`].join('/');
    const ctx = new OpContext(this.def, name, inputs, attrs);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined) continue;
      const type = this.def.attrs[key];
      if (!type) ctx.fail(`unknown attribute '${key}'`);
      if (!attrMatches(type, value)) ctx.fail(`attribute '${key}' must be ${type}`);
    }
    let infos: OutputInfo[];
    try {
      infos = this.def.infer(ctx);
    } catch (error) {
      if (error instanceof GraphError) throw error;
      throw ctx.error(String(error));
    }
    const node = new Node(id, this.def, name, graph, inputs, attrs);
    node.outputs = infos.map(
      (info, i) =>
        new Tensor(
          graph,
          infos.length === 1 ? name : `${name}:${i}`,
          info.dtype,
          info.shape,
          node,
          info.value,
        ),
    );
    graph.nodes.push(node);
    return node.outputs;
  }

  /** Same as apply for single-output ops. */
  one(inputs: readonly (Tensor | null)[], attrs: Attrs = {}): Tensor {
    return this.apply(inputs, attrs)[0];
  }
}

function attrMatches(type: AttrType, value: AttrValue): boolean {
  switch (type) {
    case 'int':
      return typeof value === 'number' && Number.isInteger(value);
    case 'float':
      return typeof value === 'number';
    case 'string':
      return typeof value === 'string';
    case 'ints':
      return Array.isArray(value) && value.every((v) => typeof v === 'number' && Number.isInteger(v));
    case 'floats':
      return Array.isArray(value) && value.every((v) => typeof v === 'number');
    case 'strings':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'graph':
      return value instanceof Graph;
    case 'tensor':
      return typeof value === 'object' && !Array.isArray(value) && !(value instanceof Graph);
  }
}

/** What an op's shape rule sees: its inputs, attributes, and helpers to read them or fail with context. */
export class OpContext {
  constructor(
    readonly op: OpDef,
    readonly name: string,
    readonly inputs: readonly (Tensor | null)[],
    readonly attrs: Attrs,
  ) {}

  /** A GraphError naming the op, the node and every input's dtype and shape. */
  error(message: string): GraphError {
    const ins = this.inputs.map((t) => (t ? `${t.dtype}${formatShape(t.shape)}` : '-')).join(', ');
    return new GraphError(`${this.op.type} '${this.name}': ${message} (inputs: ${ins})`);
  }

  fail(message: string): never {
    throw this.error(message);
  }

  /** A required input. */
  input(i: number): Tensor {
    const t = this.inputs[i];
    if (!t) this.fail(`input ${i} is required`);
    return t;
  }

  int(name: string, fallback?: number): number {
    const v = this.attrs[name] ?? fallback;
    if (typeof v !== 'number') this.fail(`attribute '${name}' is required`);
    return v;
  }

  float(name: string, fallback?: number): number {
    return this.int(name, fallback);
  }

  str(name: string, fallback?: string): string {
    const v = this.attrs[name] ?? fallback;
    if (typeof v !== 'string') this.fail(`attribute '${name}' is required`);
    return v;
  }

  ints(name: string, fallback?: readonly number[]): readonly number[] {
    const v = this.attrs[name] ?? fallback;
    if (!Array.isArray(v)) this.fail(`attribute '${name}' is required`);
    return v as readonly number[];
  }

  graph(name: string): Graph {
    const v = this.attrs[name];
    if (!(v instanceof Graph)) this.fail(`attribute '${name}' must be a graph`);
    return v;
  }

  tensorAttr(name: string): ConstTensor | undefined {
    const v = this.attrs[name];
    return v === undefined ? undefined : (v as ConstTensor);
  }

  /** Known integer elements of input i (a constant or a shape computation), or fails. */
  ints64(i: number, what: string): readonly number[] {
    const v = this.input(i).value;
    if (!v || v.some((d) => typeof d !== 'number')) this.fail(`${what} must be a constant`);
    return v as readonly number[];
  }

  /** Normalizes a possibly negative axis for a tensor of this rank, or fails. */
  axis(axis: number, rank: number): number {
    if (!Number.isInteger(axis) || axis < -rank || axis >= rank)
      this.fail(`axis ${axis} is out of range for rank ${rank}`);
    return axis < 0 ? axis + rank : axis;
  }
}

/** What a gradient rule sees: the forward node plus the gradients flowing into its outputs. */
export class GradContext extends OpContext {
  constructor(
    readonly node: Node,
    /** Gradient of the loss w.r.t. each output (null where none flows). */
    readonly grads: readonly (Tensor | null)[],
    private readonly wanted: readonly boolean[],
  ) {
    super(node.op, node.name, node.inputs, node.attrs);
  }

  get outputs(): readonly Tensor[] {
    return this.node.outputs;
  }

  /** Whether autodiff needs the gradient of input i (rules skip building the others). */
  wants(i: number): boolean {
    return this.wanted[i] ?? false;
  }

  /** The gradient of output i, or zeros of its shape when no gradient flows into it. */
  gradOrZeros(i: number, zeros: (like: Tensor) => Tensor): Tensor {
    return this.grads[i] ?? zeros(this.node.outputs[i]);
  }
}

export class Node {
  outputs: Tensor[] = [];
  constructor(
    readonly id: number,
    readonly op: OpDef,
    readonly name: string,
    readonly graph: Graph,
    readonly inputs: readonly (Tensor | null)[],
    readonly attrs: Attrs,
  ) {}

  /** Subgraphs held in attributes (Loop bodies). */
  get subgraphs(): Graph[] {
    return Object.values(this.attrs).filter((v): v is Graph => v instanceof Graph);
  }

  /** Everything this node reads: its inputs and the outer-scope tensors its subgraphs read. */
  get reads(): Tensor[] {
    const reads = this.inputs.filter((t): t is Tensor => t !== null);
    for (const g of this.subgraphs) reads.push(...g.outerReads());
    return reads;
  }
}

/** A value in a graph: a graph input, a constant, or an op output. Knows its graph, dtype and shape. */
export class Tensor {
  constructor(
    readonly graph: Graph,
    public name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly producer: Node | null,
    /** Known elements of a small int tensor (shape arithmetic at build time). */
    readonly value?: readonly Dim[],
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${formatShape(this.shape)}`;
  }
}

const contexts: Graph[] = [];
const scopes: string[] = [];

/** Builds inside `graph` (a Loop body): every node created in `fn` goes there. */
export function inGraph<T>(graph: Graph, fn: () => T): T {
  contexts.push(graph);
  try {
    return fn();
  } finally {
    contexts.pop();
  }
}

/** Prefixes the names of nodes created in `fn` with `name/` (readable graphs in Netron, readable errors). */
export function scope<T>(name: string, fn: () => T): T {
  scopes.push(name);
  try {
    return fn();
  } finally {
    scopes.pop();
  }
}

/** The graph being built when no tensor says otherwise. */
export function currentGraph(): Graph | null {
  return contexts.at(-1) ?? null;
}

/** The graph a node with these inputs belongs to: the one being built, else the innermost input graph. */
export function targetGraph(type: string, inputs: readonly (Tensor | null)[]): Graph {
  const context = currentGraph();
  let graph = context;
  for (const t of inputs) if (t && (!graph || t.graph.depth > graph.depth)) graph = t.graph;
  if (!graph) throw new GraphError(`${type}: no graph (give it a tensor input or build inside a graph)`);
  if (context && graph !== context)
    throw new GraphError(
      `${type}: an input belongs to an inner graph ('${graph.name}') and cannot be used here`,
    );
  if (graph.sealed)
    throw new GraphError(`${type}: graph '${graph.name}' is finished (a Loop body used outside)`);
  for (const t of inputs) {
    if (t && !graph.sees(t.graph))
      throw new GraphError(`${type}: input ${t.name} belongs to graph '${t.graph.name}', not visible here`);
  }
  return graph;
}

/**
 * An ONNX graph under construction. The root graph owns constants (initializers) and the name counter;
 * Loop bodies are child graphs that may read tensors of their ancestors.
 */
export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  readonly outputs: Tensor[] = [];
  /** Initializers (root graph only): named weights and deduplicated constants. */
  readonly initializers = new Map<Tensor, ConstTensor>();
  readonly root: Graph;
  readonly depth: number;
  /** Set once a Loop body is complete; building into it afterwards is an error. */
  sealed = false;
  private counter = 0;
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, Tensor>();

  constructor(
    readonly name = 'main',
    readonly parent: Graph | null = null,
  ) {
    this.root = parent ? parent.root : this;
    this.depth = parent ? parent.depth + 1 : 0;
  }

  /** @internal node ids, unique across a root graph and its subgraphs. */
  nextId(): number {
    return this.root.counter++;
  }

  /** Whether tensors of `other` may be read here (same graph or an ancestor). */
  sees(other: Graph): boolean {
    for (let g: Graph | null = this; g; g = g.parent) if (g === other) return true;
    return false;
  }

  /** @internal reserves a user-visible value name (unique across the model). */
  claim(name: string): string {
    const names = this.root.names;
    if (!name) throw new GraphError('value names must not be empty');
    if (names.has(name)) throw new GraphError(`name '${name}' is used twice in graph '${this.root.name}'`);
    names.add(name);
    return name;
  }

  /** Tensors of enclosing graphs that nodes of this graph (or of its subgraphs) read. */
  outerReads(): Set<Tensor> {
    const reads = new Set<Tensor>();
    for (const node of this.nodes)
      for (const t of node.reads) if (t.graph !== this && this.sees(t.graph)) reads.add(t);
    return reads;
  }

  /** @internal `base`, or `base_N` when taken. */
  uniqueName(base: string): string {
    const names = this.root.names;
    let name = base;
    for (let n = 1; names.has(name); n++) name = `${base}_${n}`;
    return name;
  }

  /** Declares a graph input. Dims may be numbers, symbolic names ('batch') or null (unknown). */
  input(name: string, dtype: DType, shape: Shape): Tensor {
    const t = new Tensor(this, this.claim(name), dtype, [...shape], null);
    this.inputs.push(t);
    return t;
  }

  /** A named initializer (weights baked into the model). */
  initializer(
    name: string,
    dtype: DType,
    dims: readonly number[],
    data: ArrayLike<number> | TensorData,
  ): Tensor {
    const root = this.root;
    const typed: TensorData = toTypedArray(dtype, data);
    const size = dims.reduce((a, b) => a * b, 1);
    if (typed.length !== size)
      throw new GraphError(`initializer '${name}': ${typed.length} values for shape ${formatShape(dims)}`);
    const value = isIntLike(dtype) && dims.length <= 1 ? Array.from(typed, Number) : undefined;
    const t = new Tensor(root, root.claim(name), dtype, [...dims], null, value);
    root.initializers.set(t, { dtype, dims: [...dims], data: typed });
    return t;
  }

  /** A constant (deduplicated when small). `constant(1, 'float32')` is a scalar. */
  constant(values: number | readonly number[] | TensorData, dtype: DType, dims?: readonly number[]): Tensor {
    const root = this.root;
    const list = typeof values === 'number' ? [values] : values;
    const shape = dims ?? (typeof values === 'number' ? [] : [list.length]);
    if (isIntLike(dtype)) {
      for (const v of Array.from(list as ArrayLike<number | bigint>, Number))
        if (!Number.isInteger(v)) throw new GraphError(`constant ${v} is not a valid ${dtype}`);
    }
    const small = list.length <= 64;
    const key = small
      ? `${dtype}${formatShape(shape)}${Array.from(list as ArrayLike<number>).join(',')}`
      : '';
    const cached = small ? root.constants.get(key) : undefined;
    if (cached) return cached;
    const t = root.initializer(`const_${root.nextId()}`, dtype, shape, list as ArrayLike<number>);
    if (small) root.constants.set(key, t);
    return t;
  }

  /** Marks `t` as a graph output named `name` (renaming the value, or through an Identity when it must). */
  output(t: Tensor, name?: string): Tensor {
    let out = t;
    const renamable = t.graph === this && t.producer !== null && !this.outputs.includes(t);
    if (!renamable) out = inGraph(this, () => identityOp().one([t]));
    if (out.graph !== this)
      throw new GraphError(`output ${name ?? t.name}: tensor belongs to graph '${t.graph.name}'`);
    if (name !== undefined) out.name = this.claim(name);
    this.outputs.push(out);
    return out;
  }

  /** The ONNX model (opset 20) of this root graph; nodes no output depends on are left out. */
  toModel(opts?: ModelOptions): ModelProto {
    return toModel(this, opts);
  }

  /** Encoded model bytes, ready for runtime.createSession. */
  toBytes(opts?: ModelOptions): Uint8Array {
    return toBytes(this, opts);
  }

  /** Writes a .onnx file with intermediate shapes (open it in Netron). */
  save(path: string): void {
    saveModel(this, path);
  }
}

const isIntLike = (dtype: DType) => dtype === 'int64' || dtype === 'int32';

// Identity is defined in ops/; looked up lazily to keep this module free of op definitions.
const identityOp = () => opByType('Identity');

// ---- ONNX encoding: Graph -> ModelProto, live nodes only (dead gradient branches are dropped), opset 20.

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
