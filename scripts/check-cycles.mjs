#!/usr/bin/env node
// Import-cycle check over the TypeScript sources, dependency-free (madge 8 declares a peer
// dependency on typescript ^5 and needs the TypeScript JS API, which TypeScript 7 no longer ships).
//
//   node scripts/check-cycles.mjs [options] [dir ...]      (default dirs: apps packages)
//
// Every .ts/.tsx/.mts/.cts file under the given directories (test files included; node_modules,
// dist, coverage and generated/ skipped) is parsed for its imports: static imports, `import type`,
// re-exports (`export ... from`), side-effect imports, `import('...')`, `typeof import('...')`
// and `require('...')`. Relative specifiers resolve the way TypeScript's NodeNext resolution
// does (`./x.js` -> `./x.ts`, `./dir` -> `./dir/index.ts`); workspace specifiers (`@rlhf/name`,
// `@rlhf/name/sub`) resolve through the workspace package's `exports`. Files reached that way
// outside the given directories (another workspace, e.g. examples/) are parsed too, so a cycle
// through them is found; files in a skipped directory (the generated Prisma client) are leaves,
// not parsed. Anything else (node: builtins, npm packages, JSON) is not followed.
//
// It prints each cycle (one per strongly connected component of the file graph, the shortest
// cycle through it, plus the component's other files) and exits 1 if there is any.
//
// Options:
//   --skip-type-imports   ignore `import type`, `export type ... from` and `typeof import()`
//                         (by default they count, as in madge)
//   --skip-dynamic        ignore `import('...')`
//   --json                print {files, edges, cycles} as JSON instead of text
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = /\.(ts|tsx|mts|cts)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', 'coverage', 'generated', '.git']);

// ---------------------------------------------------------------- tokenizer
// Just enough JavaScript/TypeScript lexing to find import specifiers and nothing inside comments,
// strings, template literals or regular expressions.

const KEYWORDS_BEFORE_EXPR = new Set([
  'return',
  'typeof',
  'case',
  'do',
  'else',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'instanceof',
  'yield',
  'await',
  'export',
  'default',
  'extends',
]);
const isIdChar = (c) => /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) > 127;

export function tokenize(src) {
  const tokens = [];
  const braces = []; // 'code' for `{`, 'template' for `${`
  let i = 0;
  const n = src.length;
  const prevAllowsRegex = () => {
    const prev = tokens[tokens.length - 1];
    if (!prev) return true;
    if (prev.t === 'str' || prev.t === 'tpl' || prev.t === 're') return false;
    if (prev.t === 'id') return KEYWORDS_BEFORE_EXPR.has(prev.v);
    return !(prev.v === ')' || prev.v === ']' || prev.v === '}');
  };
  // Scans template characters from i (just after ` or the } closing a ${...}); returns whether a
  // ${ was opened (true) or the template ended (false).
  const scanTemplate = () => {
    while (i < n) {
      const c = src[i];
      if (c === '\\') i += 2;
      else if (c === '`') {
        i += 1;
        return false;
      } else if (c === '$' && src[i + 1] === '{') {
        i += 2;
        return true;
      } else i += 1;
    }
    return false;
  };
  while (i < n) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v' || c === '\uFEFF') {
      i += 1;
    } else if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i += 1;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === "'" || c === '"') {
      let v = '';
      i += 1;
      while (i < n && src[i] !== c && src[i] !== '\n') {
        if (src[i] === '\\') {
          v += src[i + 1] ?? '';
          i += 2;
        } else v += src[i++];
      }
      i += 1;
      tokens.push({ t: 'str', v });
    } else if (c === '`') {
      i += 1;
      tokens.push({ t: 'tpl', v: '`' });
      if (scanTemplate()) braces.push('template');
    } else if (c === '{') {
      braces.push('code');
      tokens.push({ t: 'punc', v: '{' });
      i += 1;
    } else if (c === '}') {
      i += 1;
      if (braces.pop() === 'template') {
        if (scanTemplate()) braces.push('template');
      } else tokens.push({ t: 'punc', v: '}' });
    } else if (c === '/' && prevAllowsRegex()) {
      i += 1;
      let inClass = false;
      while (i < n && src[i] !== '\n') {
        const d = src[i];
        if (d === '\\') i += 2;
        else {
          i += 1;
          if (d === '[') inClass = true;
          else if (d === ']') inClass = false;
          else if (d === '/' && !inClass) break;
        }
      }
      while (i < n && isIdChar(src[i])) i += 1; // flags
      tokens.push({ t: 're', v: '/' });
    } else if (isIdChar(c)) {
      const start = i;
      while (i < n && isIdChar(src[i])) i += 1;
      tokens.push({ t: 'id', v: src.slice(start, i) });
    } else {
      tokens.push({ t: 'punc', v: c });
      i += 1;
    }
  }
  return tokens;
}

