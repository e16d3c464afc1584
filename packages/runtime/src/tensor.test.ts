import { describe, expect, test } from 'vitest';
import { parseDevice } from './device.js';
import { bool, float16, float32, hostTensor, int8, int64, uint8 } from './tensor.js';

describe('host tensors', () => {
  test('constructors convert values and keep a typed array of the right kind as is', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = float32([2, 3], data);
    expect(t).toEqual({ type: 'float32', dims: [2, 3], data });
    expect(t.data).toBe(data);
    expect(float32([2], [0.5, -1]).data).toEqual(new Float32Array([0.5, -1]));
    expect(int64([2], [-1, 2 ** 40]).data).toEqual(new BigInt64Array([-1n, 2n ** 40n]));
    expect(int64([], [5n]).dims).toEqual([]);
    expect(bool([3], [true, false, 1]).data).toEqual(new Uint8Array([1, 0, 1]));
    expect(float16([2], [1, -2]).data).toEqual(new Uint16Array([0x3c00, 0xc000]));
    expect(int8([2], [-128, 127]).data).toEqual(new Int8Array([-128, 127]));
    expect(uint8([0, 4], []).data).toEqual(new Uint8Array(0));
    expect(hostTensor('float64', [1], [Math.PI]).data).toEqual(new Float64Array([Math.PI]));
  });

  test('data must fill the dims exactly', () => {
    expect(() => float32([2, 2], [1, 2, 3])).toThrow(
      'tensor: 3 float32 values do not fill dims [2, 2] (4 elements)',
    );
    expect(() => float32([-1], [])).toThrow('tensor: dims must be non-negative integers, got [-1]');
    expect(() => int64([1], [0.5])).toThrow();
  });
});

describe('parseDevice', () => {
  test('accepts cpu and cuda:N', () => {
    expect(parseDevice('cpu')).toBe('cpu');
    expect(parseDevice('cuda:0')).toBe('cuda:0');
    expect(parseDevice(' CUDA:3 ')).toBe('cuda:3');
    expect(parseDevice('cuda')).toBe('cuda:0');
  });

  test('rejects anything else with a clear error', () => {
    for (const bad of ['gpu', 'cuda:', 'cuda:-1', 'cuda:1.5', 'cuda0', '']) {
      expect(() => parseDevice(bad)).toThrow(`invalid device '${bad}': expected 'cpu' or 'cuda:N'`);
    }
  });
});
