// Numbers in text for numeric graders: an optional sign right before the digits, digits with optional
// thousands commas (1,234,567), an optional fraction and exponent: -12, 3.5, .5, 1,024, 6.02e23.
// The pattern has no nested or overlapping quantifiers and a global scan resumes after each match: linear time.
const NUMBER = '[-+]?(?:\\d{1,3}(?:,\\d{3})+(?:\\.\\d+)?|\\d+(?:\\.\\d+)?|\\.\\d+)(?:[eE][-+]?\\d+)?';
const WHOLE = new RegExp(`^${NUMBER}$`);

const value = (text: string): number | null => {
  const n = Number(text.replaceAll(',', ''));
  return Number.isFinite(n) ? n : null;
};

/** The number a whole text spells (surrounding whitespace allowed), or null. */
export function parseNumber(text: string): number | null {
  const trimmed = text.trim();
  return WHOLE.test(trimmed) ? value(trimmed) : null;
}

/** The first or the last number in a text, or null when it has none. */
export function extractNumber(text: string, which: 'first' | 'last'): number | null {
  const scan = new RegExp(NUMBER, 'g');
  if (which === 'first') {
    const match = scan.exec(text);
    return match ? value(match[0]) : null;
  }
  let last: string | null = null;
  for (let match = scan.exec(text); match; match = scan.exec(text)) last = match[0];
  return last === null ? null : value(last);
}

/** Whether x is within max(absolute, relative·|reference|) of the reference (math.isclose's rule). */
export function withinTolerance(x: number, reference: number, absolute = 0, relative = 0): boolean {
  return Math.abs(x - reference) <= Math.max(absolute, relative * Math.abs(reference));
}
