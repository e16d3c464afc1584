// A judge language model as a pairwise judge: the judge template is filled with the prompt and both responses,
// rendered as a user turn of the chat template, and the verdict is read from the log-probabilities of the two
// answer strings ("A" / "B") as the assistant's reply, not from free text (cf. Zheng et al. 2023 §3.1).
import {
  ByteTokenizer,
  chatPrompt,
  createScorer,
  type ModelChatTemplate,
  type Tokenizer,
  templateGenerationPrompt,
} from '@rlhf/model';
import type { Runtime } from '@rlhf/runtime';
import { type ModelWeights, promptTokens } from '@rlhf/stage-kit';
import type { JudgeRequest, PairwiseJudge } from './position-bias.js';

/** MT-Bench's pairwise layout, shortened, asking for a one-letter answer. */
export const DEFAULT_JUDGE_TEMPLATE =
  "[User Question]\n{prompt}\n\n[The Start of Assistant A's Answer]\n{first}\n[The End of Assistant A's Answer]\n\n" +
  "[The Start of Assistant B's Answer]\n{second}\n[The End of Assistant B's Answer]\n\n" +
  'Which answer is better? Reply with A or B only.';

export interface LanguageModelJudgeOptions {
  runtime: Runtime;
  /** The judge: a language model (no scalar head). */
  model: ModelWeights;
  tokenizer?: Tokenizer;
  /** With {prompt}, {first}, {second} (default DEFAULT_JUDGE_TEMPLATE). */
  template?: string;
  /** Render the filled template as a user turn of the chat template (default true). */
  chat?: boolean;
  /** The judge model's own chat template (packages/model modelChatTemplate); default: the built-in format. */
  chatTemplate?: ModelChatTemplate;
  /** The answers that mean "first is better" and "second is better" (default ['A', 'B']). */
  answers?: readonly [string, string];
  /** Requests per scoring call (default 32; two rows each). */
  batchSize?: number;
}

export interface LanguageModelJudge {
  judge: PairwiseJudge;
  release(): Promise<void>;
}

/**
 * Fills {prompt}, {first} and {second} in one pass, so a response containing "{second}" stays as written; with
 * `chat`, as a user turn with the generation prompt of `chatTemplate` (default: the built-in format).
 */
export function renderJudgePrompt(
  template: string,
  request: JudgeRequest,
  chat: boolean,
  chatTemplate?: ModelChatTemplate,
): string {
  const values: Record<string, string> = {
    prompt: request.prompt,
    first: request.first,
    second: request.second,
  };
  const filled = template.replace(/\{(prompt|first|second)\}/g, (_, key: string) => values[key]);
  if (!chat) return filled;
  const turns = [{ role: 'user', content: filled }];
  return chatTemplate ? templateGenerationPrompt(chatTemplate, turns) : chatPrompt(turns);
}

/** P(first better) from the two answers' log-probs, renormalised over the two: e^a / (e^a + e^b) = σ(a − b). */
export function twoAnswerPreference(logpFirst: number, logpSecond: number): number {
  return 1 / (1 + Math.exp(logpSecond - logpFirst));
}

/** Creates the judge's scoring session once; the judge answers batches of requests. */
export async function createLanguageModelJudge(
  options: LanguageModelJudgeOptions,
): Promise<LanguageModelJudge> {
  const { runtime, model } = options;
  if (model.config.scalarHead) throw new RangeError('languageModelJudge: the judge must be a language model');
  const tokenizer = options.tokenizer ?? new ByteTokenizer();
  const template = options.template ?? DEFAULT_JUDGE_TEMPLATE;
  const chat = options.chat ?? true;
  const batchSize = options.batchSize ?? 32;
  const [first, second] = (options.answers ?? ['A', 'B']).map((answer) => tokenizer.encode(answer));
  if (first.length === 0 || second.length === 0)
    throw new RangeError('languageModelJudge: an answer is empty');
  const width = Math.max(first.length, second.length);
  const maxPromptLen = model.config.maxPositions - width;
  if (maxPromptLen < 2) throw new RangeError('languageModelJudge: the answers fill the judge’s context');
  const pad = (row: readonly number[]) => [
    ...row,
    ...new Array<number>(width - row.length).fill(tokenizer.padId),
  ];
  const mask = (row: readonly number[]) => [
    ...row.map(() => 1),
    ...new Array<number>(width - row.length).fill(0),
  ];
  const scorer = await createScorer(runtime, model.config, { outputs: ['logprobs'] });

  const judge: PairwiseJudge = async (requests) => {
    const out: number[] = [];
    for (let start = 0; start < requests.length; start += batchSize) {
      const batch = requests.slice(start, start + batchSize);
      // Long judge prompts keep their end (the question asked and the assistant marker), as sampling stages do.
      const prompts = batch.map((r) =>
        promptTokens(tokenizer, renderJudgePrompt(template, r, chat, options.chatTemplate), maxPromptLen),
      );
      const { logprobs } = await scorer.score({
        params: model.params,
        prompts: prompts.flatMap((p) => [p, p]),
        padId: tokenizer.padId,
        responses: batch.flatMap(() => [pad(first), pad(second)]),
        responseMask: batch.flatMap(() => [mask(first), mask(second)]),
      });
      const sequence = (row: number, length: number) =>
        logprobs![row].slice(0, length).reduce((s, x) => s + x, 0);
      batch.forEach((_, k) => {
        out.push(twoAnswerPreference(sequence(2 * k, first.length), sequence(2 * k + 1, second.length)));
      });
    }
    return out;
  };
  return { judge, release: () => scorer.release() };
}
