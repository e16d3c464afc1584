import { describe, expect, test } from 'vitest';
import { float16Bits, ONNX_DATA_TYPE, tensorProto, tensorProtoValues } from './tensor.js';

describe('tensorProto', () => {
  test('stores little-endian raw bytes and reads them back for every data type', () => {
    const f = tensorProto('f', 'float32', [2, 2], [1, -2.5, 3, 0.125]);
    expect(Array.from(f.rawData.subarray(0, 4))).toEqual([0, 0, 0x80, 0x3f]); // 1.0f little-endian
    expect(tensorProtoValues(f)).toEqual(new Float32Array([1, -2.5, 3, 0.125]));
    expect(tensorProtoValues(tensorProto('d', 'float64', [1], [Math.PI]))).toEqual(
      new Float64Array([Math.PI]),
    );
    expect(tensorProtoValues(tensorProto('i', 'int64', [3], [-1, 2 ** 40, 0]))).toEqual(
      new BigInt64Array([-1n, 2n ** 40n, 0n]),
    );
    expect(tensorProtoValues(tensorProto('b', 'int64', [], [-7n]))).toEqual(new BigInt64Array([-7n]));
    expect(tensorProtoValues(tensorProto('i32', 'int32', [2], [-3, 4]))).toEqual(new Int32Array([-3, 4]));
    expect(tensorProtoValues(tensorProto('i8', 'int8', [2], [-3, 4]))).toEqual(new Int8Array([-3, 4]));
    expect(tensorProtoValues(tensorProto('u8', 'uint8', [2], [255, 4]))).toEqual(new Uint8Array([255, 4]));
    expect(tensorProtoValues(tensorProto('bool', 'bool', [3], [0, 1, 5]))).toEqual(new Uint8Array([0, 1, 1]));
    expect(tensorProtoValues(tensorProto('h', 'float16', [2], [1, -2]))).toEqual(
      new Uint16Array([0x3c00, 0xc000]),
    );
  });

  test('copies its input and takes a typed array of the right kind as is', () => {
    const data = new Float32Array([1, 2, 3, 4]).subarray(1, 3);
    const t = tensorProto('x', 'float32', [2], data);
    data[0] = 99;
    expect(tensorProtoValues(t)).toEqual(new Float32Array([2, 3]));
    // A Uint16Array for float16 is bit patterns, not values.
    expect(tensorProtoValues(tensorProto('h', 'float16', [1], new Uint16Array([0x7bff])))).toEqual(
      new Uint16Array([0x7bff]),
    );
    // A DataView is raw little-endian bytes.
    const bytes = new Uint8Array([0, 0, 0x80, 0x3f]);
    expect(tensorProtoValues(tensorProto('v', 'float32', [1], new DataView(bytes.buffer)))).toEqual(
      new Float32Array([1]),
    );
  });

  test('rejects data that does not fill the dims', () => {
    expect(() => tensorProto('x', 'float32', [2, 3], [1, 2, 3])).toThrow(
      "tensor 'x': 3 float32 values do not fill dims [2, 3] (6 elements)",
    );
    expect(() => tensorProto('x', 'float32', [-1], [])).toThrow('invalid tensor dims [-1]');
  });

  test('ONNX data type codes match onnx.proto', () => {
    expect(ONNX_DATA_TYPE).toEqual({
      float32: 1,
      uint8: 2,
      int8: 3,
      int32: 6,
      int64: 7,
      bool: 9,
      float16: 10,
      float64: 11,
    });
  });
});

describe('float16Bits', () => {
  test('rounds to the nearest binary16 value, ties to even', () => {
    expect(float16Bits(0)).toBe(0);
    expect(float16Bits(-0)).toBe(0x8000);
    expect(float16Bits(1)).toBe(0x3c00);
    expect(float16Bits(65504)).toBe(0x7bff); // largest finite half
    expect(float16Bits(65520)).toBe(0x7c00); // rounds up to inf
    expect(float16Bits(Number.POSITIVE_INFINITY)).toBe(0x7c00);
    expect(float16Bits(Number.NaN) & 0x7e00).toBe(0x7e00);
    expect(float16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float16Bits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(float16Bits(2 ** -26)).toBe(0); // below half the smallest subnormal
    expect(float16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie: to even (down)
    expect(float16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: to even (up)
    expect(float16Bits(0.1)).toBe(0x2e66);
  });
});
