import { type DatasetKind, type DatasetRows, datasetRowErrors } from './datasets.js';

/** A problem in a JSONL file: `line` is 1-based (absent for the file as a whole, e.g. no rows). */
export interface JsonlError {
  line?: number;
  path: string;
  message: string;
}

/** `line 7: /responses/1: duplicate response (ties are not allowed)`, `line 3: invalid JSON`. */
export function formatJsonlError(error: JsonlError): string {
  const where = error.line === undefined ? 'file' : `line ${error.line}`;
  return error.path ? `${where}: ${error.path}: ${error.message}` : `${where}: ${error.message}`;
}

export interface JsonlOptions {
  /** Stop validating after this many errors (default 20): enough to fix a file, cheap to reject early. */
  maxErrors?: number;
  /** Keep the parsed rows (default: false for the streaming validator, true for validateJsonl). */
  keepRows?: boolean;
  /** Longest accepted line in characters (default 1 MiB); longer lines are errors and never buffered whole. */
  maxLineLength?: number;
  /** Most rows accepted (default: no limit). */
  maxRows?: number;
}

export type JsonlResult<K extends DatasetKind> =
  | { ok: true; count: number; rows: DatasetRows[K][]; errors: [] }
  | { ok: false; count: number; rows: DatasetRows[K][]; errors: JsonlError[] };

export interface JsonlValidator<K extends DatasetKind> {
  /** Feeds the next chunk (any split, UTF-8 bytes or text). Returns false once `maxErrors` is reached: stop sending. */
  push(chunk: string | Uint8Array): boolean;
  /** Validates the last line and returns the verdict; `ok` is false if the file has no rows. */
  end(): JsonlResult<K>;
  /** Non-blank lines seen so far. */
  readonly count: number;
  readonly errors: readonly JsonlError[];
}

const DEFAULT_MAX_ERRORS = 20;
const DEFAULT_MAX_LINE_LENGTH = 1 << 20;

/**
 * Validates a JSONL dataset while it streams in (e.g. an upload), so a bad file is refused at its
 * first errors and never stored. Blank lines are skipped; '\r\n' line ends and a UTF-8 BOM are accepted.
 */
export function createJsonlValidator<K extends DatasetKind>(
  kind: K,
  options: JsonlOptions = {},
): JsonlValidator<K> {
  const maxErrors = options.maxErrors ?? DEFAULT_MAX_ERRORS;
  const maxLineLength = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  const maxRows = options.maxRows ?? Number.POSITIVE_INFINITY;
  const keepRows = options.keepRows ?? false;
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const errors: JsonlError[] = [];
  const rows: DatasetRows[K][] = [];
  let pending = '';
  let lineNumber = 0;
  let count = 0;
  let tooLong = false; // the current line passed maxLineLength: drop its text until its newline
  let ended = false;

  const full = () => errors.length >= maxErrors;
  const fail = (error: JsonlError) => {
    if (!full()) errors.push(error);
  };

  function checkLine(text: string): void {
    lineNumber++;
    if (lineNumber === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.trim() === '') return;
    count++;
    const tooBig =
      text.length > maxLineLength
        ? `line longer than ${maxLineLength} characters`
        : count > maxRows
          ? `more than ${maxRows} rows`
          : undefined;
    if (tooBig) {
      fail({ line: lineNumber, path: '', message: tooBig });
      return;
    }
    let row: unknown;
    try {
      row = JSON.parse(text);
    } catch {
      fail({ line: lineNumber, path: '', message: 'invalid JSON' });
      return;
    }
    const rowErrors = datasetRowErrors(kind, row);
    for (const e of rowErrors) fail({ line: lineNumber, ...e });
    if (rowErrors.length === 0 && keepRows) rows.push(row as DatasetRows[K]);
  }

  function consume(text: string): void {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1 && !full(); nl = text.indexOf('\n', start)) {
      if (tooLong) {
        tooLong = false;
        lineNumber++;
      } else {
        checkLine(pending + text.slice(start, nl));
      }
      pending = '';
      start = nl + 1;
    }
    if (full() || tooLong) return;
    pending += text.slice(start);
    if (pending.length > maxLineLength) {
      count++;
      fail({ line: lineNumber + 1, path: '', message: `line longer than ${maxLineLength} characters` });
      pending = '';
      tooLong = true;
    }
  }

  return {
    push(chunk) {
      if (ended) throw new Error('push() after end()');
      if (!full()) consume(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
      return !full();
    },
    end() {
      if (!ended) {
        ended = true;
        if (!full()) consume(decoder.decode());
        if (!full() && !tooLong && pending !== '') checkLine(pending);
        pending = '';
        if (count === 0 && errors.length === 0) errors.push({ path: '', message: 'no rows' });
      }
      return errors.length === 0
        ? { ok: true, count, rows, errors: [] }
        : { ok: false, count, rows, errors: [...errors] };
    },
    get count() {
      return count;
    },
    get errors() {
      return errors;
    },
  };
}

/**
 * Validates a whole JSONL dataset: the file's text, or its lines one by one (e.g. from
 * `readline`, each item one line without its newline). Rows are kept unless `keepRows: false`.
 */
export async function validateJsonl<K extends DatasetKind>(
  kind: K,
  source: string | Iterable<string> | AsyncIterable<string>,
  options: JsonlOptions = {},
): Promise<JsonlResult<K>> {
  const validator = createJsonlValidator(kind, { keepRows: true, ...options });
  if (typeof source === 'string') {
    validator.push(source);
  } else {
    for await (const line of source) {
      if (!validator.push(`${line}\n`)) break;
    }
  }
  return validator.end();
}
