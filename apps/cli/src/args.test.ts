import { describe, expect, test } from 'vitest';
import { type CommandShape, commandHelp, parseCommandLine, UsageError } from './args.js';

const COMMANDS: CommandShape[] = [
  {
    name: 'runs',
    summary: 'runs',
    args: [],
    options: { status: { type: 'string', description: 's', values: ['queued', 'failed'] } },
  },
  {
    name: 'datasets upload',
    summary: 'upload',
    args: ['file'],
    options: { kind: { type: 'string', description: 'k' } },
  },
  { name: 'datasets list', summary: 'list', args: [], options: {} },
  {
    name: 'show',
    summary: 'show',
    args: ['id'],
    options: { follow: { type: 'boolean', short: 'f', description: 'f' } },
  },
];

describe('parseCommandLine', () => {
  test('finds one- and two-word commands wherever the global options are', () => {
    expect(
      parseCommandLine(['--json', 'datasets', 'upload', 'a.jsonl', '--kind', 'sft'], COMMANDS),
    ).toMatchObject({
      command: { name: 'datasets upload' },
      positionals: ['a.jsonl'],
      values: { json: true, kind: 'sft' },
    });
    // An option value that looks like a command word is not taken for one.
    expect(parseCommandLine(['--url', 'runs', 'show', 'x', '-f'], COMMANDS)).toMatchObject({
      command: { name: 'show' },
      positionals: ['x'],
      values: { url: 'runs', follow: true },
    });
    expect(parseCommandLine([], COMMANDS)).toBeUndefined();
  });

  test('refuses unknown commands and options, bad values, missing and extra arguments', () => {
    const refuse = (argv: string[]) => {
      try {
        parseCommandLine(argv, COMMANDS);
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        return (error as Error).message;
      }
      throw new Error(`accepted ${argv.join(' ')}`);
    };
    expect(refuse(['nope'])).toBe('unknown command "nope"');
    expect(refuse(['datasets', 'remove'])).toBe('datasets: expected one of upload, list');
    expect(refuse(['runs', '--status', 'sleeping'])).toBe('runs: --status must be one of queued, failed');
    expect(refuse(['runs', '--kind', 'sft'])).toMatch(/^runs: Unknown option '--kind'/);
    expect(refuse(['show'])).toBe('show: missing <id>');
    expect(refuse(['show', 'a', 'b'])).toBe('show: unexpected argument "b"');
  });

  test('help lists the arguments and every option', () => {
    const help = commandHelp(COMMANDS[1]);
    expect(help).toMatch(/^usage: rlhf datasets upload <file> \[options\]\n/);
    expect(help).toMatch(/--kind VALUE +k\n/);
    expect(help).toMatch(/--json +print JSON/);
  });
});
