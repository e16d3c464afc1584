// The ORT thread of one runtime: it owns every InferenceSession of that runtime, because session.run blocks the
// thread it runs on (docs/DESIGN.md). Plain .mjs (onnxruntime-node + message passing only) so it starts unchanged
// under node, tsx and vitest without a TypeScript loader in the worker.
//
// Requests (main -> worker):  { id, kind: 'create', model: Uint8Array, options }
//                             { id, kind: 'run', sessionId, feeds: { [name]: { type, dims, data } }, fetches? }
//                             { id, kind: 'release', sessionId }
//                             { kind: 'close' }   release every session and end the thread
// Messages (worker -> main):  { kind: 'ready', provider: 'cpu' | 'cuda', warning? }   once, after start-up
//                             { kind: 'reply', id, ok: true, result } | { kind: 'reply', id, ok: false, error }
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { missingCudaProviderLibraries, ortBindingDir } from './ort-binding.mjs';

const OUTPUT_TYPES = new Set(['float32', 'float64', 'float16', 'int64', 'int32', 'int8', 'uint8', 'bool']);
const sessions = new Map();
let nextSessionId = 1;

const { device, probeModel } = workerData;
const { provider, executionProviders, warning } = await chooseProvider();
parentPort.on('message', (request) => {
  if (request.kind === 'close') return close();
  handle(request).then(
    ({ result, transfer }) => reply({ kind: 'reply', id: request.id, ok: true, result }, transfer),
    (error) => reply({ kind: 'reply', id: request.id, ok: false, error: messageOf(error) }),
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
      const { graphOptimizationLevel, intraOpNumThreads, interOpNumThreads, logSeverityLevel } =
        request.options;
      const session = await ort.InferenceSession.create(request.model, {
        executionProviders,
        graphOptimizationLevel,
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
      for (const [name, t] of Object.entries(request.feeds))
        feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const results = request.fetches ? await session.run(feeds, request.fetches) : await session.run(feeds);
      const outputs = {};
      const buffers = new Set();
      for (const [name, t] of Object.entries(results)) {
        if (!OUTPUT_TYPES.has(t.type))
          throw new Error(`output '${name}' has type ${t.type}, which runtime does not support`);
        outputs[name] = { type: t.type, dims: [...t.dims], data: t.data };
        buffers.add(t.data.buffer);
      }
      return { result: outputs, transfer: [...buffers] };
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
