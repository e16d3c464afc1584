// API ready: ONNX ModelProto types, encodeModel/decodeModel (protobufjs + onnx.proto subset), TensorProto helpers.
export type {
  AttributeProto,
  AttributeType,
  GraphProto,
  ModelProto,
  NodeProto,
  ValueInfoProto,
} from './model.js';
export { decodeModel, encodeModel } from './model.js';
export type { TensorDataType, TensorProto, TensorValues, TypedArrayFor } from './tensor.js';
export {
  dataTypeFromCode,
  elementCount,
  float16Bits,
  isTensorDataType,
  isTypedArrayFor,
  ONNX_DATA_TYPE,
  tensorProto,
  tensorProtoValues,
  toTypedArray,
} from './tensor.js';
