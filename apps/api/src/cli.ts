// Team administration from a shell (DATABASE_URL from the environment):
//   tsx apps/api/src/cli.ts create-team <name> [--max-active-stages N] [--max-upload-bytes N] [--requests-per-minute N]
//   tsx apps/api/src/cli.ts create-key <team name or id> [--name NAME]     prints the key once
//   tsx apps/api/src/cli.ts create-admin-key [--name NAME]                 prints the key once
//   tsx apps/api/src/cli.ts list-teams
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, checkPostgres, runMain } from '@rlhf/config';
import { createPrisma } from '@rlhf/db';
import { ApiError } from './errors.js';
import { createApiKey, createTeam, findTeam, type TeamLimits } from './teams.js';

const USAGE = `usage:
  cli create-team <name> [--max-active-stages N] [--max-upload-bytes N] [--requests-per-minute N]
  cli create-key <team name or id> [--name NAME]
  cli create-admin-key [--name NAME]
  cli list-teams`;

function count(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ConfigError([`--${flag}: expected a whole number, got "${value}"`]);
  return n;
}

/** Runs one CLI command; `print` receives what it reports (the key, once). */
export async function runCli(
  args: string[],
  databaseUrl: string | undefined,
  print: (text: string) => void,
): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      'max-active-stages': { type: 'string' },
      'max-upload-bytes': { type: 'string' },
      'requests-per-minute': { type: 'string' },
    },
  });
  const [command, argument] = positionals;
  if (!databaseUrl)
    throw new ConfigError(['DATABASE_URL: required, e.g. postgresql://postgres@127.0.0.1:5432/rlhf']);
  await checkPostgres(databaseUrl);
  const prisma = createPrisma(databaseUrl);
  try {
    switch (command) {
      case 'create-team': {
        if (!argument) throw new ConfigError([USAGE]);
        const limits: TeamLimits = {
          maxActiveStages: count('max-active-stages', values['max-active-stages']),
          maxUploadBytes: count('max-upload-bytes', values['max-upload-bytes']),
          requestsPerMinute: count('requests-per-minute', values['requests-per-minute']),
        };
        const team = await createTeam(prisma, argument, limits);
        print(`team ${team.name} created: id ${team.id}`);
        return;
      }
      case 'create-key': {
        if (!argument) throw new ConfigError([USAGE]);
        const team = await findTeam(prisma, argument);
        if (!team) throw new ConfigError([`no team named or with id "${argument}"`]);
        const key = await createApiKey(prisma, { teamId: team.id, name: values.name ?? 'default' });
        print(`API key for team ${team.name} (shown once, store it now):\n${key.key}`);
        return;
      }
      case 'create-admin-key': {
        const key = await createApiKey(prisma, { teamId: null, isAdmin: true, name: values.name ?? 'admin' });
        print(`admin key (shown once, store it now):\n${key.key}`);
        return;
      }
      case 'list-teams': {
        for (const team of await prisma.team.findMany({ orderBy: { name: 'asc' } })) {
          print(
            `${team.id}  ${team.name}  maxActiveStages=${team.maxActiveStages} maxUploadBytes=${team.maxUploadBytes} requestsPerMinute=${team.requestsPerMinute}`,
          );
        }
        return;
      }
      default:
        throw new ConfigError([USAGE]);
    }
  } catch (error) {
    // A taken team name is the user's mistake: one line, no stack.
    if (error instanceof ApiError) throw new ConfigError([error.message]);
    throw error;
  } finally {
    await prisma.$disconnect();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runMain(() => runCli(process.argv.slice(2), process.env.DATABASE_URL, console.log));
}
