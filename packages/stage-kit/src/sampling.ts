// Sampling stages (RAFT, GRPO) share this: n responses to each prompt from the generation graph, laid out as
// the padded batch the scoring graph takes.
import type { Generator, GenerateResult, Tokenizer } from '@rlhf/model';

export interface SampledGroups {
  /** Each prompt repeated n times: row r answers prompt ⌊r / n⌋. */
  prompts: number[][];
  /** The response tokens of each row (EOS included when generated), unpadded. */
  tokens: number[][];
  /** The rows as a scoring request takes them: prompts, padId, right-padded responses and their mask. */
  scored: { prompts: number[][]; padId: number; responses: number[][]; responseMask: number[][] };
  generated: GenerateResult;
}

export interface SampleGroupsRequest {
  params: ReadonlyMap<string, Float32Array>;
  prompts: readonly (readonly number[])[];
  n: number;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  tokenizer: Tokenizer;
}

export async function sampleGroups(
  generator: Generator,
  request: SampleGroupsRequest,
): Promise<SampledGroups> {
  const { tokenizer, n } = request;
  const prompts = request.prompts.flatMap((p) => Array.from({ length: n }, () => [...p]));
  const generated = await generator.generate({
    params: request.params,
    prompts,
    maxNewTokens: request.maxNewTokens,
    temperature: request.temperature,
    topK: request.topK ?? 0,
    topP: request.topP ?? 1,
    seed: request.seed,
    eosId: tokenizer.eosId,
    padId: tokenizer.padId,
  });
  const tokens = generated.tokens.map((row, r) => row.filter((_, t) => generated.mask[r][t]));
  let width = 0;
  for (const row of tokens) width = Math.max(width, row.length);
  const pad = (row: readonly number[], value: number) => [
    ...row,
    ...new Array<number>(width - row.length).fill(value),
  ];
  return {
    prompts,
    tokens,
    scored: {
      prompts,
      padId: tokenizer.padId,
      responses: tokens.map((row) => pad(row, tokenizer.padId)),
      responseMask: tokens.map((row) =>
        pad(
          row.map(() => 1),
          0,
        ),
      ),
    },
    generated,
  };
}
