/** Element types a graph tensor can have (the subset of ONNX types this project uses). */
export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

/** One dimension: a size, a symbolic name shared by equal sizes ('batch'), or null when unknown. */
export type Dim = number | string | null;

/** A shape of known rank. */
export type Shape = readonly Dim[];

/** Host data for constants and initializers. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int8Array
  | Uint8Array;

export const isFloat = (dtype: DType): boolean =>
  dtype === 'float32' || dtype === 'float64' || dtype === 'float16';

export const isInteger = (dtype: DType): boolean =>
  dtype === 'int64' || dtype === 'int32' || dtype === 'int8' || dtype === 'uint8';

export const isNumeric = (dtype: DType): boolean => dtype !== 'bool';

export const formatShape = (shape: Shape): string =>
  `[${shape.map((d) => (d === null ? '?' : typeof d === 'string' ? d : String(d))).join(',')}]`;

/** Number of elements when every dim is a number, else null. */
export const sizeOf = (shape: Shape): number | null =>
  shape.every((d) => typeof d === 'number') ? (shape as number[]).reduce((a, b) => a * b, 1) : null;

/** Converts plain numbers into the typed array ONNX Runtime expects for `dtype`. */
export function toTypedArray(dtype: DType, values: ArrayLike<number | bigint | boolean>): TensorData {
  const n = values.length;
  const num = (i: number) => Number(values[i]);
  switch (dtype) {
    case 'float32':
      return Float32Array.from({ length: n }, (_, i) => num(i));
    case 'float64':
      return Float64Array.from({ length: n }, (_, i) => num(i));
    case 'float16':
      return Uint16Array.from({ length: n }, (_, i) => toHalf(num(i)));
    case 'int64':
      return BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(num(i))));
    case 'int32':
      return Int32Array.from({ length: n }, (_, i) => num(i));
    case 'int8':
      return Int8Array.from({ length: n }, (_, i) => num(i));
    case 'uint8':
      return Uint8Array.from({ length: n }, (_, i) => num(i));
    case 'bool':
      return Uint8Array.from({ length: n }, (_, i) => (num(i) ? 1 : 0));
  }
}

/** IEEE 754 binary16 bits of a number (round to nearest even). */
export function toHalf(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rem > mid || (rem === mid && half & 1) ? half + 1 : half);
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  e = rem > 0x1000 || (rem === 0x1000 && half & 1) ? half + 1 : half;
  return sign | e;
}
