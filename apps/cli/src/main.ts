// rlhf: the command line of the RLHF service. main() takes argv and io so tests run it in-process; the bin
// (bin/rlhf.mjs) calls it with the real process's.
import { pathToFileURL } from 'node:url';
import { commandHelp, GLOBAL_OPTIONS, parseCommandLine, UsageError } from './args.js';
import { ApiRequestError, createClient, NetworkError } from './client.js';
import { type Context, flagsOf } from './command.js';
import { COMMANDS } from './commands/index.js';
import { resolveLogin } from './config.js';
import { type Io, processIo, say } from './io.js';

function overview(): string {
  const usage = (c: (typeof COMMANDS)[number]) =>
    [c.name, ...c.args.map((a) => (a.endsWith('?') ? `[${a.slice(0, -1)}]` : `<${a}>`))].join(' ');
  const width = Math.max(...COMMANDS.map((c) => usage(c).length));
  const lines = COMMANDS.map((c) => `  ${usage(c).padEnd(width)}  ${c.summary}`);
  const globals = Object.entries(GLOBAL_OPTIONS).map(
    ([name, s]) => `  --${name.padEnd(width - 2)}  ${s.description}`,
  );
  return [
    'usage: rlhf <command> [options]   (rlhf <command> --help for its options)',
    '',
    'commands:',
    ...lines,
    '',
    'options of every command:',
    ...globals,
    '',
  ].join('\n');
}

/** Runs one command line; resolves to the exit code (0 ok, 1 failed, 2 usage). */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const err = say(io.stderr);
  try {
    const parsed = parseCommandLine(argv, COMMANDS);
    if (!parsed) {
      io.stdout.write(overview());
      return argv.includes('--help') || argv.includes('-h') ? 0 : 2;
    }
    const { command, positionals, values } = parsed;
    if (values.help) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    const flags = flagsOf(command.name, values);
    let client: ReturnType<typeof createClient> | undefined;
    const context: Context = {
      io,
      args: positionals,
      flags,
      json: values.json === true,
      async client() {
        client ??= createClient(
          await resolveLogin(io.env, { url: flags.string('url'), key: flags.string('key') }),
        );
        return client;
      },
      print: say(io.stdout),
      warn: err,
      printJson: (value) => io.stdout.write(`${JSON.stringify(value)}\n`),
      commands: COMMANDS,
    };
    return await command.run(context);
  } catch (error) {
    if (error instanceof UsageError) {
      err(`rlhf: ${error.message}`);
      return 2;
    }
    if (error instanceof ApiRequestError || error instanceof NetworkError) {
      err(`rlhf: ${error.message}`);
      return 1;
    }
    if ((error as Error).name === 'AbortError' && io.signal?.aborted) return 130;
    const code = (error as NodeJS.ErrnoException).code;
    err(`rlhf: ${code ? `${code}: ` : ''}${(error as Error).message.split('\n')[0]}`);
    return 1;
  }
}

/** The real process: Ctrl-C aborts watches and follows (a second one exits at once). */
export async function runProcess(): Promise<void> {
  const controller = new AbortController();
  process.once('SIGINT', () => {
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  process.exitCode = await main(process.argv.slice(2), processIo(controller.signal));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runProcess();
