// A stage's framing of dataset rows (@rlhf/contracts FramingConfig) resolved against the run's tokenizer: the
// model's own chat template when it has one (else the built-in `<|role|>` format), and bos / eos as the tokenizer
// and template frame sequences. Text rows get [bos if the tokenizer adds one] + prompt + response + [eos]; rows
// rendered by a model template get the template's text alone (as apply_chat_template tokenizes it: the template
// writes bos and each turn's end itself), unless the run sets addBos / addEos.
import type { ChatMessage, FramingConfig } from '@rlhf/contracts';
import {
  ChatTemplateError,
  chatPromptResponse,
  type ModelChatTemplate,
  modelChatTemplate,
  templateTrainingSpans,
  type Tokenizer,
} from '@rlhf/model';

/** Whether a bos starts and an eos ends a framed sequence. */
export interface Ends {
  bos: boolean;
  eos: boolean;
}

export interface Framing {
  tokenizer: Tokenizer;
  /** The model's own chat template; null = the built-in format (packages/model chat.ts). */
  chatTemplate: ModelChatTemplate | null;
  /** Ends of text rows and of rows in the built-in format. */
  text: Ends;
  /** Ends of rows rendered by the model's chat template. */
  templated: Ends;
}

/** The ends a tokenizer gives text rows when a run sets nothing: bos when it adds one, eos always. */
export const textEndsOf = (tokenizer: Tokenizer): Ends => ({ bos: tokenizer.addsBos ?? true, eos: true });

/** Resolves a stage's `framing` against its tokenizer; 'model' without a template is an error naming the field. */
export function framingOf(tokenizer: Tokenizer, config: FramingConfig = {}, field = 'framing'): Framing {
  const own = config.chatTemplate === 'builtin' ? undefined : modelChatTemplate(tokenizer);
  if (config.chatTemplate === 'model' && own === undefined)
    throw new ChatTemplateError(
      `${field}.chatTemplate: 'model', but the model's tokenizer has no chat template of its own`,
    );
  const text = textEndsOf(tokenizer);
  return {
    tokenizer,
    chatTemplate: own ?? null,
    text: { bos: config.addBos ?? text.bos, eos: config.addEos ?? text.eos },
    templated: { bos: config.addBos ?? false, eos: config.addEos ?? false },
  };
}

/**
 * A conversation as token ids with a loss mask over them (1 = trained): with the model's template, every assistant
 * turn (templateTrainingSpans; each span tokenized on its own, so the mask follows the text exactly); with the
 * built-in format, the last assistant turn (earlier ones are prompt, as before templates). A trained eos when the
 * framing adds one. `completionOnly` false trains every token.
 */
export function conversationTokens(
  framing: Framing,
  messages: readonly ChatMessage[],
  completionOnly: boolean,
  field = 'messages',
): { ids: number[]; mask: number[] } {
  const { tokenizer, chatTemplate } = framing;
  const spans = chatTemplate
    ? templateTrainingSpans(chatTemplate, messages, field)
    : (() => {
        const { prompt, response } = chatPromptResponse(messages, field);
        return [
          { text: prompt, trained: false },
          { text: response, trained: true },
        ];
      })();
  const ends = chatTemplate ? framing.templated : framing.text;
  const ids: number[] = ends.bos ? [tokenizer.bosId] : [];
  const mask: number[] = ends.bos ? [0] : [];
  for (const span of spans) {
    const tokens = tokenizer.encode(span.text);
    ids.push(...tokens);
    for (const _ of tokens) mask.push(span.trained || !completionOnly ? 1 : 0);
  }
  if (ends.eos) {
    ids.push(tokenizer.eosId);
    mask.push(1);
  }
  return { ids, mask };
}
