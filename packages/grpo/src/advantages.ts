// Critic-free advantages of G responses to one prompt, from their rewards alone: the group is its own baseline.

/**
 * GRPO (Shao et al. 2024 §4.1.2): A_i = (r_i − mean(r)) / std(r) per group of G (population std, as TRL);
 * scaleByStd false is Dr. GRPO (Liu et al. 2025): r_i − mean(r). A group whose rewards are all equal gets 0.
 */
export function grpoAdvantages(rewards: readonly number[], G: number, scaleByStd = true): Float32Array {
  const out = new Float32Array(rewards.length);
  forEachGroup(rewards, G, (start, group) => {
    const mean = group.reduce((a, x) => a + x, 0) / G;
    const std = Math.sqrt(group.reduce((a, x) => a + (x - mean) ** 2, 0) / G);
    group.forEach((r, i) => {
      out[start + i] = scaleByStd ? (std > 0 ? (r - mean) / std : 0) : r - mean;
    });
  });
  return out;
}

/** RLOO (Ahmadian et al. 2024 eq. 5): A_i = r_i − mean of the other G − 1 rewards of its group. */
export function rlooAdvantages(rewards: readonly number[], G: number): Float32Array {
  if (G < 2) throw new RangeError('rlooAdvantages: a leave-one-out baseline needs G >= 2');
  const out = new Float32Array(rewards.length);
  forEachGroup(rewards, G, (start, group) => {
    const sum = group.reduce((a, x) => a + x, 0);
    group.forEach((r, i) => {
      out[start + i] = r - (sum - r) / (G - 1);
    });
  });
  return out;
}

/** Whether each group's G rewards are all equal: no learning signal (DAPO's dynamic sampling drops these). */
export function flatGroups(rewards: readonly number[], G: number): boolean[] {
  const flat: boolean[] = [];
  forEachGroup(rewards, G, (_, group) => {
    flat.push(group.every((r) => r === group[0]));
  });
  return flat;
}

/** Share of groups whose G rewards are all equal (they carry no learning signal). */
export function zeroSpreadGroups(rewards: readonly number[], G: number): number {
  const flat = flatGroups(rewards, G);
  return flat.filter(Boolean).length / flat.length;
}

/** Mean over groups of the population std of their G rewards (TRL's reward_std). */
export function meanGroupStd(rewards: readonly number[], G: number): number {
  let sum = 0;
  forEachGroup(rewards, G, (_, group) => {
    const m = group.reduce((a, x) => a + x, 0) / G;
    sum += Math.sqrt(group.reduce((a, x) => a + (x - m) ** 2, 0) / G);
  });
  return sum / (rewards.length / G);
}

/**
 * Sequence advantages [rows] at each real token of their row, as the train graph takes them: [rows, width]
 * row-major, 0 off the mask (GRPO / RLOO give every token of a response its sequence's advantage).
 */
export function perTokenAdvantages(
  advantages: ArrayLike<number>,
  mask: ArrayLike<number>,
  width: number,
): Float32Array {
  if (mask.length !== advantages.length * width)
    throw new RangeError(
      `perTokenAdvantages: mask has ${mask.length} entries, not ${advantages.length} × ${width}`,
    );
  const out = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) if (mask[i]) out[i] = advantages[Math.floor(i / width)];
  return out;
}

function forEachGroup(
  rewards: readonly number[],
  G: number,
  visit: (start: number, group: number[]) => void,
) {
  if (!Number.isInteger(G) || G < 1 || rewards.length % G !== 0)
    throw new RangeError(`${rewards.length} rewards are not whole groups of ${G}`);
  for (let start = 0; start < rewards.length; start += G) visit(start, rewards.slice(start, start + G));
}
