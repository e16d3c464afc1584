// rlhf completion bash|zsh: a completion script generated from the command table (commands, subcommands,
// options, option values, files and directories where a command takes them).
// bash: `source <(rlhf completion bash)`; zsh: `rlhf completion zsh > "${fpath[1]}/_rlhf"`.
import { type CommandShape, GLOBAL_OPTIONS, type OptionSpec, UsageError } from '../args.js';
import type { Command } from '../command.js';

const FILE_ARGS = new Set(['file', 'dir']);
const DIR_OPTIONS = new Set(['out']);
/** Characters that would end a word or a description in the generated scripts. */
const plain = (text: string) => text.replace(/['"`$\\[\]:]/g, '');

const groupsOf = (commands: readonly CommandShape[]) => {
  const groups = new Map<string, CommandShape[]>();
  for (const c of commands) {
    const [head] = c.name.split(' ');
    groups.set(head, [...(groups.get(head) ?? []), c]);
  }
  return groups;
};
const optionsOf = (c: CommandShape): [string, OptionSpec][] =>
  Object.entries({ ...c.options, ...GLOBAL_OPTIONS });

export function bashCompletion(commands: readonly CommandShape[]): string {
  const groups = groupsOf(commands);
  const valueCases = new Map<string, string>();
  for (const c of commands)
    for (const [name, s] of optionsOf(c)) if (s.values) valueCases.set(name, s.values.join(' '));
  const lines = [
    '# rlhf bash completion: source <(rlhf completion bash)',
    '_rlhf() {',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
    `  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=($(compgen -W "${[...groups.keys()].join(' ')}" -- "$cur")); return; fi`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
    '  local cmd="${COMP_WORDS[1]}"',
    '  case "$cmd" in',
  ];
  for (const [head, members] of groups) {
    if (members.length === 1 && members[0].name === head) continue;
    const subs = members.map((m) => m.name.split(' ')[1]).join(' ');
    lines.push(
      `    ${head}) if [ "$COMP_CWORD" -eq 2 ]; then COMPREPLY=($(compgen -W "${subs}" -- "$cur")); return; fi; cmd="${head} \${COMP_WORDS[2]}" ;;`,
    );
  }
  lines.push('  esac', '  case "$prev" in');
  for (const [name, values] of valueCases)
    lines.push(`    --${name}) COMPREPLY=($(compgen -W "${values}" -- "$cur")); return ;;`);
  lines.push(
    `    ${[...DIR_OPTIONS].map((o) => `--${o}`).join('|')}) COMPREPLY=($(compgen -d -- "$cur")); return ;;`,
  );
  const stringOptions = new Set(
    commands.flatMap((c) =>
      optionsOf(c)
        .filter(([, s]) => s.type === 'string')
        .map(([n]) => `--${n}`),
    ),
  );
  lines.push(
    `    ${[...stringOptions].join('|')}) return ;;`,
    '  esac',
    '  local opts="" files=0',
    '  case "$cmd" in',
  );
  for (const c of commands) {
    const opts = optionsOf(c)
      .map(([n]) => `--${n}`)
      .join(' ');
    const files = c.args.some((a) => FILE_ARGS.has(a.replace('?', ''))) ? 1 : 0;
    lines.push(`    "${c.name}") opts="${opts}"; files=${files} ;;`);
  }
  lines.push(
    '  esac',
    '  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur"));',
    '  elif [ "$files" -eq 1 ]; then COMPREPLY=($(compgen -f -- "$cur")); fi',
    '}',
    'complete -o filenames -o bashdefault -F _rlhf rlhf',
    '',
  );
  return lines.join('\n');
}

export function zshCompletion(commands: readonly CommandShape[]): string {
  const groups = groupsOf(commands);
  const spec = (c: CommandShape) => {
    const options = optionsOf(c).map(([name, s]) => {
      const values = s.values
        ? `:${name}:(${s.values.join(' ')})`
        : DIR_OPTIONS.has(name)
          ? `:${name}:_directories`
          : s.type === 'string'
            ? `:${name}:`
            : '';
      return `'--${name}[${plain(s.description)}]${values}'`;
    });
    const args = c.args.map((a, i) => {
      const bare = a.replace('?', '');
      return `'${a.endsWith('?') ? ':' : ''}${i + 1}:${bare}:${FILE_ARGS.has(bare) ? (bare === 'dir' ? '_directories' : '_files') : ''}'`;
    });
    return `_arguments ${[...options, ...args].join(' ')}`;
  };
  const lines = [
    '#compdef rlhf',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: zsh parameter expansion
    '# rlhf zsh completion: rlhf completion zsh > "${fpath[1]}/_rlhf" (then restart zsh)',
    '_rlhf() {',
    '  local -a commands',
    `  commands=(${[...groups].map(([head, m]) => `'${head}:${plain(m.length === 1 ? m[0].summary : m.map((x) => x.name.split(' ')[1]).join(', '))}'`).join(' ')})`,
    "  if (( CURRENT == 2 )); then _describe 'command' commands; return; fi",
    '  local cmd=$words[2]',
    '  shift words; (( CURRENT-- ))',
    '  case $cmd in',
  ];
  for (const [head, members] of groups) {
    if (members.length === 1 && members[0].name === head) {
      lines.push(`    ${head}) ${spec(members[0])} ;;`);
      continue;
    }
    const subs = members.map((m) => `'${m.name.split(' ')[1]}:${plain(m.summary)}'`).join(' ');
    lines.push(
      `    ${head})`,
      `      if (( CURRENT == 2 )); then local -a subs; subs=(${subs}); _describe 'subcommand' subs; return; fi`,
      '      local sub=$words[2]; shift words; (( CURRENT-- ))',
      '      case $sub in',
      ...members.map((m) => `        ${m.name.split(' ')[1]}) ${spec(m)} ;;`),
      '      esac ;;',
    );
  }
  lines.push('  esac', '}', '_rlhf "$@"', '');
  return lines.join('\n');
}

export const completion: Command = {
  name: 'completion',
  summary: 'print a shell completion script (bash or zsh)',
  args: ['shell'],
  options: {},
  async run(ctx) {
    const shell = ctx.args[0];
    if (shell === 'bash') ctx.io.stdout.write(bashCompletion(ctx.commands));
    else if (shell === 'zsh') ctx.io.stdout.write(zshCompletion(ctx.commands));
    else throw new UsageError(`completion: unknown shell ${JSON.stringify(shell)} (bash or zsh)`);
    return 0;
  },
};
