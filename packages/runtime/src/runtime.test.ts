import { afterAll, describe, expect, test } from 'vitest';
import { createRuntime, type Runtime } from './runtime.js';
import { float32, float64, int64 } from './tensor.js';
import { addLoopModel, int64Model, matmulModel, tanhMatmulLoopModel } from './test-models.js';

const runtimes: Runtime[] = [];
async function runtime(options: Parameters<typeof createRuntime>[0] = {}): Promise<Runtime> {
  const r = await createRuntime(options);
  runtimes.push(r);
  return r;
}
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()));
});

const maxAbsSum = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v + b[i])), 0);
// Uniform in [-1, 1) from a seeded mulberry32 generator (deterministic, full rank).
function random(n: number, seed: number): number[] {
  let state = seed >>> 0;
  return Array.from({ length: n }, () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  });
}

describe('createRuntime on cpu', () => {
  test('runs a model built with @rlhf/onnx: initializer, Add, Softmax(axis -1), Loop', async () => {
    const r = await runtime();
    expect([r.requestedDevice, r.device, r.provider]).toEqual(['cpu', 'cpu', 'cpu']);
    const session = await r.createSession(addLoopModel(), { name: 'add-loop' });
    expect(session.name).toBe('add-loop');
    expect(session.inputNames).toEqual(['a', 'b', 'trip']);
    expect(session.outputNames).toEqual(['y', 'p', 'acc']);

    const a = [1, 2, 3];
    const b = [10, 20, 30];
    const out = await session.run({ a: float32([3], a), b: float32([3], b), trip: int64([], [5]) });
    const y = a.map((v, k) => (v + b[k]) * (k + 1));
    const z = y.map((v) => Math.exp(v - Math.max(...y)));
    const p = z.map((v) => v / z.reduce((s, t) => s + t, 0));
    expect(out.y).toEqual({ type: 'float32', dims: [3], data: Float32Array.from(y) });
    expect(out.acc.data).toEqual(Float32Array.from(a.map((v, k) => v + 5 * b[k])));
    expect(out.p.dims).toEqual([3]);
    Array.from(out.p.data as Float32Array).forEach((v, k) => {
      expect(v).toBeCloseTo(p[k], 6);
    });
  });

  test('float64 MatMul matches a JS matmul to float64 precision; fetches selects outputs', async () => {
    const r = await runtime();
    const session = await r.createSession(matmulModel('float64'));
    const [m, k, n] = [3, 4, 2];
    const x = random(m * k, 1);
    const w = random(k * n, 2);
    const out = await session.run({ x: float64([m, k], x), w: float64([k, n], w) }, ['y']);
    expect(Object.keys(out)).toEqual(['y']);
    expect(out.y.type).toBe('float64');
    expect(out.y.dims).toEqual([m, n]);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let expected = 0;
        for (let t = 0; t < k; t++) expected += x[i * k + t] * w[t * n + j];
        expect(Math.abs((out.y.data[i * n + j] as number) - expected)).toBeLessThan(1e-14);
      }
    }
  });

  test('int64 tensors keep exact values beyond 2^53 and negative numbers', async () => {
    const r = await runtime();
    const session = await r.createSession(int64Model());
    const a = [2n ** 60n, -3n, 7n];
    const b = [1n, -4n, -(2n ** 40n)];
    const out = await session.run({ a: int64([3], a), b: int64([3], b) });
    expect(out.sum).toEqual({
      type: 'int64',
      dims: [3],
      data: BigInt64Array.from(a.map((v, i) => v + b[i])),
    });
    expect(out.prod.data).toEqual(BigInt64Array.from(a.map((v, i) => v * b[i])));
    expect(out.cumsum.data).toEqual(BigInt64Array.from([a[0], a[0] + a[1], a[0] + a[1] + a[2]]));
  });

  test("feeds are copied: the caller's arrays stay attached and unchanged", async () => {
    const r = await runtime();
    const session = await r.createSession(matmulModel('float32'));
    const x = float32([1, 2], [1, 2]);
    const w = float32([2, 1], [3, 4]);
    const out = await session.run({ x, w });
    expect(out.y.data).toEqual(new Float32Array([11]));
    expect(x.data.byteLength).toBe(8);
    expect(Array.from(x.data)).toEqual([1, 2]);
    // And the same tensors can be fed again.
    expect((await session.run({ x, w })).y.data).toEqual(new Float32Array([11]));
  });

  test('an ORT error rejects with the session name and the ORT message', async () => {
    const r = await runtime();
    const session = await r.createSession(addLoopModel(), { name: 'adder' });
    const run = session.run({ a: float32([2], [1, 2]), b: float32([3], [1, 2, 3]), trip: int64([], [1]) });
    await expect(run).rejects.toThrow(/^ORT session 'adder' run: .*invalid dimensions for input: a/i);
    // The session still works afterwards.
    const ok = await session.run({
      a: float32([3], [0, 0, 0]),
      b: float32([3], [1, 1, 1]),
      trip: int64([], [2]),
    });
    expect(ok.acc.data).toEqual(new Float32Array([2, 2, 2]));
  });

  test('a malformed feed or model is rejected with a clear message', async () => {
    const r = await runtime();
    const session = await r.createSession(addLoopModel(), { name: 'adder' });
    const wrongLength = { type: 'float32' as const, dims: [3], data: new Float32Array(2) };
    await expect(session.run({ a: wrongLength })).rejects.toThrow(
      "ORT session 'adder' run: feed 'a': 2 float32 values do not fill dims [3] (3 elements)",
    );
    const wrongArray = { type: 'float32', dims: [2], data: new Float64Array(2) };
    // @ts-expect-error: a Float64Array is not float32 data
    await expect(session.run({ a: wrongArray })).rejects.toThrow(
      'float32 data must be a Float32Array, got Float64Array',
    );
    await expect(r.createSession(new Uint8Array([1, 2, 3]), { name: 'junk' })).rejects.toThrow(
      /^creating ORT session 'junk': /,
    );
  });

  test('a released session rejects runs', async () => {
    const r = await runtime();
    const session = await r.createSession(matmulModel('float32'), { name: 'mm' });
    await session.release();
    await expect(session.run({})).rejects.toThrow("ORT session 'mm' run: session was released");
  });
});

