// A tiny command-line parser on util.parseArgs: the command is the longest run of leading words naming one
// in the table ("datasets upload"), the rest is parsed strictly against that command's options.
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  description: string;
  /** Allowed values (checked here, offered by shell completion). */
  values?: readonly string[];
  /** Placeholder in help, e.g. DIR. */
  placeholder?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface CommandShape {
  /** One or two words: "runs", "datasets upload". */
  name: string;
  summary: string;
  /** Positional arguments, required unless ending in '?': ["id"], ["file"], ["shell"]. */
  args: readonly string[];
  options: OptionSpecs;
}

/** A usage mistake: printed with a hint, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: OptionSpecs = {
  url: { type: 'string', description: 'API URL (overrides RLHF_URL and the login)', placeholder: 'URL' },
  key: { type: 'string', description: 'API key (overrides RLHF_API_KEY and the login)', placeholder: 'KEY' },
  json: { type: 'boolean', description: 'print JSON for scripts instead of tables' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
};

export interface ParsedCommand<C extends CommandShape> {
  command: C;
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

const takesValue = (specs: OptionSpecs, token: string): boolean => {
  if (!token.startsWith('-') || token.includes('=')) return false;
  const name = token.startsWith('--')
    ? token.slice(2)
    : Object.entries(specs).find(([, s]) => s.short === token.slice(1))?.[0];
  return name !== undefined && specs[name]?.type === 'string';
};

/** The leading words of argv that are not options or option values. */
function words(argv: readonly string[], specs: OptionSpecs): { word: string; index: number }[] {
  const found: { word: string; index: number }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === '--') break;
    if (token.startsWith('-')) {
      if (takesValue(specs, token)) i++;
      continue;
    }
    found.push({ word: token, index: i });
  }
  return found;
}

/** Finds the command and parses its arguments; `undefined` when argv names no command (help). */
export function parseCommandLine<C extends CommandShape>(
  argv: readonly string[],
  commands: readonly C[],
): ParsedCommand<C> | undefined {
  const all: OptionSpecs = Object.assign({}, GLOBAL_OPTIONS, ...commands.map((c) => c.options));
  const leading = words(argv, all);
  if (leading.length === 0) return undefined;
  const two = leading.length > 1 ? `${leading[0].word} ${leading[1].word}` : '';
  const command = commands.find((c) => c.name === two) ?? commands.find((c) => c.name === leading[0].word);
  if (!command) {
    const group = commands.filter((c) => c.name.startsWith(`${leading[0].word} `));
    if (group.length > 0)
      throw new UsageError(
        `${leading[0].word}: expected one of ${group.map((c) => c.name.split(' ')[1]).join(', ')}`,
      );
    throw new UsageError(`unknown command ${JSON.stringify(leading[0].word)}`);
  }
  const used = command.name.split(' ').length;
  const drop = new Set(leading.slice(0, used).map((w) => w.index));
  const rest = argv.filter((_, i) => !drop.has(i));
  const specs = { ...GLOBAL_OPTIONS, ...command.options };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...rest],
      options: Object.fromEntries(
        Object.entries(specs).map(([name, s]) => [
          name,
          s.short ? { type: s.type, short: s.short } : { type: s.type },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(`${command.name}: ${(error as Error).message.split('\n')[0]}`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  for (const [name, s] of Object.entries(specs)) {
    const value = values[name];
    if (s.values && typeof value === 'string' && !s.values.includes(value))
      throw new UsageError(`${command.name}: --${name} must be one of ${s.values.join(', ')}`);
  }
  if (!values.help) {
    const required = command.args.filter((a) => !a.endsWith('?')).length;
    if (parsed.positionals.length < required)
      throw new UsageError(`${command.name}: missing <${command.args[parsed.positionals.length]}>`);
    if (parsed.positionals.length > command.args.length)
      throw new UsageError(
        `${command.name}: unexpected argument ${JSON.stringify(parsed.positionals[command.args.length])}`,
      );
  }
  return { command, positionals: parsed.positionals, values };
}

/** Help text of one command. */
export function commandHelp(command: CommandShape): string {
  const args = command.args.map((a) => (a.endsWith('?') ? `[${a.slice(0, -1)}]` : `<${a}>`)).join(' ');
  const lines = [`usage: rlhf ${command.name}${args ? ` ${args}` : ''} [options]`, '', command.summary, ''];
  const specs = { ...command.options, ...GLOBAL_OPTIONS };
  const flag = (name: string, s: OptionSpec) =>
    `${s.short ? `-${s.short}, ` : ''}--${name}${s.type === 'string' ? ` ${s.placeholder ?? 'VALUE'}` : ''}`;
  const width = Math.max(...Object.entries(specs).map(([n, s]) => flag(n, s).length));
  for (const [name, s] of Object.entries(specs)) {
    const values = s.values ? ` (${s.values.join(', ')})` : '';
    lines.push(`  ${flag(name, s).padEnd(width)}  ${s.description}${values}`);
  }
  return `${lines.join('\n')}\n`;
}
