// Session.run options: moved feeds, outputs written into them, feeds kept in the ORT thread.
import { afterAll, describe, expect, test } from 'vitest';
import { createRuntime, type Runtime } from './runtime.js';
import { float32 } from './tensor.js';
import { doubleModel, matmulModel } from './test-models.js';

let r: Runtime;
afterAll(() => r?.close());
const rt = async () => {
  r ??= await createRuntime({ intraOpNumThreads: 1 });
  return r;
};

// y = x @ w by hand, x: [m, k], w: [k, n].
const matmul = (x: Float32Array, w: Float32Array, m: number, k: number, n: number) =>
  Float32Array.from({ length: m * n }, (_, i) => {
    let s = 0;
    for (let t = 0; t < k; t++) s += x[Math.floor(i / n) * k + t] * w[t * n + (i % n)];
    return s;
  });

describe('Session.run options', () => {
  test('move + into: the output is written into the moved buffer, which comes back to the feed', async () => {
    const session = await (await rt()).createSession(doubleModel());
    const original = Float32Array.from([1, -2, 3.5, 2 ** 100]);
    const x = float32([4], original);
    const pending = session.run({ x }, ['y'], { move: ['x'], into: { y: 'x' } });
    expect(original.byteLength).toBe(0); // lent: the caller's array is detached during the run
    const out = await pending;
    expect(Array.from(x.data)).toEqual([2, -4, 7, 2 ** 101]);
    expect(x.data.buffer).toBe(out.y.data.buffer); // no copy: the output is the feed's buffer
    expect(out.y.dims).toEqual([4]);
    expect(x.data.buffer.byteLength).toBe(16);
  });

  test('a moved feed not written into comes back unchanged; copied feeds stay usable', async () => {
    const session = await (await rt()).createSession(matmulModel('float32'));
    const x = float32([2, 3], [1, 2, 3, 4, 5, 6]);
    const wData = Float32Array.from([1, 0, -1, 2, 0.5, 3]);
    const w = float32([3, 2], wData);
    const out = await session.run({ x, w }, undefined, { move: ['x'] });
    expect(out.y.data).toEqual(matmul(x.data, w.data, 2, 3, 2));
    expect(Array.from(x.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(w.data).toBe(wData); // not moved: the same array, never detached
  });

  test('a failing run hands the moved buffers back intact', async () => {
    const session = await (await rt()).createSession(matmulModel('float32'));
    const x = float32([2, 3], [1, 2, 3, 4, 5, 6]);
    const w = float32([4, 2], [1, 2, 3, 4, 5, 6, 7, 8]); // k = 4 != 3: MatMul fails inside the run
    await expect(session.run({ x, w }, undefined, { move: ['x', 'w'] })).rejects.toThrow(/run/);
    expect(Array.from(x.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(w.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // And they work again as feeds.
    const fixed = await session.run({ x, w: float32([3, 2], [1, 0, 0, 1, 1, 1]) });
    expect(Array.from(fixed.y.data as Float32Array)).toEqual([4, 5, 10, 11]);
  });

  test('two moved feeds over one buffer move once and both come back', async () => {
    const session = await (await rt()).createSession(matmulModel('float32'));
    const all = Float32Array.from([1, 2, 3, 4, 5, 6, 1, 0, 0, 1, 1, 1]);
    const x = float32([2, 3], all.subarray(0, 6));
    const w = float32([3, 2], all.subarray(6));
    const out = await session.run({ x, w }, undefined, { move: ['x', 'w'] });
    expect(Array.from(out.y.data as Float32Array)).toEqual([4, 5, 10, 11]);
    expect(x.data.buffer).toBe(w.data.buffer);
    expect([x.data.byteOffset, w.data.byteOffset, Array.from(w.data)]).toEqual([0, 24, [1, 0, 0, 1, 1, 1]]);
  });

  test('into must name a moved feed', async () => {
    const session = await (await rt()).createSession(doubleModel());
    const x = float32([2], [1, 2]);
    await expect(session.run({ x }, undefined, { into: { y: 'x' } })).rejects.toThrow("'x', not moved");
    expect(Array.from(x.data)).toEqual([1, 2]);
  });

  test('kept feeds are used without being passed, by any session, until released', async () => {
    const runtime = await rt();
    const [s1, s2] = [
      await runtime.createSession(matmulModel('float32')),
      await runtime.createSession(matmulModel('float32')),
    ];
    const wData = Float32Array.from([1, 0, -1, 2, 0.5, 3]);
    const kept = await runtime.keep({ w: float32([3, 2], wData) });
    expect(kept.names).toEqual(['w']);
    wData.fill(0); // kept is a copy: later writes to the caller's array are not seen
    const x = float32([2, 3], [1, 2, 3, 4, 5, 6]);
    const expected = matmul(x.data, Float32Array.from([1, 0, -1, 2, 0.5, 3]), 2, 3, 2);
    expect((await s1.run({ x }, undefined, { kept: [kept] })).y.data).toEqual(expected);
    expect((await s2.run({ x }, undefined, { kept: [kept] })).y.data).toEqual(expected);
    await expect(s1.run({ x, w: float32([3, 2], wData) }, undefined, { kept: [kept] })).rejects.toThrow(
      "feed 'w' is both kept and passed",
    );
    await expect(s1.run({ x })).rejects.toThrow(/w/); // not kept for runs that do not name it
    await kept.release();
    await expect(s1.run({ x }, undefined, { kept: [kept] })).rejects.toThrow('kept feeds were released');
  });
});
