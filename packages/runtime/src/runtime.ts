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
  /** ORT's CPU arena (default true): off returns freed intermediates to the system instead of keeping them. */
  enableCpuMemArena?: boolean;
  /** ORT's memory pattern (default true): pre-plans one block for a run's intermediates. */
  enableMemPattern?: boolean;
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

export interface RunOptions {
  /**
   * Feeds lent to the ORT thread instead of copied: their arrays are detached during the run, and when it settles
   * (also when it fails) each of these feed objects gets its `data` back (a new array over the same buffer).
   */
  move?: readonly string[];
  /**
   * Outputs written into a moved feed's buffer, { output: feed } (the feed's type and dims): the result's output
   * is that buffer, not a copy. An output may overwrite its own graph's input only when the node writing it is
   * that input's last reader (the graph must make sure of it).
   */
  into?: Readonly<Record<string, string>>;
  /** Feeds held in the ORT thread (Runtime.keep), fed without crossing the thread boundary. */
  kept?: readonly KeptFeeds[];
}

export interface Session {
  readonly name: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the graph; feeds are copied unless moved. fetches: the outputs wanted (default all). */
  run(
    feeds: Record<string, HostTensor>,
    fetches?: readonly string[],
    options?: RunOptions,
  ): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

/** Feeds copied once into the ORT thread, for runs of any session of that runtime (RunOptions.kept). */
export interface KeptFeeds {
  readonly names: readonly string[];
  /** Frees them; runs that name them afterwards fail. */
  release(): Promise<void>;
}

export interface Runtime {
  /** The device asked for. */
  readonly requestedDevice: Device;
  /** The device sessions really run on: 'cpu' when CUDA was asked for but is unavailable. */
  readonly device: Device;
  readonly provider: ExecutionProvider;
  createSession(model: Uint8Array, options?: CreateSessionOptions): Promise<Session>;
  /** Copies feeds into the ORT thread once (frozen weights): runs given them in `kept` do not send them again. */
  keep(feeds: Record<string, HostTensor>): Promise<KeptFeeds>;
  /**
   * Rejects pending calls at once, then ends the worker thread once a run in progress finishes (an ORT run
   * cannot be interrupted: terminating its thread mid-run aborts the whole process). Later calls reject.
   */
  close(): Promise<void>;
}

type WorkerMessage =
  | { kind: 'ready'; provider: ExecutionProvider; warning?: string }
  | { kind: 'reply'; id: number; ok: true; result: unknown; moved?: Record<string, HostTensor['data']> }
  | { kind: 'reply'; id: number; ok: false; error: string; moved?: Record<string, HostTensor['data']> };

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
  /** Gets the moved feeds' arrays back, before resolve or reject. */
  returned?(moved: Record<string, HostTensor['data']>): void;
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
    enableCpuMemArena: options.enableCpuMemArena,
    enableMemPattern: options.enableMemPattern,
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
      if (message.moved) p.returned?.(message.moved);
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

  const request = <T>(
    context: string,
    message: object,
    transfer: ArrayBuffer[] = [],
    returned?: Pending['returned'],
  ): Promise<T> => {
    if (failure) return Promise.reject(new Error(`${context}: ${failure.message}`));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      worker.postMessage({ ...message, id }, transfer); // throws (nothing detached) if a buffer cannot move
      pending.set(id, { resolve: resolve as (result: unknown) => void, reject, returned, context });
    });
  };

  let keptCount = 0;
  const keep = async (feeds: Record<string, HostTensor>): Promise<KeptFeeds> => {
    const { copies, transfer } = copyFeeds(feeds, 'keeping feeds');
    const keptId = ++keptCount;
    await request('keeping feeds', { kind: 'keep', keptId, feeds: copies }, transfer);
    let released = false;
    return {
      names: Object.keys(feeds),
      [keptIdKey]: keptId,
      async release() {
        if (released) return;
        released = true;
        await request('releasing kept feeds', { kind: 'unkeep', keptId });
      },
    } as KeptFeeds;
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
      run(feeds, fetches, options = {}) {
        const context = `ORT session '${name}' run`;
        if (released) return Promise.reject(new Error(`${context}: session was released`));
        const move = new Set(options.move ?? []);
        let message: object;
        let transfer: ArrayBuffer[];
        try {
          for (const feed of move)
            if (!feeds[feed]) throw new Error(`${context}: moved feed '${feed}' is not fed`);
          for (const [output, feed] of Object.entries(options.into ?? {}))
            if (!move.has(feed))
              throw new Error(`${context}: output '${output}' goes into '${feed}', not moved`);
          const copied = copyFeeds(feeds, context, move);
          transfer = copied.transfer;
          const kept = (options.kept ?? []).map((k) => (k as KeptFeeds & { [keptIdKey]: number })[keptIdKey]);
          message = {
            kind: 'run',
            sessionId: created.sessionId,
            feeds: copied.copies,
            fetches,
            ...options,
            kept,
          };
        } catch (error) {
          return Promise.reject(error);
        }
        // Each moved feed object gets its buffer back (the same byte range) when the reply comes.
        const returned = (moved: Record<string, HostTensor['data']>) => {
          for (const feed of move) feeds[feed].data = moved[feed];
        };
        return request(context, message, transfer, returned);
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
    keep,
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

// Where a KeptFeeds object holds its id in the ORT thread (not part of the public type).
const keptIdKey = Symbol('keptId');

/** Checks every feed and copies it (or, for names in `move`, lends it): the copies and the buffers to transfer. */
function copyFeeds(
  feeds: Record<string, HostTensor>,
  context: string,
  move: ReadonlySet<string> = new Set(),
): { copies: Record<string, HostTensor>; transfer: ArrayBuffer[] } {
  const copies: Record<string, HostTensor> = {};
  const transfer = new Set<ArrayBuffer>(); // feeds may share one buffer: it moves once
  for (const [feedName, t] of Object.entries(feeds)) {
    checkHostTensor(t, `${context}: feed '${feedName}'`);
    const data = move.has(feedName) ? t.data : t.data.slice(); // a copy leaves the caller's array usable
    if (data.buffer instanceof SharedArrayBuffer)
      throw new Error(`${context}: feed '${feedName}' is in shared memory, which cannot move`);
    copies[feedName] = { type: t.type, dims: [...t.dims], data } as HostTensor;
    transfer.add(data.buffer);
  }
  return { copies, transfer: [...transfer] };
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
