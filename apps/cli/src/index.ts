// @rlhf/cli: the `rlhf` command line (main) and the typed API client it is built on.
export { main, runProcess } from './main.js';
export {
  ApiRequestError,
  allPages,
  type Client,
  createClient,
  NetworkError,
  type RunView,
} from './client.js';
export { configPath, type Login } from './config.js';
export type { Io, Output } from './io.js';
