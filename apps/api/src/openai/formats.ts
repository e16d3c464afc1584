// OpenAI's fine-tuning JSONL formats, converted line by line to our dataset rows; the rows are then checked by
// our own validators (@rlhf/contracts datasetRowErrors), so there is one validator per dataset kind.
//   supervised:    { messages: [{ role, content, weight? }, ...] }                → sft rows { messages }
//   dpo:           { input: { messages }, preferred_output: [{ role: 'assistant', content }],
//                    non_preferred_output: [...] }                → preference rows { prompt: turns, ... }
//   reinforcement: { messages, ...reference fields }                              → prompt rows (unchanged)
import { type DatasetKind, datasetRowErrors, type FieldError, formatFieldError } from '@rlhf/contracts';
import { ChatTemplateError, validateMessages } from '@rlhf/model';

export type FileFormat = 'supervised' | 'dpo' | 'reinforcement';

/** The dataset kind each format becomes. */
export const FORMAT_KINDS: Readonly<Record<FileFormat, DatasetKind>> = {
  supervised: 'sft',
  dpo: 'preference',
  reinforcement: 'prompt',
};

/** A line that is not a valid row of its format: 1-based line number and the field (OpenAI's `param`). */
export class FormatError extends Error {
  override name = 'FormatError';
  constructor(
    readonly line: number,
    readonly field: string,
    message: string,
  ) {
    super(`line ${line}: ${field ? `${field}: ` : ''}${message}`);
  }
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The format a row is written in, from its keys. */
export function formatOf(row: Json): FileFormat {
  if ('input' in row || 'preferred_output' in row || 'non_preferred_output' in row) return 'dpo';
  const extra = Object.keys(row).filter((key) => !['messages', 'tools', 'parallel_tool_calls'].includes(key));
  const last = Array.isArray(row.messages) ? (row.messages.at(-1) as Json | undefined) : undefined;
  return extra.length > 0 || last?.role !== 'assistant' ? 'reinforcement' : 'supervised';
}

// Supervised: one sft row per assistant turn with weight 1 (the default), the conversation up to it as context with
// its earlier assistant turns at weight 0 (each turn trained once, whether the stage's template trains every turn or
// only the last).
function supervisedRows(row: Json): unknown[] {
  if (!Array.isArray(row.messages)) throw new Error('messages: expected an array');
  if (row.tools !== undefined) throw new Error('tools: function calling is not supported');
  const messages = row.messages.map((m, i) => {
    if (!isObject(m)) throw new Error(`messages/${i}: expected an object`);
    const { weight, ...message } = m;
    if (weight !== undefined && weight !== 0 && weight !== 1)
      throw new Error(`messages/${i}/weight: must be 0 or 1`);
    if (weight !== undefined && message.role !== 'assistant')
      throw new Error(`messages/${i}/weight: only assistant messages have a weight`);
    return { message, trained: message.role === 'assistant' && weight !== 0 };
  });
  const rows = messages.flatMap((m, i) =>
    m.trained
      ? [
          {
            messages: messages
              .slice(0, i + 1)
              .map((x, j) =>
                x.message.role === 'assistant' && j < i ? { ...x.message, weight: 0 } : x.message,
              ),
          },
        ]
      : [],
  );
  if (rows.length === 0) throw new Error('messages: no assistant message to learn (all have weight 0)');
  return rows;
}

// One assistant message of a DPO output.
function outputText(value: unknown, field: string): string {
  if (!Array.isArray(value) || value.length !== 1 || !isObject(value[0]))
    throw new Error(`${field}: expected one assistant message`);
  const { role, content } = value[0];
  if (role !== 'assistant') throw new Error(`${field}/0/role: must be "assistant"`);
  if (typeof content !== 'string') throw new Error(`${field}/0/content: expected a string`);
  return content;
}

// DPO: the input conversation kept as turns (a conversational preference prompt), so the stage renders it with
// the model's own chat template (or the built-in format) as it renders every other conversation.
function dpoRow(row: Json): unknown {
  if (!isObject(row.input)) throw new Error('input: expected an object with messages');
  try {
    validateMessages(row.input.messages, 'input/messages');
  } catch (error) {
    if (error instanceof ChatTemplateError) throw new Error(error.message);
    throw error;
  }
  return {
    prompt: row.input.messages,
    chosen: outputText(row.preferred_output, 'preferred_output'),
    rejected: outputText(row.non_preferred_output, 'non_preferred_output'),
  };
}

// The field an error message starts with ('messages/1/weight: ...'), as OpenAI's `param`.
const fieldOf = (message: string) => /^([\w/[\].]+):/.exec(message)?.[1] ?? '';

/** The rows of one line in our dataset kind; throws FormatError naming the line and field. */
export function convertLine(format: FileFormat, row: unknown, line: number): unknown[] {
  if (!isObject(row)) throw new FormatError(line, '', 'expected a JSON object');
  let rows: unknown[];
  try {
    rows = format === 'supervised' ? supervisedRows(row) : format === 'dpo' ? [dpoRow(row)] : [row];
  } catch (error) {
    const message = (error as Error).message;
    throw new FormatError(line, fieldOf(message), message.replace(/^[\w/[\].]+:\s*/, ''));
  }
  for (const converted of rows) {
    const errors: FieldError[] = datasetRowErrors(FORMAT_KINDS[format], converted);
    if (errors.length > 0) {
      const first = errors[0];
      throw new FormatError(line, first.path.replace(/^\//, ''), formatFieldError({ ...first, path: '' }));
    }
  }
  return rows;
}

/** A whole JSONL file: its format (every line must share it) and our rows, or the first bad line. */
export function convertFile(text: string, expected?: FileFormat): { format: FileFormat; rows: unknown[] } {
  const lines = text.split('\n');
  let format = expected;
  const rows: unknown[] = [];
  lines.forEach((raw, i) => {
    if (raw.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(raw);
    } catch (error) {
      throw new FormatError(i + 1, '', `invalid JSON: ${(error as Error).message}`);
    }
    if (!isObject(row)) throw new FormatError(i + 1, '', 'expected a JSON object');
    const lineFormat = formatOf(row);
    format ??= lineFormat;
    if (lineFormat !== format)
      throw new FormatError(i + 1, '', `a ${lineFormat} row in a file of ${format} rows`);
    rows.push(...convertLine(format, row, i + 1));
  });
  if (!format || rows.length === 0) throw new FormatError(1, '', 'the file has no rows');
  return { format, rows };
}
