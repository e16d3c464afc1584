// Streaming UTF-8 validation by line: uploads are bytes, and a dataset must be text (a decoder would
// turn bad bytes into U+FFFD silently). Sequences split across chunks are carried over.
import { isUtf8 } from 'node:buffer';

export interface Utf8LineChecker {
  /** The 1-based line of the first invalid byte in `chunk`, or null while everything is valid. */
  push(chunk: Uint8Array): number | null;
  /** The line of a sequence the input ended inside, or null. */
  end(): number | null;
}

const NEWLINE = 0x0a;

export function createUtf8LineChecker(): Utf8LineChecker {
  let line = 1;
  let need = 0; // continuation bytes still expected
  let lower = 0x80;
  let upper = 0xbf;
  const countLines = (chunk: Uint8Array) => {
    for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) line++;
  };
  return {
    push(chunk) {
      // Fast path: a chunk that starts and ends on sequence boundaries and is valid as a whole.
      if (need === 0 && isUtf8(chunk)) {
        countLines(chunk);
        return null;
      }
      for (const byte of chunk) {
        if (need === 0) {
          if (byte < 0x80) {
            if (byte === NEWLINE) line++;
          } else if (byte >= 0xc2 && byte <= 0xdf) need = 1;
          else if (byte >= 0xe0 && byte <= 0xef) {
            need = 2;
            if (byte === 0xe0) lower = 0xa0; // no overlong forms
            if (byte === 0xed) upper = 0x9f; // no surrogates
          } else if (byte >= 0xf0 && byte <= 0xf4) {
            need = 3;
            if (byte === 0xf0) lower = 0x90;
            if (byte === 0xf4) upper = 0x8f; // nothing past U+10FFFF
          } else return line;
        } else {
          if (byte < lower || byte > upper) return line;
          lower = 0x80;
          upper = 0xbf;
          need--;
        }
      }
      return null;
    },
    end() {
      return need === 0 ? null : line;
    },
  };
}
