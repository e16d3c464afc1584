// Tensor data types and TensorProto payloads (raw little-endian bytes, as ONNX's raw_data).

export type TensorDataType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int64'
  | 'int32'
  | 'int8'
  | 'uint8'
  | 'bool';

/** TensorProto.DataType codes from onnx.proto. */
export const ONNX_DATA_TYPE: Record<TensorDataType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

export type TypedArrayFor<T extends TensorDataType> = {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}[T];

export type TensorValues = TypedArrayFor<TensorDataType>;

export interface TensorProto {
  name: string;
  dataType: TensorDataType;
  dims: number[];
  /** Little-endian raw bytes (ONNX raw_data). */
  rawData: Uint8Array;
}

type TypedArrayConstructor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Uint16ArrayConstructor
  | BigInt64ArrayConstructor
  | Int32ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor;

const ARRAY_TYPE: Record<TensorDataType, TypedArrayConstructor> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

const DATA_TYPE_BY_CODE = new Map(
  Object.entries(ONNX_DATA_TYPE).map(([name, code]) => [code, name as TensorDataType]),
);

// raw_data is little-endian; typed arrays use the host's byte order, so we need a little-endian host.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
  throw new Error('@rlhf/onnx needs a little-endian host');

export function isTensorDataType(value: unknown): value is TensorDataType {
  return typeof value === 'string' && value in ONNX_DATA_TYPE;
}

/** Whether data is the typed array that holds `dataType` values (see TypedArrayFor). */
export function isTypedArrayFor<T extends TensorDataType>(
  dataType: T,
  data: unknown,
): data is TypedArrayFor<T> {
  return data instanceof ARRAY_TYPE[dataType];
}

/** The TensorDataType of a TensorProto.DataType code; throws on codes we do not support. */
export function dataTypeFromCode(code: number): TensorDataType {
  const dataType = DATA_TYPE_BY_CODE.get(code);
  if (dataType === undefined) throw new Error(`unsupported ONNX tensor data type code ${code}`);
  return dataType;
}

/** Number of elements of a tensor with these dims ([] is a scalar: 1). */
export function elementCount(dims: readonly number[]): number {
  let count = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor dims [${dims.join(', ')}]`);
    count *= d;
  }
  return count;
}

/**
 * Values as the typed array of `dataType`. A typed array of exactly that kind is returned as is;
 * other arrays are converted by value (float16 from numbers: IEEE half rounding to nearest even;
 * bool: truthiness). A DataView is read as raw little-endian bytes.
 */
export function toTypedArray<T extends TensorDataType>(
  dataType: T,
  data: ArrayLike<number> | ArrayLike<bigint> | ArrayBufferView,
): TypedArrayFor<T> {
  const Ctor = ARRAY_TYPE[dataType];
  if (data instanceof Ctor) return data as TypedArrayFor<T>;
  if (data instanceof DataView) {
    if (data.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) {
      throw new Error(`${data.byteLength} bytes is not a whole number of ${dataType} elements`);
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    return new Ctor(bytes.buffer, 0, bytes.byteLength / Ctor.BYTES_PER_ELEMENT) as TypedArrayFor<T>;
  }
  if (ArrayBuffer.isView(data) && !('length' in data)) throw new Error('unsupported ArrayBufferView');
  const values = data as ArrayLike<number | bigint>;
  const n = values.length;
  if (dataType === 'int64') {
    const out = new BigInt64Array(n);
    for (let k = 0; k < n; k++) out[k] = BigInt(values[k]);
    return out as TypedArrayFor<T>;
  }
  const out = new Ctor(n) as Exclude<TensorValues, BigInt64Array>;
  const convert =
    dataType === 'float16'
      ? float16Bits
      : dataType === 'bool'
        ? (x: number) => (x ? 1 : 0)
        : (x: number) => x;
  for (let k = 0; k < n; k++) out[k] = convert(Number(values[k]));
  return out as TypedArrayFor<T>;
}

/** A TensorProto holding a copy of `data` (see toTypedArray for how values are converted). */
export function tensorProto(
  name: string,
  dataType: TensorDataType,
  dims: number[],
  data: ArrayLike<number> | ArrayLike<bigint> | ArrayBufferView,
): TensorProto {
  const values = toTypedArray(dataType, data);
  const count = elementCount(dims);
  if (values.length !== count) {
    throw new Error(
      `tensor '${name}': ${values.length} ${dataType} values do not fill dims [${dims.join(', ')}] (${count} elements)`,
    );
  }
  const rawData = new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice();
  return { name, dataType, dims: [...dims], rawData };
}

/** The values of a TensorProto as a fresh typed array (float16 as Uint16Array bit patterns). */
export function tensorProtoValues(t: TensorProto): TensorValues {
  const Ctor = ARRAY_TYPE[t.dataType];
  const count = elementCount(t.dims);
  if (t.rawData.byteLength !== count * Ctor.BYTES_PER_ELEMENT) {
    throw new Error(
      `tensor '${t.name}': ${t.rawData.byteLength} bytes do not hold ${count} ${t.dataType} elements (dims [${t.dims.join(', ')}])`,
    );
  }
  const bytes = t.rawData.slice(); // fresh, aligned buffer
  return new Ctor(bytes.buffer, 0, count);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bit pattern of x, rounded to nearest even. */
export function float16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow: inf
  const [bits, shift] = e <= 0 ? [mant | 0x800000, 14 - e] : [mant, 13]; // subnormal half: implicit 1 shifted in
  if (shift > 24) return sign; // underflow: signed zero
  let half = bits >>> shift;
  const rest = bits & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && half & 1)) half++;
  return sign | (e <= 0 ? half : (e << 10) + half); // a rounding carry may roll into the exponent: correct
}