// ---------------------------------------------------------------- import extraction

const CLAUSE_PUNC = new Set(['{', '}', ',', '*']);

/** The module specifiers a source file imports: [{ specifier, type: boolean, dynamic: boolean }]. */
export function importsOf(src) {
  const tokens = tokenize(src);
  const found = [];
  const at = (k) => tokens[k] ?? { t: 'eof', v: '' };
  const isPunc = (k, v) => at(k).t === 'punc' && at(k).v === v;
  const isId = (k, v) => at(k).t === 'id' && at(k).v === v;
  // Scans an import/export clause from k: identifiers, braces, commas, `*`, `as`, string names.
  // Returns the index of the `from` keyword followed by a string, or -1.
  const findFrom = (k) => {
    for (; k < tokens.length; k += 1) {
      const tok = at(k);
      if (tok.t === 'id' && tok.v === 'from' && at(k + 1).t === 'str') {
        // `import from from './x'`: the first `from` is the default binding.
        if (!(isId(k + 1, 'from') && at(k + 2).t === 'str')) return k;
      }
      if (tok.t === 'id' || tok.t === 'str' || (tok.t === 'punc' && CLAUSE_PUNC.has(tok.v))) continue;
      return -1;
    }
    return -1;
  };
  for (let k = 0; k < tokens.length; k += 1) {
    const tok = tokens[k];
    if (tok.t !== 'id') continue;
    const afterDot = isPunc(k - 1, '.') && !isPunc(k - 2, '.'); // x.import, but not ...import
    if (afterDot) continue;
    if (tok.v === 'import') {
      if (isPunc(k + 1, '(') && at(k + 2).t === 'str') {
        // import('x') — `typeof import('x')` is a type position.
        found.push({ specifier: at(k + 2).v, type: isId(k - 1, 'typeof'), dynamic: !isId(k - 1, 'typeof') });
      } else if (isPunc(k + 1, '.')) {
        // import.meta
      } else if (at(k + 1).t === 'str') {
        found.push({ specifier: at(k + 1).v, type: false, dynamic: false });
      } else {
        // `import type X from`, `import type { } from` — but `import type from './x'` and
        // `import type, { a } from` bind a default export named `type`.
        const typeOnly =
          isId(k + 1, 'type') && !isPunc(k + 2, ',') && !(isId(k + 2, 'from') && at(k + 3).t === 'str');
        const from = findFrom(k + 1);
        if (from >= 0) found.push({ specifier: at(from + 1).v, type: typeOnly, dynamic: false });
        else {
          // import x = require('y')
          let j = k + 1;
          if (isId(j, 'type')) j += 1;
          if (
            at(j).t === 'id' &&
            isPunc(j + 1, '=') &&
            isId(j + 2, 'require') &&
            isPunc(j + 3, '(') &&
            at(j + 4).t === 'str'
          )
            found.push({ specifier: at(j + 4).v, type: typeOnly, dynamic: false });
        }
      }
    } else if (tok.v === 'export') {
      const typeOnly = isId(k + 1, 'type') && (isPunc(k + 2, '{') || isPunc(k + 2, '*'));
      const start = typeOnly ? k + 2 : k + 1;
      if (isPunc(start, '{') || isPunc(start, '*')) {
        const from = findFrom(start);
        if (from >= 0) found.push({ specifier: at(from + 1).v, type: typeOnly, dynamic: false });
      }
    } else if (tok.v === 'require' && isPunc(k + 1, '(') && at(k + 2).t === 'str' && isPunc(k + 3, ')')) {
      found.push({ specifier: at(k + 2).v, type: false, dynamic: false });
    }
  }
  return found;
}

