// A parser for the regex subset graders accept: JavaScript syntax (u mode) without the features that need a
// backtracking engine (backreferences, lookaround). Single-character atoms (literals, `.`, escapes, classes)
// keep their source text: a native RegExp of that one atom decides which code points they match, which takes
// constant time per code point. Everything else becomes a small tree that compiles to a linear-time program.

/** A pattern the grader engine cannot accept; `index` is where in the pattern (UTF-16 units). */
export class RegexSyntaxError extends Error {
  override name = 'RegexSyntaxError';
  constructor(
    readonly index: number,
    readonly reason: string,
  ) {
    super(`at ${index}: ${reason}`);
  }
}

export type Assertion = 'bol' | 'eol' | 'word' | 'nonword';

export type RegexNode =
  | { kind: 'char'; source: string; index: number }
  | { kind: 'assert'; assertion: Assertion }
  | { kind: 'seq'; items: RegexNode[] }
  | { kind: 'alt'; options: RegexNode[] }
  | { kind: 'repeat'; node: RegexNode; min: number; max: number };

/** Largest count in `{n}`, `{n,}`, `{n,m}`. */
export const MAX_REPEAT_COUNT = 1000;

const SYNTAX = new Set([...'^$\\.*+?()[]{}|/']);
const CLASS_ESCAPES = new Set([...'dDwWsS']);
const CONTROL_ESCAPES = new Set([...'fnrtv']);
const HEX = /^[0-9a-fA-F]$/;

/** The tree of a pattern; throws RegexSyntaxError naming the first problem. */
export function parseRegex(pattern: string): RegexNode {
  const parser = new Parser(pattern);
  const node = parser.alternation();
  if (parser.i < pattern.length) throw new RegexSyntaxError(parser.i, 'unmatched ")"');
  return node;
}

class Parser {
  i = 0;
  constructor(private readonly p: string) {}

  private fail(reason: string, at = this.i): never {
    throw new RegexSyntaxError(at, reason);
  }

  alternation(): RegexNode {
    const options = [this.sequence()];
    while (this.p[this.i] === '|') {
      this.i++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0] : { kind: 'alt', options };
  }

  private sequence(): RegexNode {
    const items: RegexNode[] = [];
    while (this.i < this.p.length && this.p[this.i] !== '|' && this.p[this.i] !== ')') {
      const start = this.i;
      const atom = this.atom();
      const repeated = this.quantifier(atom, start);
      items.push(repeated);
    }
    return items.length === 1 ? items[0] : { kind: 'seq', items };
  }

  private quantifier(atom: RegexNode, start: number): RegexNode {
    const c = this.p[this.i];
    let min: number;
    let max: number;
    if (c === '*') [min, max] = [0, Number.POSITIVE_INFINITY];
    else if (c === '+') [min, max] = [1, Number.POSITIVE_INFINITY];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') [min, max] = this.braces();
    else return atom;
    if (c !== '{') this.i++;
    if (atom.kind === 'assert') this.fail('nothing to repeat (an assertion cannot be quantified)', start);
    if (this.p[this.i] === '?') this.i++; // lazy: the same language, and graders only ask whether it matches
    const after = this.p[this.i];
    if (after !== undefined && '*+?{'.includes(after))
      this.fail('nothing to repeat (two quantifiers in a row)');
    return { kind: 'repeat', node: atom, min, max };
  }

  private braces(): [number, number] {
    const match = /^\{(\d+)(,(\d*))?\}/.exec(this.p.slice(this.i, this.i + 16));
    if (!match) this.fail('a "{" must start a quantifier {n}, {n,} or {n,m} (escape it as \\{)');
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : match[3] === '' ? Number.POSITIVE_INFINITY : Number(match[3]);
    if (min > MAX_REPEAT_COUNT || (max !== Number.POSITIVE_INFINITY && max > MAX_REPEAT_COUNT))
      this.fail(`repetition counts are at most ${MAX_REPEAT_COUNT}`);
    if (max < min) this.fail('numbers out of order in {n,m}');
    this.i += match[0].length;
    return [min, max];
  }

