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

// addUsedSchema: false, so one team's `$id` never clashes with another's; removeSchema keeps the cache empty.
// Unknown keywords and formats are errors (strictSchema); the style checks of full strict mode are not.
const ajv = new Ajv({
  strictSchema: true,
  strictNumbers: true,
  strictTypes: false,
  strictTuples: false,
  strictRequired: false,
  allErrors: false,
  addUsedSchema: false,
  code: { regExp: linearRegExp },
});

/** The first `uniqueItems` keyword in a schema, as a JSON Pointer, or null. */
function uniqueItemsAt(node: unknown, at = ''): string | null {
  if (typeof node !== 'object' || node === null) return null;
  for (const [key, value] of Object.entries(node)) {
    const path = `${at}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    if (key === 'uniqueItems' && value === true) return path;
    const inner = uniqueItemsAt(value, path);
    if (inner !== null) return inner;
  }
  return null;
}

/** Compiles a team's JSON Schema; throws JsonSchemaError saying what is wrong. */
export function compileJsonSchema(schema: Record<string, unknown> | boolean): ValidateFunction {
  const unique = uniqueItemsAt(schema);
  if (unique !== null)
    throw new JsonSchemaError(
      `${unique}: uniqueItems is not supported (its cost grows with the square of the array)`,
    );
  try {
    // A fresh copy: a team's schema must not be mutated, and the compiled function outlives the cache entry.
    const copy = structuredClone(schema);
    try {
      return ajv.compile(copy);
    } finally {
      ajv.removeSchema(copy);
    }
  } catch (error) {
    if (error instanceof JsonSchemaError) throw error;
    throw new JsonSchemaError(`invalid JSON Schema: ${(error as Error).message}`);
  }
}