// ---------------------------------------------------------------- resolution

function workspaces() {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
  const dirs = [];
  for (const pattern of pkg.workspaces ?? []) {
    if (pattern.endsWith('/*')) {
      const parent = join(repo, pattern.slice(0, -2));
      if (!existsSync(parent)) continue;
      for (const name of readdirSync(parent)) dirs.push(join(parent, name));
    } else dirs.push(join(repo, pattern));
  }
  const byName = new Map();
  for (const dir of dirs) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    if (manifest.name) byName.set(manifest.name, { dir, manifest });
  }
  return byName;
}

const isFile = (path) => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/** A source file for a path as written in an import (extension mapped as TypeScript does). */
function sourceFor(path) {
  const candidates = [];
  const ext = /\.(js|jsx|mjs|cjs)$/.exec(path);
  if (ext) {
    const base = path.slice(0, -ext[0].length);
    const mapped = {
      js: ['.ts', '.tsx', '.d.ts'],
      jsx: ['.tsx'],
      mjs: ['.mts', '.d.mts'],
      cjs: ['.cts', '.d.cts'],
    };
    for (const e of mapped[ext[1]]) candidates.push(base + e);
  } else if (SOURCE.test(path)) candidates.push(path);
  else
    candidates.push(
      `${path}.ts`,
      `${path}.tsx`,
      `${path}.d.ts`,
      join(path, 'index.ts'),
      join(path, 'index.tsx'),
    );
  return candidates.find(isFile);
}

function exportTarget(entry) {
  if (typeof entry === 'string') return entry;
  if (Array.isArray(entry)) return entry.map(exportTarget).find(Boolean);
  if (entry && typeof entry === 'object') {
    for (const condition of ['types', 'import', 'node', 'default']) {
      if (condition in entry) {
        const target = exportTarget(entry[condition]);
        if (target) return target;
      }
    }
  }
  return undefined;
}

function resolver(byName) {
  const names = [...byName.keys()].sort((a, b) => b.length - a.length);
  return (specifier, fromFile) => {
    if (specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..')
      return { file: sourceFor(resolve(dirname(fromFile), specifier)), local: true };
    const name = names.find((candidate) => specifier === candidate || specifier.startsWith(`${candidate}/`));
    if (!name) return { file: undefined, local: false };
    const { dir, manifest } = byName.get(name);
    const subpath = `.${specifier.slice(name.length)}`;
    let target;
    if (manifest.exports !== undefined) {
      const exportsMap =
        typeof manifest.exports === 'string' ||
        Array.isArray(manifest.exports) ||
        !Object.keys(manifest.exports).some((key) => key.startsWith('.'))
          ? { '.': manifest.exports }
          : manifest.exports;
      target = exportTarget(exportsMap[subpath]);
    } else if (subpath === '.') target = manifest.types ?? manifest.main ?? 'index.ts';
    else target = subpath;
    return { file: target ? sourceFor(join(dir, target)) : undefined, local: true };
  };
}

// ---------------------------------------------------------------- graph and cycles

function walk(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) walk(join(dir, entry.name), out);
    } else if (entry.isFile() && SOURCE.test(entry.name)) out.push(join(dir, entry.name));
  }
  return out;
}

/** Tarjan's strongly connected components, iteratively (no recursion-depth limit). */
function components(nodes, edges) {
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const result = [];
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work = [{ node: root, next: 0 }];
    index.set(root, counter);
    low.set(root, counter);
    counter += 1;
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const targets = [...(edges.get(frame.node)?.keys() ?? [])];
      if (frame.next < targets.length) {
        const target = targets[frame.next++];
        if (!index.has(target)) {
          index.set(target, counter);
          low.set(target, counter);
          counter += 1;
          stack.push(target);
          onStack.add(target);
          work.push({ node: target, next: 0 });
        } else if (onStack.has(target)) low.set(frame.node, Math.min(low.get(frame.node), index.get(target)));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent), low.get(frame.node)));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        const selfLoop = component.length === 1 && edges.get(member)?.has(member);
        if (component.length > 1 || selfLoop) result.push(component);
      }
    }
  }
  return result;
}

