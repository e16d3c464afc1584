// Text similarity metrics of the text_similarity grader, each in [0, 1] (1 = the same text). Texts are compared
// after Unicode NFC normalisation; the token metrics use `words`: maximal runs of letters, marks and digits,
// lowercased (SQuAD-style, without its English-only article removal).

/** Lowercased runs of letters, combining marks and digits. */
export function words(text: string): string[] {
  return (
    text
      .normalize('NFC')
      .toLowerCase()
      .match(/[\p{L}\p{M}\p{N}]+/gu) ?? []
  );
}

/** Cells one quadratic comparison (edit distance, LCS) may fill: about a second; 11 585 × 11 585 items. */
export const MAX_QUADRATIC_CELLS = 2 ** 27;

/**
 * The longer sequence cut so that |longer| · |shorter| ≤ MAX_QUADRATIC_CELLS, and how many items were cut.
 * Callers turn the cut into a lower bound of the score (never over-rewarding): each cut item counts as an
 * edit (edit distance) or as unmatched (LCS).
 */
function withinBudget<T>(
  a: readonly T[],
  b: readonly T[],
): { longer: readonly T[]; shorter: readonly T[]; cut: number } {
  const [longer, shorter] = a.length >= b.length ? [a, b] : [b, a];
  const keep = Math.max(shorter.length, Math.floor(MAX_QUADRATIC_CELLS / Math.max(1, shorter.length)));
  return keep >= longer.length
    ? { longer, shorter, cut: 0 }
    : { longer: longer.slice(0, keep), shorter, cut: longer.length - keep };
}

/** Levenshtein distance (unit-cost insert, delete, substitute) by the two-row Wagner–Fischer DP. */
export function levenshtein(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  if (a.length < b.length) [a, b] = [b, a];
  let previous = Int32Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++) {
      const substitute = previous[j - 1] + (ai === b[j - 1] ? 0 : 1);
      current[j] = Math.min(substitute, previous[j] + 1, current[j - 1] + 1);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length];
}

const codePoints = (text: string): number[] => {
  const out: number[] = [];
  for (const c of text.normalize('NFC')) out.push(c.codePointAt(0) as number);
  return out;
};

/**
 * Normalised edit similarity: 1 − lev(a, b) / max(|a|, |b|) over code points; 1 for two empty texts. Past
 * MAX_QUADRATIC_CELLS the longer text's tail counts as edits: lev ≤ lev(head, b) + |tail| (a lower bound of the score).
 */
export function editSimilarity(response: string, reference: string): number {
  const [a, b] = [codePoints(response), codePoints(reference)];
  const longest = Math.max(a.length, b.length);
  if (longest === 0) return 1;
  const { longer, shorter, cut } = withinBudget(a, b);
  return 1 - Math.min(longest, levenshtein(longer, shorter) + cut) / longest;
}

const counts = (items: readonly string[]): Map<string, number> => {
  const out = new Map<string, number>();
  for (const item of items) out.set(item, (out.get(item) ?? 0) + 1);
  return out;
};

/** Size of the multiset intersection of two token lists. */
function overlap(a: readonly string[], b: readonly string[]): number {
  const left = counts(a);
  let common = 0;
  for (const token of b) {
    const n = left.get(token) ?? 0;
    if (n > 0) {
      left.set(token, n - 1);
      common++;
    }
  }
  return common;
}

/** Harmonic mean of precision and recall; 0 when both are 0. */
const f1 = (precision: number, recall: number) =>
  precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);

/** SQuAD token F1 (Rajpurkar et al. 2016): harmonic mean of token precision and recall; 1 when both have no words. */
export function tokenF1(response: string, reference: string): number {
  const [candidate, wanted] = [words(response), words(reference)];
  if (candidate.length === 0 || wanted.length === 0) return candidate.length === wanted.length ? 1 : 0;
  const common = overlap(candidate, wanted);
  return f1(common / candidate.length, common / wanted.length);
}

const ngrams = (tokens: readonly string[], n: number): string[] =>
  Array.from({ length: Math.max(0, tokens.length - n + 1) }, (_, i) => tokens.slice(i, i + n).join('\u0000'));

/**
 * Sentence BLEU-4 (Papineni et al. 2002) with uniform weights and add-one smoothing of the 2- to 4-gram
 * precisions (Lin & Och 2004, "BLEU+1"): p1 = m1/c1, pn = (mn + 1)/(cn + 1), BP = min(1, exp(1 − r/c)),
 * BLEU = BP · (p1·p2·p3·p4)^(1/4). 0 for an empty response, 1 when both are empty.
 */
export function bleu(response: string, reference: string): number {
  const [candidate, wanted] = [words(response), words(reference)];
  if (candidate.length === 0) return wanted.length === 0 ? 1 : 0;
  let logSum = 0;
  for (let n = 1; n <= 4; n++) {
    const matched = overlap(ngrams(candidate, n), ngrams(wanted, n));
    const total = Math.max(0, candidate.length - n + 1);
    const precision = n === 1 ? matched / total : (matched + 1) / (total + 1);
    if (precision === 0) return 0;
    logSum += Math.log(precision) / 4;
  }
  const brevity = candidate.length >= wanted.length ? 1 : Math.exp(1 - wanted.length / candidate.length);
  return brevity * Math.exp(logSum);
}

/** Length of the longest common subsequence (two-row DP). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  if (a.length < b.length) [a, b] = [b, a];
  let previous = new Int32Array(b.length + 1);
  let current = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++)
      current[j] = ai === b[j - 1] ? previous[j - 1] + 1 : Math.max(previous[j], current[j - 1]);
    [previous, current] = [current, previous];
  }
  return previous[b.length];
}

/**
 * ROUGE-L F-measure (Lin 2004, β = 1): P = LCS/|response|, R = LCS/|reference| over words; 1 when both are
 * empty. Past MAX_QUADRATIC_CELLS the longer text's tail is left unmatched (a lower bound of the score).
 */
export function rougeL(response: string, reference: string): number {
  const [candidate, wanted] = [words(response), words(reference)];
  if (candidate.length === 0 || wanted.length === 0) return candidate.length === wanted.length ? 1 : 0;
  const { longer, shorter } = withinBudget(candidate, wanted);
  const lcs = lcsLength(longer, shorter);
  return f1(lcs / candidate.length, lcs / wanted.length);
}
