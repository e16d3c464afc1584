// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__ },
// then the byte buffer, which the tensors must cover exactly (no holes, no overlaps).

/** A checkpoint file or directory that cannot be used; `tensor` names the offending tensor when there is one. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
  constructor(
    message: string,
    readonly tensor?: string,
  ) {
    super(message);
  }
}

interface DtypeArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array; // raw IEEE half bits; f16ToF32 converts
  BF16: Uint16Array; // raw bfloat16 bits; bf16ToF32 converts
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

export type Dtype = keyof DtypeArrays;

/** One tensor: its dtype, shape, and elements in row-major order. */
export type SafeTensor = { [D in Dtype]: { dtype: D; shape: number[]; data: DtypeArrays[D] } }[Dtype];

type TypedArrayClass = { new (buffer: ArrayBuffer): DtypeArrays[Dtype]; BYTES_PER_ELEMENT: number };

const ARRAY_CLASS: Record<Dtype, TypedArrayClass> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

const METADATA_KEY = '__metadata__';
const MAX_HEADER_BYTES = 100_000_000; // the reference implementation's limit
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDtype(value: unknown): value is Dtype {
  return typeof value === 'string' && Object.hasOwn(ARRAY_CLASS, value);
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => Number.isSafeInteger(d) && d >= 0);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function checkHost(): void {
  // Typed-array views read host byte order; safetensors is little-endian.
  if (!HOST_IS_LITTLE_ENDIAN) throw new CheckpointError('safetensors IO needs a little-endian host');
}

/**
 * Serialises tensors (sorted by element size, then name, so every tensor is aligned) with an
 * optional string -> string `__metadata__` map.
 */
export function writeSafetensors(
  tensors: Map<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  checkHost();
  const entries = [...tensors].sort(
    ([a, ta], [b, tb]) =>
      ARRAY_CLASS[tb.dtype].BYTES_PER_ELEMENT - ARRAY_CLASS[ta.dtype].BYTES_PER_ELEMENT || (a < b ? -1 : 1),
  );
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new CheckpointError(`metadata "${key}" must be a string`);
    }
    header[METADATA_KEY] = metadata;
  }
  let offset = 0;
  for (const [name, tensor] of entries) {
    if (name === '' || name === METADATA_KEY)
      throw new CheckpointError(`invalid tensor name "${name}"`, name);
    if (!isDtype(tensor.dtype))
      throw new CheckpointError(`tensor "${name}": unknown dtype ${tensor.dtype}`, name);
    if (!isShape(tensor.shape)) {
      throw new CheckpointError(`tensor "${name}": invalid shape ${JSON.stringify(tensor.shape)}`, name);
    }
    const cls = ARRAY_CLASS[tensor.dtype];
    if (!(tensor.data instanceof cls) || tensor.data.length !== numel(tensor.shape)) {
      throw new CheckpointError(
        `tensor "${name}": ${tensor.dtype} shape [${tensor.shape}] needs ${numel(tensor.shape)} elements in a ${cls.name}, got ${tensor.data.length} in a ${tensor.data.constructor.name}`,
        name,
      );
    }
    const end = offset + tensor.data.byteLength;
    header[name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, end] };
    offset = end;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8; // pad with spaces so the byte buffer starts 8-aligned
  if (padded !== json.length) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(json);
    json = withSpaces;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let cursor = 8 + json.length;
  for (const [, tensor] of entries) {
    out.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength), cursor);
    cursor += tensor.data.byteLength;
  }
  return out;
}

