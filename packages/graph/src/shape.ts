import type { Dim, Shape } from './types.js';

/** Whether two dims can be the same size (unknown and symbolic dims can be anything). */
export const dimsCompatible = (a: Dim, b: Dim): boolean =>
  typeof a !== 'number' || typeof b !== 'number' || a === b;

/** The broadcast of two dims (NumPy rules), or undefined when they can never broadcast. */
export function broadcastDim(a: Dim, b: Dim): Dim | undefined {
  if (a === b) return a;
  if (a === 1) return b;
  if (b === 1) return a;
  if (typeof a === 'number' && typeof b === 'number') return undefined;
  // A known size > 1 wins over a symbolic one (which must then be 1 or equal); otherwise unknown.
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return null;
}

/** The NumPy broadcast of several shapes, or undefined when they are incompatible. */
export function broadcastShapes(shapes: readonly Shape[]): Dim[] | undefined {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim | undefined = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i];
      if (d === undefined) continue;
      dim = broadcastDim(dim as Dim, d);
      if (dim === undefined) return undefined;
    }
    out.push(dim as Dim);
  }
  return out;
}

/** Product of dims as a dim: a number, a single symbol times 1, or null when it cannot be said. */
export function productDim(dims: readonly Dim[]): Dim {
  let n = 1;
  const symbols: string[] = [];
  for (const d of dims) {
    if (d === null) return null;
    if (typeof d === 'number') n *= d;
    else symbols.push(d);
  }
  if (symbols.length === 0) return n;
  if (symbols.length === 1 && n === 1) return symbols[0];
  return n === 0 ? 0 : null;
}

/** Divides a product of dims by another (used by Reshape's -1), cancelling equal symbols. */
export function quotientDim(numerator: readonly Dim[], denominator: readonly Dim[]): Dim {
  if (numerator.includes(null) || denominator.includes(null)) return null;
  const num = [...numerator];
  const den: Dim[] = [];
  for (const d of denominator) {
    const i = typeof d === 'string' ? num.indexOf(d) : -1;
    if (i >= 0) num.splice(i, 1);
    else den.push(d);
  }
  const top = productDim(num);
  const bottom = productDim(den);
  if (typeof top === 'number' && typeof bottom === 'number') return bottom === 0 ? null : top / bottom;
  if (bottom === 1) return top;
  return null;
}
