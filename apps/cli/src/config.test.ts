import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { configPath, readLogin, resolveLogin, writeLogin } from './config.js';

describe('the stored login', () => {
  let home: string;
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'rlhf-config-'));
  });
  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  test('XDG_CONFIG_HOME, else ~/.config', () => {
    expect(configPath({ XDG_CONFIG_HOME: '/x', HOME: '/h' })).toBe('/x/rlhf/config.json');
    expect(configPath({ HOME: '/h' })).toBe('/h/.config/rlhf/config.json');
  });

  test('written with mode 0600 (also over a wider existing file); flags over environment over file', async () => {
    const env = { HOME: home };
    await writeLogin(env, { url: 'http://file', key: 'file-key' });
    const path = await writeLogin(env, { url: 'http://file', key: 'file-key' });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(home, '.config', 'rlhf'))).mode & 0o077).toBe(0);
    expect(await readLogin(env)).toEqual({ url: 'http://file', key: 'file-key' });
    expect(await resolveLogin(env, {})).toEqual({ url: 'http://file', key: 'file-key' });
    const withEnv = { ...env, RLHF_URL: 'http://env/', RLHF_API_KEY: 'env-key' };
    expect(await resolveLogin(withEnv, {})).toEqual({ url: 'http://env', key: 'env-key' });
    expect(await resolveLogin(withEnv, { url: 'https://flag', key: 'flag-key' })).toEqual({
      url: 'https://flag',
      key: 'flag-key',
    });
    await expect(resolveLogin(env, { url: 'ftp://x' })).rejects.toThrow('not an http(s) URL: "ftp://x"');
    await expect(resolveLogin({ HOME: join(home, 'none') }, {})).rejects.toThrow(/^no API URL/);
  });
});