/** Parses and strictly validates a safetensors file; tensor data is copied out of `bytes`. */
export function readSafetensors(bytes: Uint8Array): {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
} {
  checkHost();
  if (bytes.length < 8) {
    throw new CheckpointError(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(bytes.length - 8, MAX_HEADER_BYTES))) {
    throw new CheckpointError(`header length ${headerLength} exceeds the file (${bytes.length} bytes)`);
  }
  const dataStart = 8 + Number(headerLength);
  if (bytes[8] !== 0x7b) throw new CheckpointError('header must start with "{"');
  const dataLength = bytes.length - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    throw new CheckpointError(`header is not valid UTF-8 JSON: ${(error as Error).message}`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) {
    throw new CheckpointError('header must be a JSON object');
  }

  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, SafeTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!entry || typeof entry !== 'object' || Array.isArray(entry)) {
        throw new CheckpointError('__metadata__ must be an object of strings');
      }
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== 'string') throw new CheckpointError(`__metadata__ "${key}" must be a string`);
        metadata[key] = value;
      }
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as Record<string, unknown>;
    if (!isDtype(dtype))
      throw new CheckpointError(`tensor "${name}": unknown dtype ${JSON.stringify(dtype)}`, name);
    if (!isShape(shape))
      throw new CheckpointError(`tensor "${name}": invalid shape ${JSON.stringify(shape)}`, name);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1] ||
      offsets[1] > dataLength
    ) {
      throw new CheckpointError(
        `tensor "${name}": data_offsets ${JSON.stringify(offsets)} out of range [0, ${dataLength}]`,
        name,
      );
    }
    const [begin, end] = offsets as [number, number];
    const cls = ARRAY_CLASS[dtype];
    const expected = numel(shape) * cls.BYTES_PER_ELEMENT;
    if (end - begin !== expected) {
      throw new CheckpointError(
        `tensor "${name}": ${dtype} shape [${shape}] needs ${expected} bytes, data_offsets span ${end - begin}`,
        name,
      );
    }
    spans.push({ name, begin, end });
    const copy = new ArrayBuffer(end - begin); // copying also fixes any misalignment
    new Uint8Array(copy).set(bytes.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { dtype, shape, data: new cls(copy) } as SafeTensor);
  }

  // The tensors must tile the byte buffer: sorted by offset, each starts where the previous ended.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous = '';
  for (const span of spans) {
    if (span.begin < cursor) {
      throw new CheckpointError(`tensor "${span.name}" overlaps tensor "${previous}"`, span.name);
    }
    if (span.begin > cursor) {
      throw new CheckpointError(
        `bytes [${cursor}, ${span.begin}) before tensor "${span.name}" belong to no tensor`,
        span.name,
      );
    }
    cursor = span.end;
    previous = span.name;
  }
  if (cursor !== dataLength) {
    throw new CheckpointError(`bytes [${cursor}, ${dataLength}) at the end of the file belong to no tensor`);
  }
  return { tensors, metadata };
}

const f32Bits = new Float32Array(1);
const u32Bits = new Uint32Array(f32Bits.buffer);

/** IEEE 754 half-precision bits -> float32 (exact). */
export function f16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = (h & 0x8000) << 16;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) {
      out[i] = (sign ? -1 : 1) * mantissa * 2 ** -24; // zero or subnormal
      continue;
    }
    u32Bits[0] =
      exponent === 0x1f
        ? sign | 0x7f800000 | (mantissa << 13)
        : sign | ((exponent + 112) << 23) | (mantissa << 13);
    out[i] = f32Bits[0];
  }
  return out;
}

/** float32 -> IEEE 754 half-precision bits, rounding to nearest even (overflow -> ±Infinity). */
export function f32ToF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32Bits[0] = values[i];
    const x = u32Bits[0];
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    let mantissa = x & 0x7fffff;
    if (exponent === 0xff) {
      out[i] = sign | 0x7c00 | (mantissa ? 0x200 : 0); // Inf or (quiet) NaN
      continue;
    }
    const e = exponent - 112; // rebias 127 -> 15
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    let shift = 13;
    let half = sign | (Math.max(e, 0) << 10);
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign; // below half the smallest subnormal
        continue;
      }
      mantissa |= 0x800000; // subnormal: shift the explicit leading 1 into the fraction
      shift = 14 - e;
      half = sign;
    }
    const kept = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    let result = half + kept;
    if (rest > halfway || (rest === halfway && (kept & 1) === 1)) result += 1; // carries into the exponent correctly
    out[i] = result;
  }
  return out;
}

/** bfloat16 bits -> float32 (exact: bfloat16 is the top half of a float32). */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const words = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) words[i] = bits[i] << 16;
  return new Float32Array(words.buffer);
}

/** A floating-point tensor's values as float32 (F64 is rounded); other dtypes are a CheckpointError. */
export function tensorToFloat32(tensor: SafeTensor, name: string): Float32Array {
  switch (tensor.dtype) {
    case 'F32':
      return tensor.data;
    case 'F64':
      return Float32Array.from(tensor.data);
    case 'F16':
      return f16ToF32(tensor.data);
    case 'BF16':
      return bf16ToF32(tensor.data);
    default:
      throw new CheckpointError(
        `tensor "${name}": expected a floating-point dtype, got ${tensor.dtype}`,
        name,
      );
  }
}