/** The shortest cycle through the first (sorted) file of a component, by breadth-first search. */
function shortestCycle(component, edges) {
  const members = new Set(component);
  const start = [...component].sort()[0];
  const previous = new Map();
  const queue = [start];
  for (let q = 0; q < queue.length; q += 1) {
    const node = queue[q];
    for (const target of [...(edges.get(node)?.keys() ?? [])].sort()) {
      if (!members.has(target)) continue;
      if (target === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0]));
        return [...path, start];
      }
      if (!previous.has(target)) {
        previous.set(target, node);
        queue.push(target);
      }
    }
  }
  return [start, start];
}

function main(argv) {
  const flags = new Set(argv.filter((arg) => arg.startsWith('--')));
  for (const flag of flags) {
    if (!['--skip-type-imports', '--skip-dynamic', '--json'].includes(flag)) {
      console.error(`check-cycles: unknown option ${flag}`);
      return 2;
    }
  }
  const dirs = argv.filter((arg) => !arg.startsWith('--'));
  const roots = (dirs.length > 0 ? dirs : ['apps', 'packages']).map((dir) => resolve(repo, dir));
  const resolve_ = resolver(workspaces());
  const rel = (file) => relative(repo, file).split(sep).join('/');

  const edges = new Map(); // file -> Map(target -> { type, dynamic })
  const unresolved = [];
  const pending = roots.flatMap((root) => (existsSync(root) ? walk(root, []) : []));
  const files = new Set(pending);
  while (pending.length > 0) {
    const file = pending.pop();
    const out = new Map();
    edges.set(file, out);
    if (
      rel(file)
        .split('/')
        .some((part) => SKIP_DIRS.has(part))
    )
      continue;
    for (const imp of importsOf(readFileSync(file, 'utf8'))) {
      if (imp.type && flags.has('--skip-type-imports')) continue;
      if (imp.dynamic && flags.has('--skip-dynamic')) continue;
      const { file: target, local } = resolve_(imp.specifier, file);
      if (!target) {
        if (local) unresolved.push(`${rel(file)}: ${imp.specifier}`);
        continue;
      }
      if (!SOURCE.test(target)) continue;
      if (!out.has(target)) out.set(target, imp);
      if (!files.has(target)) {
        files.add(target);
        pending.push(target);
      }
    }
  }

  const nodes = [...files].sort();
  const cycles = components(nodes, edges)
    .map((component) => ({
      cycle: shortestCycle(component, edges).map(rel),
      files: component.map(rel).sort(),
    }))
    .sort((a, b) => a.cycle[0].localeCompare(b.cycle[0]));

  if (flags.has('--json')) {
    const edgeList = nodes.flatMap((from) => [...edges.get(from).keys()].map((to) => [rel(from), rel(to)]));
    console.log(JSON.stringify({ files: nodes.map(rel), edges: edgeList, cycles, unresolved }, null, 2));
  } else {
    for (const line of unresolved) console.error(`check-cycles: cannot resolve ${line}`);
    const edgeCount = nodes.reduce((sum, node) => sum + edges.get(node).size, 0);
    if (cycles.length === 0) {
      console.log(`check-cycles: no import cycle (${nodes.length} files, ${edgeCount} imports)`);
    } else {
      console.log(
        `check-cycles: ${cycles.length} import cycle(s) (${nodes.length} files, ${edgeCount} imports)`,
      );
      cycles.forEach(({ cycle, files: members }, k) => {
        console.log(`\n${k + 1}) ${cycle.join(' -> ')}`);
        const others = members.filter((file) => !cycle.includes(file));
        if (others.length > 0)
          console.log(`   also in this cycle group (${members.length} files): ${others.join(', ')}`);
      });
    }
  }
  return cycles.length > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
