import type { TensorDataType, TensorValues } from '@rlhf/onnx';

/** Element types a graph tensor can have (the ONNX types this project uses). */
export type DType = TensorDataType;

/** One dimension: a size, a symbolic name shared by equal sizes ('batch'), or null when unknown. */
export type Dim = number | string | null;

/** A shape of known rank. */
export type Shape = readonly Dim[];

/** Host data for constants and initializers (the typed array of the dtype; float16 as Uint16Array bits). */
export type TensorData = TensorValues;

export const isFloat = (dtype: DType): boolean =>
  dtype === 'float32' || dtype === 'float64' || dtype === 'float16';

export const isNumeric = (dtype: DType): boolean => dtype !== 'bool';

export const formatShape = (shape: Shape): string =>
  `[${shape.map((d) => (d === null ? '?' : String(d))).join(',')}]`;

/** Number of elements when every dim is a number, else null. */
export const sizeOf = (shape: Shape): number | null =>
  shape.every((d) => typeof d === 'number') ? (shape as number[]).reduce((a, b) => a * b, 1) : null;
