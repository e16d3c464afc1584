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

/** A turn of an SFT conversation: an assistant turn may carry OpenAI's `weight` (0 = context only, not trained). */
export const SftChatMessage = Type.Object(
  {
    ...ChatMessage.properties,
    weight: Type.Optional(
      Type.Union([Type.Literal(0), Type.Literal(1)], {
        description: 'assistant turns only: 1 (default) = trained, 0 = kept as context, not trained',
      }),
    ),
  },
  { additionalProperties: false },
);

/** SFT demonstration as a conversation ending in an assistant turn to learn (packages/model chat template). */
export const SftChatRow = Type.Object(
  { messages: Type.Array(SftChatMessage, { minItems: 1, maxItems: MAX_MESSAGES }) },
  { additionalProperties: false },
);

export const SftRow = Type.Union([SftPromptRow, SftChatRow]);
export type SftRow = Static<typeof SftRow>;

/**
 * The shared prompt of a preference or ranked row: text, or a conversation ending in the user turn the responses
 * answer (TRL's conversational prompt), rendered with the model's chat template or the built-in one.
 */
const PromptText = Text('shared prompt');
const PromptConversation = Type.Array(ChatMessage, {
  minItems: 1,
  maxItems: MAX_MESSAGES,
  description: 'shared prompt as a conversation ending in a user turn',
});
const RankedPrompt = Type.Union([PromptText, PromptConversation]);

/** One human comparison: `chosen` is preferred over `rejected` (the K = 2 case of a ranked row). */
export const PreferenceRow = Type.Object(
  { prompt: RankedPrompt, chosen: Text('preferred response'), rejected: Text('worse response') },
  { additionalProperties: false },
);
export type PreferenceRow = Static<typeof PreferenceRow>;
/** A preference row with a text prompt. */
export type PreferenceTextRow = PreferenceRow & { prompt: string };

/** K responses to one prompt ranked best → worst; yields all C(K,2) pairs (InstructGPT §3.5). */
export const RankedRow = Type.Object(
  {
    prompt: RankedPrompt,
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
/** A ranked row with a text prompt. */
export type RankedTextRow = RankedRow & { prompt: string };

/** Reference fields of a prompt row (for graders): at most this many, this many characters as JSON. */
export const MAX_PROMPT_FIELDS = 32;
export const MAX_PROMPT_FIELDS_CHARS = 16_384;
export const MAX_PROMPT_FIELD_DEPTH = 32;

/** A reference field of a prompt row: any JSON value. */
export type PromptFieldValue =
  | string
  | number
  | boolean
  | null
  | PromptFieldValue[]
  | { [key: string]: PromptFieldValue };

const ReferenceFields = {
  additionalProperties: Type.Unknown({ description: 'a reference field for graders: any JSON value' }),
} as const;
/** A prompt the policy answers during rollouts, as text, with optional reference fields for graders. */
export const PromptTextRow = Type.Object({ prompt: Text('prompt to answer') }, ReferenceFields);
/** A prompt as a conversation ending in a user turn (packages/model chat template), with optional reference fields. */
export const PromptChatRow = Type.Object(
  { messages: Type.Array(ChatMessage, { minItems: 1, maxItems: MAX_MESSAGES }) },
  ReferenceFields,
);
export const PromptRow = Type.Union([PromptTextRow, PromptChatRow]);
export interface PromptTextRow {
  prompt: string;
  [field: string]: PromptFieldValue;
}
export interface PromptChatRow {
  messages: ChatMessage[];
  [field: string]: PromptFieldValue;
}
/** `{ prompt, ...fields }` or `{ messages, ...fields }`; the fields are JSON values graders refer to by name. */
export type PromptRow = PromptTextRow | PromptChatRow;

/** Whether a prompt row is a conversation (`messages`) rather than text (`prompt`). */
export const isPromptChatRow = (row: PromptRow): row is PromptChatRow => 'messages' in row;

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
      const errors = schemaErrors(byPromptForm('preference', row), row);
      if (errors.length === 0 && (row as PreferenceRow).chosen === (row as PreferenceRow).rejected) {
        errors.push({ path: '/rejected', message: 'same text as chosen (ties are not allowed)' });
      }
      return errors.length > 0 ? errors : conversationPromptErrors((row as PreferenceRow).prompt);
    }
    case 'ranked': {
      // A duplicate response is a tie: the ranking would claim one text is better than itself.
      const errors = schemaErrors(byPromptForm('ranked', row), row).map((e) =>
        /^\/responses\/\d+$/.test(e.path) && e.message === 'duplicate of an earlier item'
          ? { path: e.path, message: 'duplicate response (ties are not allowed)' }
          : e,
      );
      return errors.length > 0 ? errors : conversationPromptErrors((row as RankedRow).prompt);
    }
    case 'prompt':
      return promptRowErrors(row);
  }
}

const FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OTHER_KINDS_FIELDS = new Set(['response', 'chosen', 'rejected', 'responses']);

