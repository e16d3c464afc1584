export * from './configs.js';
export * from './datasets.js';
export * from './errors.js';
export * from './jobs.js';
export * from './jsonl.js';
export * from './metrics.js';
export * from './resources.js';
export * from './run-spec.js';