  private atom(): RegexNode {
    const start = this.i;
    const c = this.p[this.i];
    switch (c) {
      case '^':
        this.i++;
        return { kind: 'assert', assertion: 'bol' };
      case '$':
        this.i++;
        return { kind: 'assert', assertion: 'eol' };
      case '.':
        this.i++;
        return { kind: 'char', source: '.', index: start };
      case '(':
        return this.group();
      case '[':
        return this.characterClass();
      case '\\':
        return this.escape();
      case '*':
      case '+':
      case '?':
        return this.fail('nothing to repeat');
      case ']':
      case '{':
      case '}':
        return this.fail(`a lone "${c}" must be escaped (\\${c})`);
      default: {
        const cp = this.p.codePointAt(this.i) as number;
        const text = String.fromCodePoint(cp);
        this.i += text.length;
        return { kind: 'char', source: text, index: start };
      }
    }
  }

  private group(): RegexNode {
    const start = this.i;
    this.i++;
    if (this.p[this.i] === '?') {
      const rest = this.p.slice(this.i, this.i + 4);
      if (rest.startsWith('?:')) this.i += 2;
      else if (/^\?(=|!|<=|<!)/.test(rest))
        this.fail('lookahead and lookbehind are not supported (they need a backtracking engine)', start);
      else if (rest.startsWith('?<')) {
        const named = /^\?<([A-Za-z_$][\w$]*)>/.exec(this.p.slice(this.i, this.i + 80));
        if (!named) this.fail('a named group is (?<name>...)', start);
        this.i += named[0].length;
      } else this.fail('unsupported group syntax: use (...), (?:...) or (?<name>...)', start);
    }
    const inner = this.alternation();
    if (this.p[this.i] !== ')') this.fail('unterminated group: missing ")"', start);
    this.i++;
    // A group may be quantified even around an assertion: (?:^)* is valid where ^* is not.
    return inner.kind === 'assert' ? { kind: 'seq', items: [inner] } : inner;
  }

  private characterClass(): RegexNode {
    const start = this.i;
    this.i++;
    if (this.p[this.i] === '^') this.i++;
    while (this.i < this.p.length && this.p[this.i] !== ']') this.i += this.p[this.i] === '\\' ? 2 : 1;
    if (this.i >= this.p.length) this.fail('unterminated character class: missing "]"', start);
    this.i++;
    return { kind: 'char', source: this.p.slice(start, this.i), index: start };
  }

  private escape(): RegexNode {
    const start = this.i;
    const c = this.p[this.i + 1];
    if (c === undefined) this.fail('the pattern ends with a lone "\\"');
    const char = (length: number): RegexNode => {
      this.i = start + length;
      return { kind: 'char', source: this.p.slice(start, start + length), index: start };
    };
    if (c === 'b' || c === 'B') {
      this.i += 2;
      return { kind: 'assert', assertion: c === 'b' ? 'word' : 'nonword' };
    }
    if (/[1-9]/.test(c))
      this.fail('backreferences (\\1 …) are not supported (they need a backtracking engine)');
    if (c === 'k')
      this.fail('named backreferences (\\k<name>) are not supported (they need a backtracking engine)');
    if (c === '0') {
      if (/[0-9]/.test(this.p[this.i + 2] ?? '')) this.fail('octal escapes are not allowed in u mode');
      return char(2);
    }
    if (CLASS_ESCAPES.has(c) || CONTROL_ESCAPES.has(c) || SYNTAX.has(c)) return char(2);
    if (c === 'c') {
      if (!/[A-Za-z]/.test(this.p[this.i + 2] ?? '')) this.fail('\\c must be followed by a letter');
      return char(3);
    }
    if (c === 'x') {
      if (!HEX.test(this.p[this.i + 2] ?? '') || !HEX.test(this.p[this.i + 3] ?? ''))
        this.fail('\\x needs two hex digits');
      return char(4);
    }
    if (c === 'p' || c === 'P') {
      const close = this.p.indexOf('}', this.i);
      if (this.p[this.i + 2] !== '{' || close < 0) this.fail(`\\${c} needs a property: \\${c}{...}`);
      return char(close + 1 - start);
    }
    if (c === 'u') return char(this.unicodeEscapeLength());
    return this.fail(`unknown escape \\${c} (u mode allows escaping only syntax characters)`);
  }

  // \uHHHH, \u{H…}, or a surrogate pair \uD83D\uDE00 (one code point in u mode).
  private unicodeEscapeLength(): number {
    const rest = this.p.slice(this.i, this.i + 14);
    const braced = /^\\u\{[0-9a-fA-F]{1,6}\}/.exec(rest);
    if (braced) return braced[0].length;
    const pair = /^\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}/.exec(rest);
    if (pair) return pair[0].length;
    if (/^\\u[0-9a-fA-F]{4}/.test(rest)) return 6;
    return this.fail('\\u needs four hex digits or {hex}');
  }
}
