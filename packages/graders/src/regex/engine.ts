// A linear-time regex engine for graders: the parsed pattern compiles to a Thompson NFA program that a Pike VM
// simulates (Thompson 1968; Cox, "Regular Expression Matching: the Virtual Machine Approach", 2009). Every
// code point of the text is read once and each program step runs at most once per position, so a match
// costs O(program × text) whatever the pattern: no backtracking, hence no ReDoS, nested quantifiers included.
import { type Assertion, parseRegex, type RegexNode, RegexSyntaxError } from './parse.js';

/** Most steps a compiled pattern may have (counted repetitions are expanded). */
export const MAX_PROGRAM_STEPS = 1024;
/**
 * Most VM steps one match may take (about 1 s): program × text bounds the work, so any pattern finishes on
 * responses up to MAX_MATCH_WORK / (2·MAX_PROGRAM_STEPS) = 16 384 code points, small ones on megabytes.
 */
export const MAX_MATCH_WORK = 2 ** 25;

/** A match that would exceed MAX_MATCH_WORK: bounded, reported, never left running. */
export class RegexWorkLimitError extends Error {
  override name = 'RegexWorkLimitError';
}

const CHAR = 0;
const SPLIT = 1;
const JMP = 2;
const ASSERT = 3;
const MATCH = 4;
const ASSERTIONS: readonly Assertion[] = ['bol', 'eol', 'word', 'nonword'];

/** Which code points one atom matches: a native RegExp of that single atom, asked once per code point and cached. */
class CharMatcher {
  private readonly ascii = new Int8Array(128); // 0 not asked yet, 1 matches, 2 does not
  private readonly other = new Map<number, boolean>();
  constructor(private readonly native: RegExp) {}
  test(cp: number): boolean {
    if (cp < 128) {
      if (this.ascii[cp] === 0) this.ascii[cp] = this.native.test(String.fromCharCode(cp)) ? 1 : 2;
      return this.ascii[cp] === 1;
    }
    let known = this.other.get(cp);
    if (known === undefined) {
      known = this.native.test(String.fromCodePoint(cp));
      if (this.other.size < 4096) this.other.set(cp, known);
    }
    return known;
  }
}

interface Program {
  op: Int8Array;
  a: Int32Array;
  b: Int32Array;
  matchers: CharMatcher[];
}

/** A compiled grader regex. */
export interface LinearRegex {
  readonly source: string;
  readonly flags: string;
  /** Whether the pattern matches somewhere in `text` (RegExp.prototype.test). */
  test(text: string): boolean;
  /** Whether the pattern matches the whole of `text`. */
  fullMatch(text: string): boolean;
}

/** Compiles a pattern with flags from `imsu` (u is always on); throws RegexSyntaxError naming the problem. */
export function compileLinearRegex(source: string, flags = ''): LinearRegex {
  for (const f of flags)
    if (!'imsu'.includes(f)) throw new RegexSyntaxError(0, `unsupported flag "${f}" (use i, m, s, u)`);
  if (new Set(flags).size !== flags.length)
    throw new RegexSyntaxError(0, `unsupported flag: a duplicate in "${flags}"`);
  const program = compile(parseRegex(source), flags);
  const multiline = flags.includes('m');
  const word = flags.includes('i') ? isFoldedWordChar : isAsciiWordChar;
  return {
    source,
    flags,
    test: (text) => run(program, text, false, multiline, word),
    fullMatch: (text) => run(program, text, true, multiline, word),
  };
}

function compile(root: RegexNode, flags: string): Program {
  const op: number[] = [];
  const a: number[] = [];
  const b: number[] = [];
  const matchers: CharMatcher[] = [];
  const bySource = new Map<string, number>();
  const nativeFlags = `u${flags.includes('i') ? 'i' : ''}${flags.includes('s') ? 's' : ''}`;
  const emit = (code: number, x = 0, y = 0): number => {
    if (op.length >= MAX_PROGRAM_STEPS)
      throw new RegexSyntaxError(
        0,
        `the pattern is too large: more than ${MAX_PROGRAM_STEPS} steps once repetitions are expanded`,
      );
    op.push(code);
    a.push(x);
    b.push(y);
    return op.length - 1;
  };
  const matcherOf = (source: string, index: number): number => {
    let id = bySource.get(source);
    if (id === undefined) {
      let native: RegExp;
      try {
        native = new RegExp(`^(?:${source})$`, nativeFlags);
      } catch (error) {
        const detail = (error as Error).message.replace(/^.*: /, '');
        throw new RegexSyntaxError(index, `invalid ${JSON.stringify(source)}: ${detail}`);
      }
      id = matchers.push(new CharMatcher(native)) - 1;
      bySource.set(source, id);
    }
    return id;
  };
  const gen = (node: RegexNode): void => {
    switch (node.kind) {
      case 'char':
        emit(CHAR, matcherOf(node.source, node.index));
        return;
      case 'assert':
        emit(ASSERT, ASSERTIONS.indexOf(node.assertion));
        return;
      case 'seq':
        for (const item of node.items) gen(item);
        return;
      case 'alt': {
        const jumps: number[] = [];
        const last = node.options.length - 1;
        for (const option of node.options.slice(0, last)) {
          const split = emit(SPLIT);
          a[split] = op.length;
          gen(option);
          jumps.push(emit(JMP));
          b[split] = op.length;
        }
        gen(node.options[last]);
        for (const j of jumps) a[j] = op.length;
        return;
      }
      case 'repeat':
        repeat(node.node, node.min, node.max);
        return;
    }
  };
  const repeat = (node: RegexNode, min: number, max: number): void => {
    for (let k = 0; k < min; k++) gen(node);
    if (max === Number.POSITIVE_INFINITY) {
      // x*: L: split body, end; body; jmp L
      const split = emit(SPLIT);
      a[split] = op.length;
      gen(node);
      emit(JMP, split);
      b[split] = op.length;
      return;
    }
    for (let k = min; k < max; k++) {
      const split = emit(SPLIT);
      a[split] = op.length;
      gen(node);
      b[split] = op.length;
    }
  };
  gen(root);
  emit(MATCH);
  return { op: Int8Array.from(op), a: Int32Array.from(a), b: Int32Array.from(b), matchers };
}

