// @rlhf/graph: build ONNX graphs in TypeScript, differentiate them, and fuse training steps into Loops.
export {
  type AttrType,
  type Attrs,
  type AttrValue,
  type ConstTensor,
  currentGraph,
  defineOp,
  GradContext,
  Graph,
  GraphError,
  inGraph,
  Node,
  node,
  Op,
  OpContext,
  type OpDef,
  opByType,
  type OutputInfo,
  scope,
  Tensor,
} from './graph.js';
export { grad } from './autodiff.js';
export { checkpoint } from './checkpoint.js';
export { type ModelOptions, OPSET, saveModel, toBytes, toModel } from './graph.js';
export { broadcastShapes } from './shape.js';
export { type DType, type Dim, formatShape, isFloat, type Shape, type TensorData } from './types.js';
export * from './ops/arith.js';
export { type Axes, expand, reduceSum, unbroadcast } from './ops/broadcast.js';
export * from './ops/indexing.js';
export * from './ops/logic.js';
export * from './ops/loop.js';
export * from './ops/matmul.js';
export * from './ops/nn.js';
export * from './ops/random.js';
export * from './ops/reduce.js';
export {
  concat,
  constantOfShape,
  dimOf,
  int64s,
  knownDim,
  range,
  reshape,
  shapeOf,
  split,
  squeeze,
  transpose,
  transposeLast2,
  triangle,
  unsqueeze,
  zerosLike,
} from './ops/shape.js';
export { inferBroadcast, lift, type Operand, scalarLike } from './ops/util.js';
export { checkGradients, type GradCheckInput, type GradCheckOptions, type GradCheckResult } from './check.js';
export { type LrSchedule, lrSchedule, lrsFor, rng } from './host.js';
export { crossEntropy, maskedMean, pickLogProbs, tokenLogProbs } from './losses.js';
export { type AdamWOptions, type AdamWResult, adamw, clipByGlobalNorm, globalNorm } from './optim.js';
export {
  buildTrainStep,
  type InputSpec,
  type LossResult,
  type OptimizerConfig,
  type ParamSpec,
  type TrainStep,
  type TrainStepNames,
  type TrainStepSpec,
} from './train.js';
export { createTrainer, type StepReport, type Trainer, type TrainerState } from './trainer.js';
