// "Sort the digits": the prompt lists digits, the ideal response lists them in ascending order.
//   prompt   'sort 7 3 9 1:'
//   response ' 1 3 7 9'        (then EOS)
// Short enough for a 2-layer byte-level GPT (≤ ~25 bytes per example), and scored by a program, so
// PPO's gains and any reward hacking (e.g. always answering ' 1 2 3 4') show in the ground truth.

/** `sort 7 3 9 1:` */
export function formatPrompt(digits: readonly number[]): string {
  return `sort ${digits.join(' ')}:`;
}

/** ` 1 3 7 9`: each digit after one space, ascending. */
export function formatResponse(digits: readonly number[]): string {
  return digits.map((d) => ` ${d}`).join('');
}

const PROMPT = /^sort ((?:\d )*\d):$/;
const RESPONSE = /^( \d)+$/;

/** The digits of a task prompt; throws on any other text. */
export function parsePrompt(prompt: string): number[] {
  const match = PROMPT.exec(prompt);
  if (!match) throw new Error(`not a sort-digits prompt: ${JSON.stringify(prompt)}`);
  return match[1].split(' ').map(Number);
}

/** The response a perfect policy writes. */
export function idealResponse(prompt: string): string {
  return formatResponse(parsePrompt(prompt).sort((a, b) => a - b));
}

/** The parts of the score, for logging next to it. */
export interface ScoreParts {
  /** the response holds exactly the prompt's digits (same multiset) */
  sameDigits: boolean;
  /** |prompt ∩ response| / max(|prompt|, |response|) as multisets, in [0, 1] */
  overlap: number;
  /** share of adjacent response digits in ascending (non-decreasing) order; 1 for < 2 digits */
  order: number;
  /** the response is exactly ' d d d' */
  format: boolean;
}

export function scoreParts(prompt: string, response: string): ScoreParts {
  const wanted = parsePrompt(prompt);
  const given = [...response].filter((c) => c >= '0' && c <= '9').map(Number);
  const counts = new Array<number>(10).fill(0);
  for (const d of wanted) counts[d]++;
  let common = 0;
  for (const d of given) {
    if (counts[d] > 0) {
      counts[d]--;
      common++;
    }
  }
  const overlap = common / Math.max(wanted.length, given.length);
  let ascending = 0;
  for (let i = 1; i < given.length; i++) if (given[i - 1] <= given[i]) ascending++;
  return {
    sameDigits: overlap === 1,
    overlap,
    order: given.length < 2 ? 1 : ascending / (given.length - 1),
    format: RESPONSE.test(response),
  };
}

/**
 * Ground-truth reward in [0, 1]. With the prompt's digits exactly: 0.5 + 0.4·order + 0.1·format
 * (1 for the ideal answer, ≥ 0.5 always). Otherwise 0.4·overlap < 0.4: dropping, adding or
 * inventing digits costs more than any misordering, so a constant sorted answer scores low.
 */
export function groundTruthScore(prompt: string, response: string): number {
  const p = scoreParts(prompt, response);
  return p.sameDigits ? 0.5 + 0.4 * p.order + 0.1 * (p.format ? 1 : 0) : 0.4 * p.overlap;
}
