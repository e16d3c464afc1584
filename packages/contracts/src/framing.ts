// How a stage that reads a dataset turns its rows into token sequences: which chat template renders `messages`,
// and whether bos / eos frame each sequence. Every field is optional; absent fields follow the model's tokenizer
// and template as transformers' apply_chat_template and TRL's trainers do. A leaf module: configs.ts builds on it.
import Type, { type Static } from 'typebox';

export const FramingConfig = Type.Object(
  {
    chatTemplate: Type.Optional(
      Type.Enum(['model', 'builtin'], {
        description:
          "how `messages` rows become text: 'model' = the model's own Jinja chat_template (an error when it has none), " +
          "'builtin' = the `<|role|>` format of the presets; absent = the model's when it has one, else the built-in",
      }),
    ),
    addBos: Type.Optional(
      Type.Boolean({
        description:
          "start every sequence with the tokenizer's bos token; absent = when the tokenizer adds one itself " +
          '(Llama-style yes, GPT-2/Qwen-style no), and never on top of a model chat template (which writes its own)',
      }),
    ),
    addEos: Type.Optional(
      Type.Boolean({
        description:
          "end every response with the tokenizer's eos token (trained); absent = yes, except for rows rendered by " +
          "a model chat template, which ends each assistant turn itself (e.g. ChatML's <|im_end|>)",
      }),
    ),
  },
  {
    additionalProperties: false,
    description: "the rows' framing (absent = the model tokenizer's and chat template's own)",
  },
);
export type FramingConfig = Static<typeof FramingConfig>;

/** The `framing` field of the stage configs that read datasets. */
export const framingField = { framing: Type.Optional(FramingConfig) };
