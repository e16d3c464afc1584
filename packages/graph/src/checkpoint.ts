// Activation recomputation (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"): a segment keeps
// only its inputs for the backward pass; autodiff rebuilds its forward there, gated on the incoming gradient so
// that ONNX Runtime can neither run the copy early nor merge it with the original (autodiff.ts).
import { currentGraph, defineOp, GraphError, type Node, type Tensor } from './graph.js';

/** One recomputed segment: its inputs, the builder, the nodes it made and the markers on its outputs. */
export interface Segment {
  readonly inputs: readonly Tensor[];
  readonly build: (inputs: readonly Tensor[]) => readonly Tensor[];
  readonly nodes: ReadonlySet<Node>;
  /** Identity markers on the segment's outputs, in creation order. */
  readonly markers: readonly Node[];
}

const segments = new WeakMap<Node, Segment>();

/** The segment whose output this node marks, if any. */
export const segmentOf = (node: Node): Segment | undefined => segments.get(node);

// An Identity for ONNX (ORT removes it); for autodiff the point where a segment's gradient is rebuilt.
const CheckpointOutput = defineOp({
  type: 'Identity',
  name: 'CheckpointOutput',
  infer: (ctx) => [{ dtype: ctx.input(0).dtype, shape: ctx.input(0).shape }],
});

// Ops whose recomputation would not reproduce the forward (fresh random draws) or that autodiff cannot rebuild.
const NOT_RECOMPUTABLE = new Set(['RandomUniformLike', 'RandomNormalLike', 'Multinomial', 'Loop']);

/**
 * `build(inputs)`, with its activations recomputed in the backward pass instead of kept: memory of one segment
 * instead of all, for one extra forward. `build` must be a pure function of `inputs` and outer tensors that do
 * not depend on anything it makes; its only outputs are what it returns.
 */
export function checkpoint(
  inputs: readonly Tensor[],
  build: (inputs: readonly Tensor[]) => readonly Tensor[],
): Tensor[] {
  const graph = currentGraph() ?? inputs[0]?.graph;
  if (!graph) throw new GraphError('checkpoint: needs at least one input or a graph being built');
  const before = graph.nodes.length;
  const outputs = build(inputs);
  const nodes = new Set(graph.nodes.slice(before));
  for (const node of nodes) {
    if (NOT_RECOMPUTABLE.has(node.op.name) || node.subgraphs.length > 0)
      throw new GraphError(
        `checkpoint: node ${node.name} (${node.op.name}) cannot be recomputed identically`,
      );
    if (segments.has(node)) throw new GraphError('checkpoint: segments cannot be nested');
  }
  const marked = outputs.map((t) => CheckpointOutput.one([t]));
  const segment: Segment = { inputs, build, nodes, markers: marked.map((t) => t.producer!) };
  for (const marker of segment.markers) segments.set(marker, segment);
  return marked;
}
