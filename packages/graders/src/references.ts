// References: literal text with `{{item.<field>}}` templates naming fields of the prompt row (OpenAI graders'
// syntax). A field's text is the string itself, or its JSON for other values; a reference that is exactly one
// template keeps the field's JSON value where a value is compared (json graders' fields).
import type { FieldError, PromptFieldValue, PromptRow } from '@rlhf/contracts';

const TEMPLATE = /\{\{\s*item\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
const WHOLE = /^\{\{\s*item\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

/** A reference that cannot be resolved for a row (caught at submission by rowFieldErrors; thrown when grading). */
export class ReferenceFieldError extends Error {
  override name = 'ReferenceFieldError';
}

/** A row lacks a field that a reference names. */
export class MissingFieldError extends ReferenceFieldError {
  override name = 'MissingFieldError';
  constructor(readonly field: string) {
    super(`the prompt row has no field "${field}"`);
  }
}

/** The fields a reference names, in order of first use. */
export function templateFields(reference: string): string[] {
  return [...new Set([...reference.matchAll(TEMPLATE)].map((m) => m[1]))];
}

/** Problems with a reference's templates: a `{{` that does not start `{{item.<field>}}`. */
export function templateErrors(reference: string, path: string): FieldError[] {
  const rest = reference.replace(TEMPLATE, '');
  if (!rest.includes('{{')) return [];
  return [
    {
      path,
      message:
        'a template is {{item.<field>}} with a field name of letters, digits and _ (nothing else may follow "{{")',
    },
  ];
}

/** The JSON value of a row's field; throws MissingFieldError when the row has none (own fields only). */
export function fieldValue(row: PromptRow, field: string): PromptFieldValue {
  if (!Object.hasOwn(row, field)) throw new MissingFieldError(field);
  return row[field] as PromptFieldValue;
}

const text = (value: PromptFieldValue): string => (typeof value === 'string' ? value : JSON.stringify(value));

/** The reference's text for this row: each template replaced by its field's text. */
export function renderReference(reference: string, row: PromptRow): string {
  return reference.includes('{{')
    ? reference.replace(TEMPLATE, (_, field: string) => text(fieldValue(row, field)))
    : reference;
}

/** The value a reference stands for: the field's JSON value when it is exactly one template, else its text. */
export function referenceValue(reference: string, row: PromptRow): PromptFieldValue {
  const whole = WHOLE.exec(reference);
  return whole ? fieldValue(row, whole[1]) : renderReference(reference, row);
}
