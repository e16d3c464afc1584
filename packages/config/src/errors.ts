/** An error meant for the person starting the process: `runMain` prints its message, never a stack. */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** Every problem with the environment at once, one line per variable. */
export class ConfigError extends StartupError {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  ${problem}`).join('\n')}`);
  }
}

/** A service named by an environment variable could not be reached. */
export class UnreachableError extends StartupError {
  override name = 'UnreachableError';
  constructor(
    readonly variable: string,
    readonly host: string,
    message: string,
  ) {
    super(message);
  }
}
