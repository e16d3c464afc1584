// Position-bias control for pairwise judges: every pair is judged in both orders (the swap of Zheng et al.
// 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", §3.3/§4.2), the two verdicts combined by
// consistency (an order-dependent verdict becomes a tie) or by averaging, and the bias measured.
import { type Outcome, outcomeOfDifference, outcomeScore } from './win-rate.js';

/** One question to a pairwise judge: which of two responses to `prompt` is better. */
export interface JudgeRequest {
  prompt: string;
  first: string;
  second: string;
}

/** A pairwise judge: P(first is better) in [0, 1] for each request, in order (batched for model judges). */
export type PairwiseJudge = (
  requests: readonly JudgeRequest[],
) => readonly number[] | Promise<readonly number[]>;

/** The responses of model A and model B to one prompt. */
export interface ResponsePair {
  prompt: string;
  a: string;
  b: string;
}

export interface SwappedVerdictOptions {
  /** |P − 1/2| ≤ tieMargin is a tie (default 0: only exactly 1/2). */
  tieMargin?: number;
}

export interface SwappedVerdict {
  prompt: string;
  /** P(A better) with A shown first. */
  pAFirst: number;
  /** P(B better) with B shown first. */
  pBFirst: number;
  /** P(A better) averaged over both orders: (pAFirst + 1 − pBFirst) / 2. */
  pAverage: number;
  /** A's outcome with A first, and with B first. */
  aFirst: Outcome;
  bFirst: Outcome;
  /** The verdict when both orders agree, else a tie. */
  consistent: Outcome;
  /** The verdict of pAverage. */
  averaged: Outcome;
  /** The verdict changed with the order. */
  flipped: boolean;
}

export interface PositionBias {
  /** Fraction of pairs whose verdict changes with the order (1 − Zheng et al.'s consistency). */
  flipRate: number;
  /** Of the flipped pairs, those that favour the response shown first, and those that favour the second. */
  favouredFirst: number;
  favouredSecond: number;
  /** Mean P(first is better) over both orders of every pair: 1/2 for a judge with no position preference. */
  meanFirstPreference: number;
}

export interface SwappedVerdicts {
  rows: SwappedVerdict[];
  /** A's outcomes per pair: one order only (A first, B first), and the two combinations. */
  outcomes: { aFirst: Outcome[]; bFirst: Outcome[]; consistent: Outcome[]; averaged: Outcome[] };
  positionBias: PositionBias;
}

/** A verdict from a judge's P(A better): a tie within tieMargin of 1/2. */
export function outcomeOfPreference(pA: number, tieMargin: number): Outcome {
  return outcomeOfDifference(pA - 0.5, tieMargin);
}

/** P(A better) averaged over both orders: (P(A ≻ B | A first) + 1 − P(B ≻ A | B first)) / 2. */
export function swapAveragedPreference(pAFirst: number, pBFirst: number): number {
  return 0.5 + (pAFirst - pBFirst) / 2; // this form is exactly 1/2 when both orders say the same
}

/** Keeps a verdict only when both orders agree (Zheng et al. 2023 §3.3: inconsistent → tie). */
export function consistentOutcome(aFirst: Outcome, bFirst: Outcome): Outcome {
  return aFirst === bFirst ? aFirst : 'tie';
}

function checkedProbability(value: number, index: number): number {
  if (!(value >= 0 && value <= 1))
    throw new RangeError(`judge answer ${index} is not a probability: ${value}`);
  return value;
}

/** Judges every pair in both orders (one judge call, 2n requests) and combines and measures the verdicts. */
export async function swappedVerdicts(
  judge: PairwiseJudge,
  pairs: readonly ResponsePair[],
  options: SwappedVerdictOptions = {},
): Promise<SwappedVerdicts> {
  if (pairs.length === 0) throw new RangeError('swappedVerdicts needs at least one pair');
  const tieMargin = options.tieMargin ?? 0;
  if (!(tieMargin >= 0 && tieMargin < 0.5))
    throw new RangeError(`tieMargin must be in [0, 0.5), got ${tieMargin}`);
  const requests: JudgeRequest[] = [
    ...pairs.map((p) => ({ prompt: p.prompt, first: p.a, second: p.b })),
    ...pairs.map((p) => ({ prompt: p.prompt, first: p.b, second: p.a })),
  ];
  const answers = await judge(requests);
  if (answers.length !== requests.length) {
    throw new RangeError(`judge answered ${answers.length} of ${requests.length} requests`);
  }
  const n = pairs.length;
  let firstPreference = 0;
  let favouredFirst = 0;
  let favouredSecond = 0;
  const rows = pairs.map((pair, i): SwappedVerdict => {
    const pAFirst = checkedProbability(answers[i], i);
    const pBFirst = checkedProbability(answers[n + i], n + i);
    firstPreference += pAFirst + pBFirst;
    const aFirst = outcomeOfPreference(pAFirst, tieMargin);
    const bFirst = outcomeOfPreference(1 - pBFirst, tieMargin);
    const pAverage = swapAveragedPreference(pAFirst, pBFirst);
    const flipped = aFirst !== bFirst;
    if (flipped && outcomeScore(aFirst) > outcomeScore(bFirst)) favouredFirst++;
    else if (flipped) favouredSecond++;
    return {
      prompt: pair.prompt,
      pAFirst,
      pBFirst,
      pAverage,
      aFirst,
      bFirst,
      consistent: consistentOutcome(aFirst, bFirst),
      averaged: outcomeOfPreference(pAverage, tieMargin),
      flipped,
    };
  });
  return {
    rows,
    outcomes: {
      aFirst: rows.map((r) => r.aFirst),
      bFirst: rows.map((r) => r.bFirst),
      consistent: rows.map((r) => r.consistent),
      averaged: rows.map((r) => r.averaged),
    },
    positionBias: {
      flipRate: (favouredFirst + favouredSecond) / n,
      favouredFirst,
      favouredSecond,
      meanFirstPreference: firstPreference / (2 * n),
    },
  };
}
