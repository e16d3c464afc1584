// What a command may touch of the process: arguments, environment, output streams, the clock. main() takes
// it as a parameter so tests run the CLI in-process with captured output.

export interface Output {
  write(text: string): unknown;
  /** A terminal: progress lines are redrawn in place. */
  isTTY?: boolean;
}

export interface Io {
  env: Readonly<Record<string, string | undefined>>;
  stdout: Output;
  stderr: Output;
  /** Directory relative paths resolve against. */
  cwd: string;
  /** Aborts long-running commands (watch, follow): Ctrl-C in the real process. */
  signal?: AbortSignal;
}

/** The real process's io. */
export function processIo(signal?: AbortSignal): Io {
  return { env: process.env, stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), signal };
}

/** A line-oriented writer over an Output. */
export const say =
  (out: Output) =>
  (line = ''): void => {
    out.write(`${line}\n`);
  };
