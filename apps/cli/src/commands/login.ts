// rlhf login --url URL --key KEY: checks the key against the API, then stores both (mode 0600).
import { UsageError } from '../args.js';
import { createClient } from '../client.js';
import type { Command } from '../command.js';
import { normalizeUrl, readLogin, writeLogin } from '../config.js';

export const login: Command = {
  name: 'login',
  summary: 'check and store the API URL and key in the config directory (mode 0600)',
  args: [],
  options: {},
  async run(ctx) {
    const stored = await readLogin(ctx.io.env);
    const rawUrl = ctx.flags.string('url') ?? ctx.io.env.RLHF_URL ?? stored.url;
    const key = ctx.flags.string('key') ?? ctx.io.env.RLHF_API_KEY;
    if (!rawUrl) throw new UsageError('login: --url is required');
    if (!key) throw new UsageError('login: --key is required (or RLHF_API_KEY)');
    const url = normalizeUrl(rawUrl);
    // A key the API refuses is not stored: the error (401) is the one line the user sees.
    await createClient({ url, key }).listRuns({ limit: 1 });
    const path = await writeLogin(ctx.io.env, { url, key });
    if (ctx.json) ctx.printJson({ url, config: path });
    else ctx.print(`logged in to ${url} (key ${key.slice(0, 9)}…, stored in ${path})`);
    return 0;
  },
};
