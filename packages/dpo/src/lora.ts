// The ranking trainer's sequence log-probs with a LoRA adapter: the LoRA scoring graph over one copy of the base
// (packages/model lora-graph) with one side only, the policy (adapter on) or the reference (the bare base, the
// adapter off): each call needs one, so the other is not computed. With LoRA the frozen base *is* the reference
// model: no second model is loaded or fed.
import { createLoraScorer, type LoraScoreSide, type LoraSettings, type Scorer } from '@rlhf/model';
import type { Runtime, Weights } from '@rlhf/runtime';
import { type ModelWeights, type RankedExample, scoreRankings } from '@rlhf/stage-kit';

/** Sequence log-prob (sum over response tokens) and token count of every response of every ranking. */
export interface SequenceLogps {
  sums: number[][];
  tokens: number[][];
}

/**
 * log π(response | prompt) summed per response, from the LoRA scoring graph: `adapter` on `base` for the policy,
 * the base alone for the reference (the adapter's values are not fed).
 */
export async function loraSequenceLogps(
  runtime: Runtime,
  base: ModelWeights,
  settings: LoraSettings,
  adapter: Weights,
  examples: readonly RankedExample[],
  padId: number,
  side: LoraScoreSide,
): Promise<SequenceLogps> {
  const lora = await createLoraScorer(runtime, base.config, settings, 'float32', [side]);
  // scoreRankings' batching, with the adapter as the request's params.
  const scorer: Scorer = {
    async score(request) {
      const out = await lora.score({ ...request, base: base.params, adapter: request.params });
      return { logprobs: side === 'policy' ? out.logprobs : out.refLogprobs };
    },
    release: () => lora.release(),
  };
  try {
    const sums = await scoreRankings(scorer, adapter, examples, padId, (out, row, response) =>
      out.logprobs![row].slice(0, response.length).reduce((a, x) => a + x, 0),
    );
    return { sums, tokens: examples.map((e) => e.responses.map((r) => r.length)) };
  } finally {
    await scorer.release();
  }
}
