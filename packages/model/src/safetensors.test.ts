import { describe, expect, it } from 'vitest';
import {
  bf16ToF32,
  CheckpointError,
  f16ToF32,
  f32ToF16,
  readSafetensors,
  type SafeTensor,
  tensorToFloat32,
  writeSafetensors,
} from './safetensors.js';

/** A safetensors file assembled by hand from the spec: u64 LE header length, JSON header, bytes. */
function rawFile(
  header: unknown,
  data: number[] | Uint8Array,
  headerText = JSON.stringify(header),
): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function expectCheckpointError(fn: () => unknown, message: RegExp, tensor?: string): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as CheckpointError).message).toMatch(message);
    expect((error as CheckpointError).tensor).toBe(tensor);
    return;
  }
  throw new Error(`expected a CheckpointError matching ${message}`);
}

describe('writeSafetensors / readSafetensors', () => {
  it('round trips every dtype, shape and the metadata', () => {
    const tensors = new Map<string, SafeTensor>([
      ['w', { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-8, -7]) }],
      ['half', { dtype: 'F16', shape: [3], data: f32ToF16(new Float32Array([1, -0.5, 65504])) }],
      ['brain', { dtype: 'BF16', shape: [1], data: new Uint16Array([0x3f80]) }],
      ['double', { dtype: 'F64', shape: [2], data: new Float64Array([Math.PI, -1e300]) }],
      ['ids', { dtype: 'I64', shape: [2], data: new BigInt64Array([-3n, 2n ** 62n]) }],
      ['i32', { dtype: 'I32', shape: [1], data: new Int32Array([-5]) }],
      ['mask', { dtype: 'BOOL', shape: [1, 3], data: new Uint8Array([1, 0, 1]) }],
      ['scalar', { dtype: 'F32', shape: [], data: new Float32Array([4]) }],
      ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
    ]);
    const bytes = writeSafetensors(tensors, { format: 'pt', step: '12' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0); // padded with spaces so the data starts 8-aligned
    const { tensors: read, metadata } = readSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt', step: '12' });
    expect([...read.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, tensor] of tensors) expect(read.get(name)).toEqual(tensor);
  });

  it('reads a file built by hand from the spec, with unaligned offsets and header padding', () => {
    const header = {
      __metadata__: { note: 'hi' },
      b: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
      a: { dtype: 'F32', shape: [2], data_offsets: [3, 11] },
    };
    const data = new Uint8Array([7, 8, 9, ...f32Bytes([1.5, -2])]);
    const { tensors, metadata } = readSafetensors(rawFile(header, data, `${JSON.stringify(header)}   `));
    expect(metadata).toEqual({ note: 'hi' });
    expect(tensors.get('a')).toEqual({ dtype: 'F32', shape: [2], data: new Float32Array([1.5, -2]) });
    expect(tensors.get('b')).toEqual({ dtype: 'U8', shape: [3], data: new Uint8Array([7, 8, 9]) });
  });

  it('reads from a Uint8Array view into a larger buffer', () => {
    const file = writeSafetensors(
      new Map([['x', { dtype: 'F32', shape: [1], data: new Float32Array([3]) }]]),
    );
    const larger = new Uint8Array(file.length + 5);
    larger.set(file, 5);
    expect(readSafetensors(larger.subarray(5)).tensors.get('x')!.data).toEqual(new Float32Array([3]));
  });

  it('rejects bad headers', () => {
    expectCheckpointError(() => readSafetensors(new Uint8Array(5)), /too short/);
    const tooLong = rawFile({}, []);
    new DataView(tooLong.buffer).setBigUint64(0, 1000n, true);
    expectCheckpointError(() => readSafetensors(tooLong), /header length 1000 exceeds the file/);
    expectCheckpointError(() => readSafetensors(rawFile(null, [], '{"a": ')), /not valid UTF-8 JSON/);
    expectCheckpointError(() => readSafetensors(rawFile(null, [], '[1,2]')), /must start with "\{"/);
    expectCheckpointError(
      () => readSafetensors(rawFile(null, [], '{"__metadata__": {"a": 1}}')),
      /must be a string/,
    );
  });

  it('rejects bad tensor entries, naming the tensor', () => {
    const data = f32Bytes([1, 2]);
    const entry = (e: Record<string, unknown>) => rawFile({ t: e }, data);
    expectCheckpointError(
      () => readSafetensors(entry({ dtype: 'F8_E5M2', shape: [2], data_offsets: [0, 8] })),
      /tensor "t": unknown dtype/,
      't',
    );
    expectCheckpointError(
      () => readSafetensors(entry({ dtype: 'F32', shape: [3], data_offsets: [0, 8] })),
      /tensor "t": F32 shape \[3\] needs 12 bytes, data_offsets span 8/,
      't',
    );
    expectCheckpointError(
      () => readSafetensors(entry({ dtype: 'F32', shape: [4], data_offsets: [0, 16] })),
      /tensor "t": data_offsets \[0,16\] out of range \[0, 8\]/,
      't',
    );
    expectCheckpointError(
      () => readSafetensors(entry({ dtype: 'F32', shape: [-1], data_offsets: [0, 8] })),
      /tensor "t": invalid shape/,
      't',
    );
    expectCheckpointError(
      () => readSafetensors(entry({ dtype: 'F32', shape: [2], data_offsets: [8, 0] })),
      /tensor "t": data_offsets/,
      't',
    );
  });

  it('requires the tensors to cover the byte buffer exactly', () => {
    const f = (a: number[], b: number[], length: number) =>
      rawFile(
        {
          a: { dtype: 'F32', shape: [(a[1] - a[0]) / 4], data_offsets: a },
          b: { dtype: 'F32', shape: [(b[1] - b[0]) / 4], data_offsets: b },
        },
        new Uint8Array(length),
      );
    expect(readSafetensors(f([0, 8], [8, 12], 12)).tensors.size).toBe(2);
    expectCheckpointError(
      () => readSafetensors(f([0, 8], [4, 12], 12)),
      /tensor "b" overlaps tensor "a"/,
      'b',
    );
    expectCheckpointError(
      () => readSafetensors(f([0, 4], [8, 12], 12)),
      /bytes \[4, 8\) before tensor "b"/,
      'b',
    );
    expectCheckpointError(() => readSafetensors(f([0, 4], [4, 8], 12)), /bytes \[8, 12\) at the end/);
  });

  it('rejects tensors whose data does not match dtype and shape when writing', () => {
    const bad = new Map<string, SafeTensor>([
      ['w', { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }],
    ]);
    expectCheckpointError(() => writeSafetensors(bad), /tensor "w": F32 shape \[2,2\] needs 4 elements/, 'w');
    const wrongArray = new Map([
      ['w', { dtype: 'F32', shape: [2], data: new Float64Array(2) } as unknown as SafeTensor],
    ]);
    expectCheckpointError(
      () => writeSafetensors(wrongArray),
      /in a Float32Array, got 2 in a Float64Array/,
      'w',
    );
    const reserved = new Map<string, SafeTensor>([
      ['__metadata__', { dtype: 'U8', shape: [0], data: new Uint8Array() }],
    ]);
    expectCheckpointError(() => writeSafetensors(reserved), /invalid tensor name/, '__metadata__');
  });
});

