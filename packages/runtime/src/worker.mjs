// The ORT thread of one runtime: it owns every InferenceSession of that runtime, because session.run blocks the
// thread it runs on (docs/DESIGN.md). Plain .mjs (onnxruntime-node + message passing only) so it starts unchanged
// under node, tsx and vitest without a TypeScript loader in the worker.
//
// Requests (main -> worker):  { id, kind: 'create', model: Uint8Array, options }
//                             { id, kind: 'run', sessionId, feeds: { [name]: { type, dims, data } }, fetches?,
//                               move?: [feed], into?: { [output]: feed }, kept?: [keptId] }
//                             { id, kind: 'keep', keptId, feeds }   |   { id, kind: 'unkeep', keptId }
//                             { id, kind: 'release', sessionId }
//                             { kind: 'close' }   release every session and end the thread
// Messages (worker -> main):  { kind: 'ready', provider: 'cpu' | 'cuda', warning? }   once, after start-up
//                             { kind: 'reply', id, ok: true, result } | { kind: 'reply', id, ok: false, error }
//                             (a run's reply also carries moved: { [feed]: data }, the lent buffers handed back)
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { missingCudaProviderLibraries, ortBindingDir } from './ort-binding.mjs';

const OUTPUT_TYPES = new Set(['float32', 'float64', 'float16', 'int64', 'int32', 'int8', 'uint8', 'bool']);
const sessions = new Map();
const keptFeeds = new Map(); // keptId -> { [name]: ort.Tensor }
let nextSessionId = 1;

const { device, probeModel } = workerData;
const { provider, executionProviders, warning } = await chooseProvider();
parentPort.on('message', (request) => {
  if (request.kind === 'close') return close();
  // Lent buffers go back with every reply to a run, whether it succeeded or not.
  const moved = Object.fromEntries((request.move ?? []).map((name) => [name, request.feeds[name].data]));
  const lent = [...new Set(Object.values(moved).map((data) => data.buffer))];
  const back = request.move ? { moved } : {};
  handle(request).then(
    ({ result, transfer = [] }) =>
      reply({ kind: 'reply', id: request.id, ok: true, result, ...back }, [...transfer, ...lent]),
    (error) => reply({ kind: 'reply', id: request.id, ok: false, error: messageOf(error), ...back }, lent),
  );
});
parentPort.postMessage({ kind: 'ready', provider, warning });

// cuda:N only if the provider libraries are installed and a tiny probe session starts on that GPU.
async function chooseProvider() {
  const cpu = (warning) => ({ provider: 'cpu', executionProviders: ['cpu'], warning });
  if (device === 'cpu') return cpu(undefined);
  const missing = missingCudaProviderLibraries();
  if (missing.length > 0) {
    return cpu(
      `${device} requested but ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing from ` +
        `${ortBindingDir()} (run \`npm run setup:cuda\`); falling back to CPU`,
    );
  }
  const executionProviders = [{ name: 'cuda', deviceId: Number(device.slice('cuda:'.length)) }];
  try {
    const probe = await ort.InferenceSession.create(probeModel, { executionProviders });
    await probe.release();
    return { provider: 'cuda', executionProviders, warning: undefined };
  } catch (error) {
    return cpu(
      `${device} requested but the CUDA execution provider failed: ${messageOf(error)}; falling back to CPU`,
    );
  }
}

async function handle(request) {
  switch (request.kind) {
    case 'create': {
      const {
        graphOptimizationLevel,
        intraOpNumThreads,
        interOpNumThreads,
        logSeverityLevel,
        enableCpuMemArena,
        enableMemPattern,
      } = request.options;
      const session = await ort.InferenceSession.create(request.model, {
        executionProviders,
        graphOptimizationLevel,
        ...(enableCpuMemArena !== undefined && { enableCpuMemArena }),
        ...(enableMemPattern !== undefined && { enableMemPattern }),
        ...(intraOpNumThreads !== undefined && { intraOpNumThreads }),
        ...(interOpNumThreads !== undefined && { interOpNumThreads }),
        ...(logSeverityLevel !== undefined && { logSeverityLevel }),
      });
      const sessionId = nextSessionId++;
      sessions.set(sessionId, session);
      return {
        result: { sessionId, inputNames: [...session.inputNames], outputNames: [...session.outputNames] },
      };
    }
    case 'run': {
      const session = sessionFor(request.sessionId);
      const feeds = {};
      for (const keptId of request.kept ?? []) {
        const kept = keptFeeds.get(keptId);
        if (!kept) throw new Error('kept feeds were released');
        Object.assign(feeds, kept);
      }
      for (const [name, t] of Object.entries(request.feeds)) {
        if (feeds[name]) throw new Error(`feed '${name}' is both kept and passed`);
        feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      }
      // Pre-allocated outputs: ORT writes into the feed's buffer; the binding's returned copy is dropped.
      const into = request.into ?? {};
      const fetches = {};
      for (const name of request.fetches ?? session.outputNames) fetches[name] = null;
      for (const [name, feed] of Object.entries(into)) fetches[name] = feeds[feed];
      const results = await session.run(feeds, fetches);
      const outputs = {};
      const buffers = new Set();
      for (const [name, t] of Object.entries(results)) {
        if (!OUTPUT_TYPES.has(t.type))
          throw new Error(`output '${name}' has type ${t.type}, which runtime does not support`);
        if (into[name]) {
          const feed = request.feeds[into[name]];
          outputs[name] = { type: feed.type, dims: [...feed.dims], data: feed.data }; // moved back with the reply
          continue;
        }
        outputs[name] = { type: t.type, dims: [...t.dims], data: t.data };
        buffers.add(t.data.buffer);
      }
      return { result: outputs, transfer: [...buffers] };
    }
    case 'keep': {
      const kept = {};
      for (const [name, t] of Object.entries(request.feeds))
        kept[name] = new ort.Tensor(t.type, t.data, t.dims);
      keptFeeds.set(request.keptId, kept);
      return { result: undefined };
    }
    case 'unkeep': {
      keptFeeds.delete(request.keptId);
      return { result: undefined };
    }
    case 'release': {
      await sessionFor(request.sessionId).release();
      sessions.delete(request.sessionId);
      return { result: undefined };
    }
    default:
      throw new Error(`unknown request kind ${request.kind}`);
  }
}

// Runs after any run in progress (this thread handles one message at a time), so exiting is safe.
async function close() {
  await Promise.allSettled([...sessions.values()].map((session) => session.release()));
  sessions.clear();
  keptFeeds.clear();
  process.exit(0);
}

function sessionFor(sessionId) {
  const session = sessions.get(sessionId);
  if (!session) throw new Error('session was released');
  return session;
}

// Output buffers are moved, not copied; should ORT hand out a buffer that cannot be detached, copy it instead.
function reply(message, transfer = []) {
  try {
    parentPort.postMessage(message, transfer);
  } catch {
    parentPort.postMessage(message);
  }
}

function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}
