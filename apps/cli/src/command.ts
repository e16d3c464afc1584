// What every command module exports (its shape for the parser, help and completion, and `run`) and the
// context `run` gets: parsed arguments, output, and the API client built from the resolved login.
import type { CommandShape } from './args.js';
import { UsageError } from './args.js';
import type { Client } from './client.js';
import type { Io } from './io.js';

export interface Flags {
  string(name: string): string | undefined;
  boolean(name: string): boolean;
  /** A positive integer option, or `fallback` when absent. */
  integer(name: string, fallback: number): number;
}

export interface Context {
  io: Io;
  /** Positional arguments after the command words. */
  args: readonly string[];
  flags: Flags;
  json: boolean;
  /** The API client from flags, environment or the stored login (resolved when first asked for). */
  client(): Promise<Client>;
  /** Writes a line to stdout. */
  print(line?: string): void;
  /** Writes a line to stderr. */
  warn(line: string): void;
  /** Writes a value as one line of JSON to stdout. */
  printJson(value: unknown): void;
  /** Every command (for completion and help). */
  commands: readonly CommandShape[];
}

export interface Command extends CommandShape {
  /** The exit code. */
  run(ctx: Context): Promise<number>;
}

export function flagsOf(command: string, values: Record<string, string | boolean | undefined>): Flags {
  return {
    string: (name) => (typeof values[name] === 'string' ? values[name] : undefined),
    boolean: (name) => values[name] === true,
    integer(name, fallback) {
      const value = values[name];
      if (typeof value !== 'string') return fallback;
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1)
        throw new UsageError(`${command}: --${name} must be a positive integer`);
      return n;
    },
  };
}
