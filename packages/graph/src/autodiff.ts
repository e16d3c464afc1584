// Reverse-mode autodiff: a topological walk back from the loss calling each op's local rule (micrograd).
import { GradContext, GraphError, type Node, scope, type Tensor } from './graph.js';
import { type Segment, segmentOf } from './checkpoint.js';
import { add, cast, mul, stopGradient } from './ops/arith.js';
import { slice } from './ops/indexing.js';
import { reshape, zerosLike } from './ops/shape.js';
import { dimsCompatible } from './shape.js';
import { formatShape, isFloat } from './types.js';

/**
 * Gradients of a scalar `loss` with respect to `wrt`, as new nodes in the same graph. Parameters the loss
 * does not depend on get zeros. Fails at build time when the loss depends on a parameter through an op that
 * has no gradient (ArgMax, comparisons, TopK indices, float->int casts, Loop ...), naming the op.
 * `seed` replaces the implicit d(loss)/d(loss) = 1 (then `loss` may have any shape).
 */
export function grad(loss: Tensor, wrt: readonly Tensor[], seed?: Tensor): Tensor[] {
  if (!isFloat(loss.dtype)) throw new GraphError(`grad: loss ${loss} must be a float tensor`);
  if (!seed && loss.rank !== 0) throw new GraphError(`grad: loss ${loss} must be a scalar (or pass a seed)`);
  for (const w of wrt) if (!isFloat(w.dtype)) throw new GraphError(`grad: cannot differentiate w.r.t. ${w}`);
  const grads = backprop([[loss, seed ?? loss.graph.root.constant(1, loss.dtype)]], wrt);
  return wrt.map((w) => grads.get(w) ?? zerosLike(w));
}

/**
 * Gradients flowing back from `roots` (each a tensor and the gradient it receives) to every tensor on a path to
 * `wrt`; with `leaves`, the walk stops at the wrt tensors (a segment's boundary) instead of going through them.
 */
function backprop(
  roots: readonly (readonly [Tensor, Tensor])[],
  wrt: readonly Tensor[],
  leaves = false,
): Map<Tensor, Tensor> {
  const nodes = ancestors(
    roots.map(([t]) => t),
    new Set(leaves ? wrt : []),
  );
  // Active: depends on some wrt through differentiable input slots.
  const active = new Set<Tensor>(wrt);
  for (const node of nodes)
    if (diffReads(node).some((t) => active.has(t))) for (const o of node.outputs) active.add(o);
  // Needed: the roots depend on it through differentiable input slots.
  const needed = new Set<Tensor>(roots.map(([t]) => t));
  for (const node of [...nodes].reverse())
    if (node.outputs.some((o) => needed.has(o))) for (const t of diffReads(node)) needed.add(t);

  const grads = new Map<Tensor, Tensor>();
  const accumulate = (t: Tensor, g: Tensor, where: string) => {
    const prev = grads.get(t);
    grads.set(t, prev ? scope(where, () => add(prev, g)) : g);
  };
  for (const [t, g] of roots) accumulate(t, g, 'grad/roots');
  const recomputed = new Set<Node>();
  for (const node of [...nodes].reverse()) {
    if (recomputed.has(node)) continue;
    const segment = segmentOf(node);
    if (segment) {
      // The first marker met (the last made) sees every output's gradient: the segment is rebuilt once.
      if (recomputed.has(segment.markers[0])) continue;
      for (const m of segment.markers) recomputed.add(m);
      for (const n of segment.nodes) recomputed.add(n);
      for (const [t, g] of recompute(segment, grads, active)) accumulate(t, g, `grad/${node.name}`);
      continue;
    }
    const onPath = node.outputs.filter((o) => active.has(o) && needed.has(o));
    if (onPath.length === 0) continue;
    const ctx = new GradContext(
      node,
      node.outputs.map((o) => grads.get(o) ?? null),
      node.inputs.map((t, i) => !!t && !node.op.nonDiff.includes(i) && active.has(t) && isFloat(t.dtype)),
    );
    const broken = onPath.find((o) => !isFloat(o.dtype));
    if (broken)
      throw ctx.error(`is not differentiable: the loss depends on its ${broken.dtype} output ${broken.name}`);
    if (!node.op.grad || node.subgraphs.length > 0) throw ctx.error('has no gradient rule');
    if (ctx.grads.every((g) => g === null)) continue;
    let local: readonly (Tensor | null | undefined)[];
    try {
      const rule = node.op.grad;
      local = scope(`grad/${node.name}`, () => rule(ctx));
    } catch (error) {
      throw error instanceof GraphError ? error : ctx.error(`gradient rule failed: ${String(error)}`);
    }
    node.inputs.forEach((t, i) => {
      const g = local[i];
      if (!t || !g || !ctx.wants(i)) return;
      if (g.dtype !== t.dtype || g.rank !== t.rank || g.shape.some((d, j) => !dimsCompatible(d, t.shape[j])))
        throw ctx.error(`gradient rule returned ${g.dtype}${formatShape(g.shape)} for input ${i} ${t}`);
      accumulate(t, g, `grad/${node.name}`);
    });
  }
  return grads;
}

