import Type, { type Static, type TSchema } from 'typebox';
import { type FieldError, pointer, schemaErrors } from './errors.js';

/** Size limits of one dataset row (characters of one text field, items of one list). */
export const MAX_TEXT_CHARS = 16_384;
export const MAX_MESSAGES = 256;
export const MAX_RANKED_RESPONSES = 16;

// No NUL: Postgres text cannot hold it, and samples of these texts are stored there.
const Text = (description: string) =>
  Type.String({ minLength: 1, maxLength: MAX_TEXT_CHARS, pattern: '^[^\\u0000]*$', description });

export const DatasetKind = Type.Enum(['sft', 'preference', 'ranked', 'prompt'], {
  description:
    'sft: demonstrations; preference: chosen/rejected pairs; ranked: K responses best→worst; prompt: prompts for PPO',
});
export type DatasetKind = Static<typeof DatasetKind>;

/** SFT demonstration as a prompt and the response to learn. */
export const SftPromptRow = Type.Object(
  { prompt: Text('text the model is given'), response: Text('text the model learns to write') },
  { additionalProperties: false },
);

export const ChatMessage = Type.Object(
  { role: Type.Enum(['system', 'user', 'assistant']), content: Text('message text') },
  { additionalProperties: false },
);
export type ChatMessage = Static<typeof ChatMessage>;

/** SFT demonstration as a conversation: the last message is the assistant turn to learn (packages/model chat template). */
export const SftChatRow = Type.Object(
  { messages: Type.Array(ChatMessage, { minItems: 1, maxItems: MAX_MESSAGES }) },
  { additionalProperties: false },
);

export const SftRow = Type.Union([SftPromptRow, SftChatRow]);
export type SftRow = Static<typeof SftRow>;

/** One human comparison: `chosen` is preferred over `rejected` (the K = 2 case of a ranked row). */
export const PreferenceRow = Type.Object(
  { prompt: Text('shared prompt'), chosen: Text('preferred response'), rejected: Text('worse response') },
  { additionalProperties: false },
);
export type PreferenceRow = Static<typeof PreferenceRow>;

/** K responses to one prompt ranked best → worst; yields all C(K,2) pairs (InstructGPT §3.5). */
export const RankedRow = Type.Object(
  {
    prompt: Text('shared prompt'),
    responses: Type.Array(Text('a response'), {
      minItems: 2,
      maxItems: MAX_RANKED_RESPONSES,
      uniqueItems: true,
      description: 'best → worst; ties (duplicates) are not allowed',
    }),
  },
  { additionalProperties: false },
);
export type RankedRow = Static<typeof RankedRow>;

/** A prompt the PPO policy answers during rollouts. */
export const PromptRow = Type.Object({ prompt: Text('prompt to answer') }, { additionalProperties: false });
export type PromptRow = Static<typeof PromptRow>;

export const DatasetRowSchemas = {
  sft: SftRow,
  preference: PreferenceRow,
  ranked: RankedRow,
  prompt: PromptRow,
} as const satisfies Record<DatasetKind, TSchema>;

/** The row type of each dataset kind. */
export interface DatasetRows {
  sft: SftRow;
  preference: PreferenceRow;
  ranked: RankedRow;
  prompt: PromptRow;
}

export const DATASET_KINDS: readonly DatasetKind[] = ['sft', 'preference', 'ranked', 'prompt'];

/** Checks one parsed row; `[]` when valid. Paths are JSON Pointers into the row. */
export function datasetRowErrors(kind: DatasetKind, row: unknown): FieldError[] {
  switch (kind) {
    case 'sft':
      return sftRowErrors(row);
    case 'preference': {
      const errors = schemaErrors(PreferenceRow, row);
      if (errors.length === 0 && (row as PreferenceRow).chosen === (row as PreferenceRow).rejected) {
        errors.push({ path: '/rejected', message: 'same text as chosen (ties are not allowed)' });
      }
      return errors;
    }
    case 'ranked':
      // A duplicate response is a tie: the ranking would claim one text is better than itself.
      return schemaErrors(RankedRow, row).map((e) =>
        /^\/responses\/\d+$/.test(e.path) && e.message === 'duplicate of an earlier item'
          ? { path: e.path, message: 'duplicate response (ties are not allowed)' }
          : e,
      );
    case 'prompt':
      return schemaErrors(PromptRow, row);
  }
}

// The two SFT shapes are told apart by their keys, so errors describe the shape the row meant.
function sftRowErrors(row: unknown): FieldError[] {
  const chat = isObject(row) && 'messages' in row;
  const errors = schemaErrors(chat ? SftChatRow : SftPromptRow, row);
  if (errors.length > 0 || !chat) return errors;
  const messages = (row as Static<typeof SftChatRow>).messages;
  messages.forEach((m, i) => {
    if (m.role === 'system' && i !== 0) {
      errors.push({
        path: pointer(pointer('/messages', i), 'role'),
        message: 'a system message may only come first',
      });
    }
  });
  if (messages[messages.length - 1].role !== 'assistant') {
    errors.push({
      path: pointer('/messages', messages.length - 1),
      message: 'the last message must be the assistant turn to learn',
    });
  }
  return errors;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
