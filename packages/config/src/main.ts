import { StartupError } from './errors.js';

/**
 * Runs an app's entry point. A StartupError (bad config, unreachable service) is printed as its
 * message alone and exits 1; anything else is a bug and keeps its stack.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    const text =
      error instanceof StartupError ? error.message : error instanceof Error ? error.stack : String(error);
    process.stderr.write(`${text}\n`);
    process.exit(1);
  });
}