/**
 * A checkpointed segment's gradients w.r.t. its inputs and the outer tensors it reads: its forward rebuilt on
 * inputs + 0·(one element of an incoming gradient), so the copy runs only once the backward pass reaches it.
 */
function recompute(segment: Segment, grads: Map<Tensor, Tensor>, active: Set<Tensor>): [Tensor, Tensor][] {
  const marked = new Set(segment.markers.map((m) => m.inputs[0]!));
  for (const n of segment.nodes)
    for (const o of n.outputs)
      if (grads.has(o) && !marked.has(o))
        throw new GraphError(`checkpoint: ${o.name} is used outside its segment; return it from the segment`);
  const seeded = segment.markers.flatMap((m) => {
    const g = grads.get(m.outputs[0]);
    return g ? [[m.outputs[0], g] as const] : [];
  });
  if (seeded.length === 0) return [];
  return scope('recompute', () => {
    const first = seeded[0][1];
    const zero = mul(stopGradient(reshape(slice(reshape(first, [-1]), [0], [1]), [])), 0);
    const gated = segment.inputs.map((x) => (isFloat(x.dtype) ? add(x, cast(zero, x.dtype)) : x));
    const rebuilt = segment.build(gated);
    const roots = seeded.map(
      ([t, g]) => [rebuilt[segment.markers.findIndex((m) => m.outputs[0] === t)], g] as const,
    );
    const outer = [...segment.nodes]
      .flatMap((n) => n.reads)
      .filter((t) => isFloat(t.dtype) && active.has(t) && !segment.inputs.includes(t))
      .filter((t) => !(t.producer && segment.nodes.has(t.producer)));
    const inputs = segment.inputs.filter((x) => isFloat(x.dtype) && active.has(x));
    const reached = backprop(
      roots,
      [...gated.filter((_, i) => inputs.includes(segment.inputs[i])), ...outer],
      true,
    );
    const out: [Tensor, Tensor][] = [];
    segment.inputs.forEach((x, i) => {
      const g = inputs.includes(x) ? reached.get(gated[i]) : undefined;
      if (g) out.push([x, g]);
    });
    for (const t of new Set(outer)) {
      const g = reached.get(t);
      if (g) out.push([t, g]);
    }
    return out;
  });
}

/** Tensors a node reads through slots where a gradient can flow (outer reads of a Loop body included). */
function diffReads(node: Node): Tensor[] {
  const reads = node.inputs.filter((t, i): t is Tensor => t !== null && !node.op.nonDiff.includes(i));
  for (const g of node.subgraphs) reads.push(...g.outerReads());
  return reads;
}

/** The nodes the roots depend on (not through `leaves`), in topological order (node ids grow along every edge). */
function ancestors(roots: readonly Tensor[], leaves: ReadonlySet<Tensor>): Node[] {
  const seen = new Set<Node>();
  const stack: Tensor[] = [...roots];
  while (stack.length > 0) {
    const t = stack.pop()!;
    const producer = leaves.has(t) ? null : t.producer;
    if (!producer || seen.has(producer)) continue;
    seen.add(producer);
    stack.push(...producer.reads);
  }
  return [...seen].sort((a, b) => a.id - b.id);
}
