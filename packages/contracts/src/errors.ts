import type { TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';
import type { TLocalizedValidationError } from 'typebox/error';

/** One problem with a value: `path` is a JSON Pointer into it ('' = the value itself). */
export interface FieldError {
  path: string;
  message: string;
}

/** Thrown by the `resolve*` functions; `errors` name every bad field. */
export class ContractError extends Error {
  override name = 'ContractError';
  constructor(readonly errors: FieldError[]) {
    super(errors.map(formatFieldError).join('; '));
  }
}

/** `/lr: must be > 0`, or just the message for the value itself. */
export function formatFieldError(error: FieldError): string {
  return error.path ? `${error.path}: ${error.message}` : error.message;
}

/** Appends one JSON Pointer segment (RFC 6901 escaping). */
export function pointer(base: string, key: string | number): string {
  return `${base}/${String(key).replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

const compiled = new WeakMap<TSchema, Validator>();

/** The compiled validator of a schema, compiled once. */
export function compiledSchema(schema: TSchema): Validator {
  let validator = compiled.get(schema);
  if (!validator) {
    validator = Compile(schema);
    compiled.set(schema, validator);
  }
  return validator;
}

/** Validates `value` against `schema`; returns readable errors, one per field, paths prefixed by `base`. */
export function schemaErrors(schema: TSchema, value: unknown, base = ''): FieldError[] {
  const validator = compiledSchema(schema);
  if (validator.Check(value)) return [];
  return readableErrors(validator.Errors(value), base);
}

// TypeBox reports an anyOf failure as one error per branch plus the anyOf itself, and an unknown
// property twice (additionalProperties + boolean schema): fold those into one error per field.
function readableErrors(raw: TLocalizedValidationError[], base: string): FieldError[] {
  const anyOfs = raw.filter((e) => e.keyword === 'anyOf');
  const branchOf = (e: TLocalizedValidationError) =>
    anyOfs.find((u) => u !== e && e.schemaPath.startsWith(`${u.schemaPath}/anyOf/`));
  const out: FieldError[] = [];
  const seen = new Set<string>();
  const add = (path: string, message: string) => {
    const key = `${path}\u0000${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ path, message });
    }
  };
  for (const e of raw) {
    if (e.keyword === 'boolean' && e.schemaPath.endsWith('/additionalProperties')) continue;
    if (branchOf(e)) continue;
    const at = base + e.instancePath;
    switch (e.keyword) {
      case 'anyOf': {
        const branches = raw.filter((b) => branchOf(b) === e && b.instancePath === e.instancePath);
        add(at, either([...new Set(branches.map((b) => message(b)))]));
        break;
      }
      case 'additionalProperties':
        for (const name of e.params.additionalProperties) add(pointer(at, name), 'unknown field');
        break;
      case 'required':
        for (const name of e.params.requiredProperties) add(pointer(at, name), 'required');
        break;
      case 'uniqueItems':
        for (const index of e.params.duplicateItems) add(pointer(at, index), 'duplicate of an earlier item');
        break;
      default:
        add(at, message(e));
    }
  }
  return out;
}

// ['must be >= 1', 'must be null'] -> 'must be >= 1 or null'
function either(messages: string[]): string {
  if (messages.length === 0) return 'does not match any allowed form';
  if (!messages.every((m) => m.startsWith('must be '))) return messages.join('; or ');
  return `must be ${messages.map((m) => m.slice('must be '.length)).join(' or ')}`;
}

function message(e: TLocalizedValidationError): string {
  switch (e.keyword) {
    case 'type':
      return `must be ${[e.params.type].flat().map(typeName).join(' or ')}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `must be ${e.params.comparison} ${e.params.limit}`;
    case 'minLength':
      return e.params.limit === 1 ? 'must not be empty' : `must have at least ${e.params.limit} characters`;
    case 'maxLength':
      return `must have at most ${e.params.limit} characters`;
    case 'minItems':
      return `must have at least ${e.params.limit} item${e.params.limit === 1 ? '' : 's'}`;
    case 'maxItems':
      return `must have at most ${e.params.limit} item${e.params.limit === 1 ? '' : 's'}`;
    case 'enum':
      return `must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(e.params.allowedValue)}`;
    case 'pattern':
      return `must match ${String(e.params.pattern)}`;
    case 'format':
      return `must be a valid ${e.params.format}`;
    default:
      return e.message;
  }
}

// NaN and ±Infinity fail `type: number` too (TypeBox checks Number.isFinite), hence "finite".
function typeName(type: string): string {
  if (type === 'number') return 'a finite number';
  if (type === 'integer') return 'a finite integer';
  if (type === 'null') return 'null';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
