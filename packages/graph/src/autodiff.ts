// Reverse-mode autodiff: a topological walk back from the loss calling each op's local rule (micrograd).
import { GradContext, GraphError, type Node, scope, type Tensor } from './graph.js';
import { add } from './ops/arith.js';
import { zerosLike } from './ops/shape.js';
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

  const nodes = ancestors(loss);
  // Active: depends on some wrt through differentiable input slots.
  const active = new Set<Tensor>(wrt);
  for (const node of nodes)
    if (diffReads(node).some((t) => active.has(t))) for (const o of node.outputs) active.add(o);
  // Needed: the loss depends on it through differentiable input slots.
  const needed = new Set<Tensor>([loss]);
  for (const node of [...nodes].reverse())
    if (node.outputs.some((o) => needed.has(o))) for (const t of diffReads(node)) needed.add(t);

  const grads = new Map<Tensor, Tensor>();
  grads.set(loss, seed ?? loss.graph.root.constant(1, loss.dtype));
  for (const node of [...nodes].reverse()) {
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
      const prev = grads.get(t);
      grads.set(t, prev ? scope(`grad/${node.name}`, () => add(prev, g)) : g);
    });
  }
  return wrt.map((w) => grads.get(w) ?? zerosLike(w));
}

/** Tensors a node reads through slots where a gradient can flow (outer reads of a Loop body included). */
function diffReads(node: Node): Tensor[] {
  const reads = node.inputs.filter((t, i): t is Tensor => t !== null && !node.op.nonDiff.includes(i));
  for (const g of node.subgraphs) reads.push(...g.outerReads());
  return reads;
}

/** The nodes `t` depends on, in topological order (node ids grow along every edge). */
function ancestors(t: Tensor): Node[] {
  const seen = new Set<Node>();
  const stack: Tensor[] = [t];
  while (stack.length > 0) {
    const producer = stack.pop()!.producer;
    if (!producer || seen.has(producer)) continue;
    seen.add(producer);
    stack.push(...producer.reads);
  }
  return [...seen].sort((a, b) => a.id - b.id);
}
