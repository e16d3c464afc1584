// JSON Schemas of json graders, compiled with Ajv when the grader is validated. A team's schema is data, but two
// keywords could make one check slow: `pattern` / `patternProperties` run on the grader regex engine (linear
// time, no ReDoS) instead of RegExp, and `uniqueItems` (quadratic on arrays of objects) is refused.
import { Ajv, type ValidateFunction } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types/index.js';
import { compileLinearRegex } from './regex/engine.js';
import { RegexSyntaxError } from './regex/parse.js';

/** A schema Ajv cannot compile, or one using a refused keyword; `message` says which part. */
export class JsonSchemaError extends Error {
  override name = 'JsonSchemaError';
}

// Ajv's regExp option: any object with test(); toString() is Ajv's cache key.
const linearRegExp: RegExpEngine = Object.assign(
  (pattern: string) => {
    try {
      const regex = compileLinearRegex(pattern);
      return { test: (text: string) => regex.test(text), toString: () => `/${pattern}/u` };
    } catch (error) {
      if (error instanceof RegexSyntaxError)
        throw new JsonSchemaError(`pattern ${JSON.stringify(pattern)}: ${error.message}`);
      throw error;
    }
  },
  { code: 'linearRegExp' },
);

// Unknown keywords and formats are errors (strictSchema); the style checks of full strict mode are not. Each
// compiled schema is removed right after compiling (compile is synchronous), and `$id`s are stripped first, so
// one team's ids never clash with another's and nothing accumulates.
const ajv = new Ajv({
  strictSchema: true,
  strictNumbers: true,
  strictTypes: false,
  strictTuples: false,
  strictRequired: false,
  allErrors: false,
  code: { regExp: linearRegExp },
});

/** Deepest nesting of objects and arrays a team's schema (or a compared JSON value) may have. */
export const MAX_JSON_DEPTH = 32;

/** How deep a JSON value nests (0 for a scalar), counted without recursion. */
export function jsonDepth(value: unknown): number {
  let deepest = 0;
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [node, depth] = pending.pop() as [unknown, number];
    if (typeof node !== 'object' || node === null) continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_JSON_DEPTH) return deepest;
    for (const child of Object.values(node)) pending.push([child, depth + 1]);
  }
  return deepest;
}

/** A copy without `$id` keywords, after refusing `uniqueItems` (naming where it is). */
function prepared(node: unknown, at = ''): unknown {
  if (Array.isArray(node)) return node.map((item, i) => prepared(item, `${at}/${i}`));
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const path = `${at}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    if (key === 'uniqueItems' && value === true)
      throw new JsonSchemaError(
        `${path}: uniqueItems is not supported (its cost grows with the square of the array)`,
      );
    if (key !== '$id') out[key] = prepared(value, path);
  }
  return out;
}

/** Compiles a team's JSON Schema; throws JsonSchemaError saying what is wrong. */
export function compileJsonSchema(schema: Record<string, unknown> | boolean): ValidateFunction {
  if (jsonDepth(schema) > MAX_JSON_DEPTH)
    throw new JsonSchemaError(`nests more than ${MAX_JSON_DEPTH} levels of objects and arrays`);
  const copy = prepared(schema) as Record<string, unknown> | boolean;
  try {
    return ajv.compile(copy);
  } catch (error) {
    throw new JsonSchemaError(`invalid JSON Schema: ${(error as Error).message}`);
  } finally {
    if (typeof copy === 'object') ajv.removeSchema(copy);
  }
}
