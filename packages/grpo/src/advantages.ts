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

/** Share of groups whose G rewards are all equal (they carry no learning signal). */
export function zeroSpreadGroups(rewards: readonly number[], G: number): number {
  let flat = 0;
  forEachGroup(rewards, G, (_, group) => {
    if (group.every((r) => r === group[0])) flat++;
  });
  return flat / (rewards.length / G);
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
