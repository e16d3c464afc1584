// Host tensors: a data type, dims, and the typed array holding the values (row-major).
import {
  elementCount,
  isTensorDataType,
  isTypedArrayFor,
  type TensorDataType,
  type TypedArrayFor,
  toTypedArray,
} from '@rlhf/onnx';

export type { TensorDataType, TypedArrayFor } from '@rlhf/onnx';

/** A tensor in host memory; HostTensor (no argument) is the union over all data types, narrowed by `type`. */
export type HostTensor<T extends TensorDataType = TensorDataType> = T extends TensorDataType
  ? { type: T; dims: number[]; data: TypedArrayFor<T> }
  : never;

/**
 * A host tensor checked against its dims. A typed array of the right kind (TypedArrayFor<T>) is used as is,
 * not copied; other arrays are converted by value (float16 from numbers rounds to binary16; bool: truthiness).
 */
export function hostTensor<T extends TensorDataType>(
  type: T,
  dims: readonly number[],
  data: ArrayLike<number> | ArrayLike<bigint> | ArrayBufferView,
): HostTensor<T> {
  const tensor = { type, dims: [...dims], data: toTypedArray(type, data) };
  checkHostTensor(tensor, 'tensor');
  return tensor as HostTensor<T>;
}

export const float32 = (dims: readonly number[], data: ArrayLike<number> | Float32Array) =>
  hostTensor('float32', dims, data);
export const float64 = (dims: readonly number[], data: ArrayLike<number> | Float64Array) =>
  hostTensor('float64', dims, data);
/** numbers are values (rounded to binary16); a Uint16Array holds binary16 bit patterns. */
export const float16 = (dims: readonly number[], data: ArrayLike<number> | Uint16Array) =>
  hostTensor('float16', dims, data);
export const int64 = (dims: readonly number[], data: ArrayLike<bigint> | ArrayLike<number> | BigInt64Array) =>
  hostTensor('int64', dims, data);
export const int32 = (dims: readonly number[], data: ArrayLike<number> | Int32Array) =>
  hostTensor('int32', dims, data);
export const int8 = (dims: readonly number[], data: ArrayLike<number> | Int8Array) =>
  hostTensor('int8', dims, data);
export const uint8 = (dims: readonly number[], data: ArrayLike<number> | Uint8Array) =>
  hostTensor('uint8', dims, data);
export const bool = (dims: readonly number[], data: ArrayLike<boolean | number> | Uint8Array) =>
  hostTensor(
    'bool',
    dims,
    data instanceof Uint8Array ? data : Array.from(data as ArrayLike<boolean | number>, Number),
  );

/** Throws a clear error unless t is a well-formed host tensor; `what` names it in the message. */
export function checkHostTensor(t: { type: unknown; dims: unknown; data: unknown }, what: string): void {
  if (!isTensorDataType(t.type)) throw new Error(`${what}: unsupported tensor type ${String(t.type)}`);
  if (!isTypedArrayFor(t.type, t.data)) {
    const actual = (t.data as object | undefined)?.constructor?.name ?? typeof t.data;
    throw new Error(`${what}: ${t.type} data must be a ${typedArrayName(t.type)}, got ${actual}`);
  }
  if (!Array.isArray(t.dims) || !t.dims.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${what}: dims must be non-negative integers, got ${JSON.stringify(t.dims)}`);
  }
  const count = elementCount(t.dims);
  if (t.data.length !== count) {
    throw new Error(
      `${what}: ${t.data.length} ${t.type} values do not fill dims [${t.dims.join(', ')}] (${count} elements)`,
    );
  }
}

function typedArrayName(type: TensorDataType): string {
  return {
    float32: 'Float32Array',
    float64: 'Float64Array',
    float16: 'Uint16Array',
    int64: 'BigInt64Array',
    int32: 'Int32Array',
    int8: 'Int8Array',
    uint8: 'Uint8Array',
    bool: 'Uint8Array',
  }[type];
}

/** Named weights: the one container for parameters and optimizer state on the host (graph, model, stages). */
export type Weights = Map<string, Float32Array>;

/**
 * Weights -> one feed per named shape (name prefixed with `prefix`), converted to `dtype`; checks every name and
 * size. Float32 data is fed as is (no copy). The inverse is weightsOf.
 */
export function weightFeeds(
  shapes: readonly { name: string; shape: readonly number[] }[],
  weights: ReadonlyMap<string, Float32Array | Float64Array>,
  dtype: 'float32' | 'float64' = 'float32',
  prefix = '',
): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const { name, shape } of shapes) {
    const data = weights.get(name);
    if (!data) throw new Error(`parameter "${name}" is missing`);
    if (data.length !== elementCount([...shape]))
      throw new Error(`parameter "${name}" has ${data.length} values, expected shape [${shape}]`);
    feeds[prefix + name] = hostTensor(dtype, shape, data);
  }
  return feeds;
}

/** Float32 outputs (by output name) -> Weights under the names they stand for: { weight name: output name }. */
export function weightsOf(outputs: Record<string, HostTensor>, names: Record<string, string>): Weights {
  const weights: Weights = new Map();
  for (const [name, output] of Object.entries(names)) {
    const tensor = outputs[output];
    if (!tensor) throw new Error(`output "${output}" is missing`);
    if (tensor.type !== 'float32') throw new Error(`output "${output}" is ${tensor.type}, not float32`);
    weights.set(name, tensor.data);
  }
  return weights;
}
