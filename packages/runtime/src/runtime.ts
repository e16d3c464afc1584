// A runtime = one worker thread that owns ONNX Runtime sessions on one device; the main thread only
// posts requests and awaits replies, so a multi-second session.run never blocks its event loop.
import { Worker } from 'node:worker_threads';
import { encodeModel, tensorProto } from '@rlhf/onnx';
import { type Device, parseDevice } from './device.js';
import { checkHostTensor, type HostTensor } from './tensor.js';

export type ExecutionProvider = 'cpu' | 'cuda';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** pino's logger fits; the default writes to console.warn. */
export interface RuntimeLogger {
  warn(message: string): void;
}

export interface SessionOptions {
  /** Default 'all'. */
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** Threads inside one op (ORT default: one per core). */
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  /** ORT log level: 0 verbose (shows node placement), 1 info, 2 warning (ORT default), 3 error, 4 fatal. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

export interface RuntimeOptions extends SessionOptions {
  /** 'cpu' (default), 'cuda:N' or 'cuda'. */
  device?: Device | string;
  logger?: RuntimeLogger;
}

export interface CreateSessionOptions extends SessionOptions {
  /** Names the session in error messages. */
  name?: string;
}

export interface Session {
  readonly name: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the graph; feeds are copied, never detached. fetches: the outputs wanted (default all). */
  run(feeds: Record<string, HostTensor>, fetches?: readonly string[]): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

export interface Runtime {
  /** The device asked for. */
  readonly requestedDevice: Device;
  /** The device sessions really run on: 'cpu' when CUDA was asked for but is unavailable. */
  readonly device: Device;
  readonly provider: ExecutionProvider;
  createSession(model: Uint8Array, options?: CreateSessionOptions): Promise<Session>;
  /**
   * Rejects pending calls at once, then ends the worker thread once a run in progress finishes (an ORT run
   * cannot be interrupted: terminating its thread mid-run aborts the whole process). Later calls reject.
   */
  close(): Promise<void>;
}

type WorkerMessage =
  | { kind: 'ready'; provider: ExecutionProvider; warning?: string }
  | { kind: 'reply'; id: number; ok: true; result: unknown }
  | { kind: 'reply'; id: number; ok: false; error: string };

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
  context: string;
}

const workerUrl = new URL('./worker.mjs', import.meta.url);

export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const requestedDevice = parseDevice(options.device ?? 'cpu');
  const logger = options.logger ?? { warn: (message: string) => console.warn(message) };
  const defaults: SessionOptions = {
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    intraOpNumThreads: options.intraOpNumThreads,
    interOpNumThreads: options.interOpNumThreads,
    logSeverityLevel: options.logSeverityLevel,
  };
  const worker = new Worker(workerUrl, { workerData: { device: requestedDevice, probeModel: probeModel() } });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));

  const pending = new Map<number, Pending>();
  let nextId = 1;
  let failure: Error | undefined; // set once the thread is gone: every later call rejects with it
  let closing = false;

  const fail = (error: Error) => {
    failure ??= error;
    for (const p of pending.values()) p.reject(new Error(`${p.context}: ${error.message}`));
    pending.clear();
  };

  const ready = new Promise<{ provider: ExecutionProvider; warning?: string }>((resolve, reject) => {
    worker.on('message', (message: WorkerMessage) => {
      if (message.kind === 'ready') return resolve(message);
      const p = pending.get(message.id);
      if (!p) return;
      pending.delete(message.id);
      if (message.ok) p.resolve(message.result);
      else p.reject(new Error(`${p.context}: ${message.error}`));
    });
    worker.on('error', (error) => {
      const crash = new Error(`ORT worker thread crashed: ${error.message}`, { cause: error });
      reject(crash);
      fail(crash);
    });
    worker.on('exit', (code) => {
      const gone = new Error(
        closing ? 'runtime is closed' : `ORT worker thread exited unexpectedly (code ${code})`,
      );
      reject(gone);
      fail(gone);
    });
  });
  const { provider, warning } = await ready;
  if (warning) logger.warn(`@rlhf/runtime: ${warning}`);

  const request = <T>(context: string, message: object, transfer: ArrayBuffer[] = []): Promise<T> => {
    if (failure) return Promise.reject(new Error(`${context}: ${failure.message}`));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (result: unknown) => void, reject, context });
      worker.postMessage({ ...message, id }, transfer);
    });
  };

  let sessionCount = 0;
  const createSession = async (
    model: Uint8Array,
    sessionOptions: CreateSessionOptions = {},
  ): Promise<Session> => {
    const name = sessionOptions.name ?? `session${++sessionCount}`;
    const { name: _name, ...overrides } = sessionOptions;
    const copy = model.slice(); // the caller keeps its bytes; the copy is moved to the worker
    const created = await request<{ sessionId: number; inputNames: string[]; outputNames: string[] }>(
      `creating ORT session '${name}'`,
      { kind: 'create', model: copy, options: { ...defaults, ...withoutUndefined(overrides) } },
      [copy.buffer],
    );
    let released = false;
    return {
      name,
      inputNames: created.inputNames,
      outputNames: created.outputNames,
      run(feeds, fetches) {
        const context = `ORT session '${name}' run`;
        if (released) return Promise.reject(new Error(`${context}: session was released`));
        const copies: Record<string, HostTensor> = {};
        const transfer: ArrayBuffer[] = [];
        try {
          for (const [feedName, t] of Object.entries(feeds)) {
            checkHostTensor(t, `${context}: feed '${feedName}'`);
            const data = t.data.slice(); // a fresh buffer we may move; the caller's array stays usable
            copies[feedName] = { type: t.type, dims: [...t.dims], data } as HostTensor;
            transfer.push(data.buffer);
          }
        } catch (error) {
          return Promise.reject(error);
        }
        return request(
          context,
          { kind: 'run', sessionId: created.sessionId, feeds: copies, fetches },
          transfer,
        );
      },
      async release() {
        if (released) return;
        released = true;
        await request(`releasing ORT session '${name}'`, { kind: 'release', sessionId: created.sessionId });
      },
    };
  };

  return {
    requestedDevice,
    device: provider === 'cuda' ? requestedDevice : 'cpu',
    provider,
    createSession,
    async close() {
      if (!closing && !failure) {
        closing = true;
        fail(new Error('runtime is closed'));
        worker.postMessage({ kind: 'close' }); // never worker.terminate(): it aborts the process during a run
      }
      await exited;
    },
  };
}

// The smallest graph (Identity on one float): creating it on the CUDA EP proves the GPU provider loads.
let probe: Uint8Array | undefined;
function probeModel(): Uint8Array {
  probe ??= encodeModel({
    irVersion: 10,
    opsetImports: [{ domain: '', version: 21 }],
    producerName: '@rlhf/runtime',
    graph: {
      name: 'probe',
      nodes: [{ opType: 'Identity', inputs: ['c'], outputs: ['y'] }],
      inputs: [],
      outputs: [{ name: 'y', elemType: 'float32', shape: [1] }],
      initializers: [tensorProto('c', 'float32', [1], [0])],
    },
  });
  return probe;
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
