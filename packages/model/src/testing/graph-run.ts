// What the model's forward tests share: a graph run once on a fresh session, and the largest elementwise gap.
import type { Graph } from '@rlhf/graph';
import type { HostTensor, Runtime } from '@rlhf/runtime';

/** The graph's outputs for these feeds; the session is released before it returns. */
export async function runOnce(
  runtime: Runtime,
  graph: Graph,
  feeds: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const session = await runtime.createSession(graph.toBytes());
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** max |a[i] − b[i]| of two arrays of one length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} and ${b.length} differ`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