describe('device fallback', () => {
  test("'cuda:0' without the CUDA provider falls back to CPU with one warning", async () => {
    const warnings: string[] = [];
    const r = await runtime({ device: 'cuda:0', logger: { warn: (m) => warnings.push(m) } });
    expect([r.requestedDevice, r.device, r.provider]).toEqual(['cuda:0', 'cpu', 'cpu']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /cuda:0 requested but .*libonnxruntime_providers_cuda\.so.*setup:cuda.*falling back to CPU/,
    );
    const session = await r.createSession(matmulModel('float32'));
    expect((await session.run({ x: float32([1, 1], [2]), w: float32([1, 1], [3]) })).y.data).toEqual(
      new Float32Array([6]),
    );
    expect(warnings).toHaveLength(1);
  });

  test('an invalid device is rejected', async () => {
    await expect(createRuntime({ device: 'gpu0' })).rejects.toThrow("invalid device 'gpu0'");
  });
});

describe('worker thread', () => {
  const [m, n] = [256, 512];
  const x = float32([m, n], random(m * n, 3));
  const w = float32(
    [n, n],
    random(n * n, 4).map((v) => (2 * v) / Math.sqrt(n)), // gain > 1 so the iterates do not decay to 0
  );

  test('the event loop keeps ticking while a long run executes', async () => {
    const r = await runtime({ intraOpNumThreads: 1 });
    const session = await r.createSession(tanhMatmulLoopModel());
    // Calibrate the trip count so the run takes about a second on this machine.
    let started = performance.now();
    await session.run({ trip: int64([], [20]), x, w });
    const perStep = (performance.now() - started) / 20;
    const trip = Math.min(5000, Math.max(20, Math.round(1000 / perStep)));

    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    started = performance.now();
    const out = await session.run({ trip: int64([], [trip]), x, w });
    const elapsed = performance.now() - started;
    clearInterval(timer);

    expect(elapsed).toBeGreaterThan(300); // the run really was long
    // A blocked main thread would tick at most once; a free one ~elapsed/10 times.
    expect(ticks).toBeGreaterThan(elapsed / 10 / 3);
    expect(out.y.dims).toEqual([m, n]);
    expect(Array.from(out.y.data as Float32Array).every((v) => Math.abs(v) <= 1)).toBe(true);
  });

  test('two runtimes run in parallel and each returns its own correct result', async () => {
    const [r1, r2] = await Promise.all([
      runtime({ intraOpNumThreads: 1 }),
      runtime({ intraOpNumThreads: 1 }),
    ]);
    const [s1, s2] = await Promise.all([
      r1.createSession(tanhMatmulLoopModel()),
      r2.createSession(tanhMatmulLoopModel()),
    ]);
    const x2 = float32(
      [m, n],
      Float32Array.from(x.data, (v) => -v),
    );
    const [y1, y2] = await Promise.all([
      s1.run({ trip: int64([], [1]), x, w }),
      s2.run({ trip: int64([], [1]), x: x2, w }),
    ]);
    // One step: tanh(x @ w) row 0 column 0, computed in JS; tanh is odd so y2 = -y1.
    let dot = 0;
    for (let t = 0; t < n; t++) dot += x.data[t] * w.data[t * n];
    expect(y1.y.data[0]).toBeCloseTo(Math.tanh(dot), 5);
    expect(maxAbsSum(y1.y.data as Float32Array, y2.y.data as Float32Array)).toBeLessThan(1e-6);
    // Long runs on both at once.
    const [l1, l2] = await Promise.all([
      s1.run({ trip: int64([], [30]), x, w }),
      s2.run({ trip: int64([], [30]), x: x2, w }),
    ]);
    expect(maxAbsSum(l1.y.data as Float32Array, l2.y.data as Float32Array)).toBeLessThan(1e-5);
    expect(maxAbsSum(l1.y.data as Float32Array, new Float32Array(m * n))).toBeGreaterThan(0.5);
  });

  test('close() rejects pending runs, terminates the thread, and later calls reject', async () => {
    const ports = () => process.getActiveResourcesInfo().filter((kind) => kind === 'MessagePort').length;
    const before = ports();
    const r = await createRuntime({ intraOpNumThreads: 1 });
    expect(ports()).toBe(before + 1);
    const session = await r.createSession(tanhMatmulLoopModel(), { name: 'long' });
    const pending = expect(session.run({ trip: int64([], [100]), x, w })).rejects.toThrow(
      "ORT session 'long' run: runtime is closed",
    );
    await r.close();
    await pending;
    expect(ports()).toBe(before);
    await expect(session.run({ trip: int64([], [1]), x, w })).rejects.toThrow('runtime is closed');
    await expect(r.createSession(matmulModel('float32'))).rejects.toThrow('runtime is closed');
    await r.close(); // idempotent
  });
});