// The two prompt shapes are told apart by their keys, like SFT rows; extra keys are reference fields.
function promptRowErrors(row: unknown): FieldError[] {
  if (!isObject(row)) return [{ path: '', message: 'must be an object' }];
  const chat = 'messages' in row;
  if (chat && 'prompt' in row)
    return [{ path: '/prompt', message: 'a row has either prompt or messages, not both' }];
  const errors = schemaErrors(chat ? PromptChatRow : PromptTextRow, row);
  if (errors.length > 0) return errors;
  const fields = Object.keys(row).filter((key) => key !== (chat ? 'messages' : 'prompt'));
  if (fields.length > MAX_PROMPT_FIELDS)
    errors.push({ path: '', message: `at most ${MAX_PROMPT_FIELDS} reference fields besides the prompt` });
  // Another kind's fields are a kind mix-up (an SFT file uploaded as prompts), not reference fields.
  for (const key of fields)
    if (OTHER_KINDS_FIELDS.has(key))
      errors.push({
        path: pointer('', key),
        message: `unknown field (${key} belongs to another dataset kind; name a reference field otherwise, e.g. answer)`,
      });
  for (const key of fields)
    if (!FIELD.test(key) || key.length > 64 || key === '__proto__')
      errors.push({
        path: pointer('', key),
        message: 'a field name is a letter or _ then letters, digits or _ (at most 64)',
      });
  // Depth first: JSON.stringify overflows the stack on values nested thousands deep.
  const deep = fields.filter((key) => nestingDepth(row[key]) > MAX_PROMPT_FIELD_DEPTH);
  for (const key of deep)
    errors.push({
      path: pointer('', key),
      message: `nests more than ${MAX_PROMPT_FIELD_DEPTH} levels of arrays and objects`,
    });
  if (deep.length > 0) return errors;
  const size = fields.reduce((sum, key) => sum + key.length + JSON.stringify(row[key]).length, 0);
  if (size > MAX_PROMPT_FIELDS_CHARS)
    errors.push({
      path: '',
      message: `the reference fields take more than ${MAX_PROMPT_FIELDS_CHARS} characters as JSON`,
    });
  // No NUL: Postgres text cannot hold it, and samples carry these values.
  for (const key of fields)
    if (hasNul(row[key]))
      errors.push({ path: pointer('', key), message: 'must not contain a NUL character' });
  if (!chat) return errors;
  return [...errors, ...userLastErrors((row as PromptChatRow).messages, '/messages', 'the policy answers')];
}

// Preference / ranked rows checked against the schema of their prompt's form (text or conversation), so errors
// describe the form the row meant rather than both; built once (schemas are compiled on first use).
const withPrompt = (schema: typeof PreferenceRow | typeof RankedRow, prompt: TSchema) =>
  Type.Object({ ...schema.properties, prompt }, { additionalProperties: false });
const PROMPT_FORMS = {
  preference: {
    text: withPrompt(PreferenceRow, PromptText),
    chat: withPrompt(PreferenceRow, PromptConversation),
  },
  ranked: { text: withPrompt(RankedRow, PromptText), chat: withPrompt(RankedRow, PromptConversation) },
};
function byPromptForm(kind: 'preference' | 'ranked', row: unknown): TSchema {
  return PROMPT_FORMS[kind][isObject(row) && Array.isArray(row.prompt) ? 'chat' : 'text'];
}

// A preference / ranked row's conversation prompt: the turns the responses answer, so it ends with the user's.
function conversationPromptErrors(prompt: string | ChatMessage[]): FieldError[] {
  return typeof prompt === 'string' ? [] : userLastErrors(prompt, '/prompt', 'the responses answer');
}

// A conversation to answer (at `path` in the row): a system message only first, the user's turn last.
function userLastErrors(messages: ChatMessage[], path: string, answered: string): FieldError[] {
  const errors = systemFirstErrors(messages, path);
  if (messages[messages.length - 1].role !== 'user')
    errors.push({
      path: pointer(pointer(path, messages.length - 1), 'role'),
      message: `the last message must be the user turn ${answered}`,
    });
  return errors;
}

function systemFirstErrors(messages: readonly { role: string }[], path: string): FieldError[] {
  return messages.flatMap((m, i) =>
    m.role === 'system' && i !== 0
      ? [{ path: pointer(pointer(path, i), 'role'), message: 'a system message may only come first' }]
      : [],
  );
}

// The two SFT shapes are told apart by their keys, so errors describe the shape the row meant.
function sftRowErrors(row: unknown): FieldError[] {
  const chat = isObject(row) && 'messages' in row;
  const errors = schemaErrors(chat ? SftChatRow : SftPromptRow, row);
  if (errors.length > 0 || !chat) return errors;
  const messages = (row as Static<typeof SftChatRow>).messages;
  errors.push(...systemFirstErrors(messages, '/messages'));
  messages.forEach((m, i) => {
    if (m.weight !== undefined && m.role !== 'assistant')
      errors.push({
        path: pointer(pointer('/messages', i), 'weight'),
        message: 'only assistant turns have a weight',
      });
  });
  const last = messages[messages.length - 1];
  if (last.role !== 'assistant') {
    errors.push({
      path: pointer('/messages', messages.length - 1),
      message: 'the last message must be the assistant turn to learn',
    });
  } else if (last.weight === 0) {
    errors.push({
      path: pointer(pointer('/messages', messages.length - 1), 'weight'),
      message: 'the last assistant turn is the one to learn: its weight cannot be 0',
    });
  }
  return errors;
}

/** How deep a JSON value nests (0 for a scalar), counted without recursion; stops past MAX_PROMPT_FIELD_DEPTH. */
function nestingDepth(value: unknown): number {
  let deepest = 0;
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0 && deepest <= MAX_PROMPT_FIELD_DEPTH) {
    const [node, depth] = pending.pop() as [unknown, number];
    if (typeof node !== 'object' || node === null) continue;
    deepest = Math.max(deepest, depth + 1);
    for (const child of Object.values(node)) pending.push([child, depth + 1]);
  }
  return deepest;
}

// Iterative: a field may nest thousands of levels deep within its size limit.
function hasNul(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const node = pending.pop();
    if (typeof node === 'string') {
      if (node.includes('\u0000')) return true;
    } else if (Array.isArray(node)) pending.push(...node);
    else if (isObject(node))
      for (const [k, v] of Object.entries(node)) {
        if (k.includes('\u0000')) return true;
        pending.push(v);
      }
  }
  return false;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