const isLineTerminator = (cp: number) => cp === 10 || cp === 13 || cp === 0x2028 || cp === 0x2029;
const isAsciiWordChar = (cp: number) =>
  (cp >= 48 && cp <= 57) || (cp >= 65 && cp <= 90) || (cp >= 97 && cp <= 122) || cp === 95;
// With i and u, \w and \b also take ſ (U+017F) and the Kelvin sign (U+212A), which case-fold into it (ECMA-262).
const isFoldedWordChar = (cp: number) => isAsciiWordChar(cp) || cp === 0x17f || cp === 0x212a;

// Pike VM: the threads at each position are a set of program counters (marks[pc] === generation).
function run(
  program: Program,
  text: string,
  whole: boolean,
  multiline: boolean,
  isWordChar: (cp: number) => boolean,
): boolean {
  const { op, a, b, matchers } = program;
  const size = op.length;
  let current = new Int32Array(size);
  let next = new Int32Array(size);
  const marks = new Int32Array(size);
  const stack = new Int32Array(size * 2 + 2);
  let generation = 0;
  let work = 0;
  let prev = -1; // code point before the position, -1 at the start
  let cur = -1; // code point at the position, -1 at the end

  const holds = (assertion: number): boolean => {
    switch (assertion) {
      case 0:
        return prev === -1 || (multiline && isLineTerminator(prev));
      case 1:
        return cur === -1 || (multiline && isLineTerminator(cur));
      case 2:
        return (prev !== -1 && isWordChar(prev)) !== (cur !== -1 && isWordChar(cur));
      default:
        return (prev !== -1 && isWordChar(prev)) === (cur !== -1 && isWordChar(cur));
    }
  };
  // Adds pc and everything reachable from it without reading a code point; returns the new list size.
  const add = (list: Int32Array, length: number, pc0: number): number => {
    let top = 0;
    let steps = 0;
    stack[top++] = pc0;
    while (top > 0) {
      const pc = stack[--top];
      steps++;
      if (marks[pc] === generation) continue;
      marks[pc] = generation;
      switch (op[pc]) {
        case JMP:
          stack[top++] = a[pc];
          break;
        case SPLIT:
          stack[top++] = b[pc];
          stack[top++] = a[pc];
          break;
        case ASSERT:
          if (holds(a[pc])) stack[top++] = pc + 1;
          break;
        default:
          list[length++] = pc;
      }
    }
    work += steps;
    return length;
  };

  const n = text.length;
  let pos = 0;
  cur = n > 0 ? (text.codePointAt(0) as number) : -1;
  generation++;
  let count = add(current, 0, 0);
  for (;;) {
    for (let t = 0; t < count; t++) if (op[current[t]] === MATCH && (!whole || pos === n)) return true;
    if (pos >= n || (whole && count === 0)) return false;
    work += count;
    if (work > MAX_MATCH_WORK)
      throw new RegexWorkLimitError(
        `matching would take more than ${MAX_MATCH_WORK} steps (pattern size × response length); use a smaller pattern or shorter responses`,
      );
    const read = cur;
    pos += read > 0xffff ? 2 : 1;
    prev = read;
    cur = pos < n ? (text.codePointAt(pos) as number) : -1;
    generation++;
    let length = 0;
    for (let t = 0; t < count; t++) {
      const pc = current[t];
      if (op[pc] === CHAR && matchers[a[pc]].test(read)) length = add(next, length, pc + 1);
    }
    if (!whole) length = add(next, length, 0); // a match may start at any position
    [current, next] = [next, current];
    count = length;
  }
}