describe('half and bfloat16 conversion', () => {
  it('decodes IEEE half bit patterns', () => {
    const bits = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x3555]);
    const values = f16ToF32(bits);
    expect(Array.from(values.subarray(0, 8))).toEqual([
      1,
      -2,
      65504,
      2 ** -24,
      2 ** -14,
      -0,
      Infinity,
      -Infinity,
    ]);
    expect(values[8]).toBeCloseTo(1 / 3, 3);
    expect(Number.isNaN(f16ToF32(new Uint16Array([0x7e00]))[0])).toBe(true);
  });

  it('encodes with round-to-nearest-even, overflow to infinity and subnormals', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [1 + 2 ** -11, 0x3c00], // halfway: ties to the even mantissa
      [1 + 3 * 2 ** -11, 0x3c02], // halfway: ties up to the even mantissa
      [65504, 0x7bff],
      [65520, 0x7c00], // rounds past the largest half
      [-1e10, 0xfc00],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], // halfway to the smallest subnormal: ties to 0
      [3 * 2 ** -26, 0x0001],
      [2 ** -14 - 2 ** -25, 0x0400], // rounds up from the largest subnormal into the normals
    ];
    const encoded = f32ToF16(new Float32Array(cases.map(([v]) => v)));
    expect(Array.from(encoded)).toEqual(cases.map(([, bits]) => bits));
    expect(f32ToF16(new Float32Array([Number.NaN]))[0] & 0x7e00).toBe(0x7e00);
  });

  it('round trips every finite half value through float32', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    const mismatches: string[] = [];
    for (let i = 0; i < 65536; i++) {
      const nanBits = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0; // NaN payloads are not preserved
      if (!nanBits && back[i] !== i) mismatches.push(`0x${i.toString(16)} -> 0x${back[i].toString(16)}`);
    }
    expect(mismatches).toEqual([]);
  });

  it('decodes bfloat16 and converts float tensors to float32', () => {
    expect(Array.from(bf16ToF32(new Uint16Array([0x3f80, 0xc049, 0xff80])))).toEqual([
      1,
      -3.140625,
      -Infinity,
    ]);
    expect(tensorToFloat32({ dtype: 'F64', shape: [1], data: new Float64Array([0.5]) }, 'x')).toEqual(
      new Float32Array([0.5]),
    );
    expect(() => tensorToFloat32({ dtype: 'I64', shape: [1], data: new BigInt64Array(1) }, 'ids')).toThrow(
      /tensor "ids": expected a floating-point dtype/,
    );
  });
});
