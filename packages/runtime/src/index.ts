// ONNX Runtime sessions on 'cpu' or 'cuda:N', run on a worker thread; host tensors in and out.
export { type Device, parseDevice } from './device.js';
export {
  type CreateSessionOptions,
  createRuntime,
  type ExecutionProvider,
  type GraphOptimizationLevel,
  type KeptFeeds,
  type RunOptions,
  type Runtime,
  type RuntimeLogger,
  type RuntimeOptions,
  type Session,
  type SessionOptions,
} from './runtime.js';
export {
  bool,
  checkHostTensor,
  float16,
  float32,
  float64,
  type HostTensor,
  type Weights,
  weightFeeds,
  weightsOf,
  hostTensor,
  int8,
  int32,
  int64,
  type TensorDataType,
  type TypedArrayFor,
  uint8,
} from './tensor.js';
