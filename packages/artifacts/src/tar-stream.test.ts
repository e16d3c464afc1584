import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTar, TarError, writeTar } from './tar.js';
import { readTarStream } from './tar-stream.js';

/** The archive in chunks of `size` bytes, as a request body arrives. */
async function* chunked(archive: Uint8Array, size: number) {
  for (let at = 0; at < archive.length; at += size) yield archive.subarray(at, at + size);
}

/** Every file readTarStream hands on, read whole. */
async function streamed(source: AsyncIterable<Uint8Array>): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  await readTarStream(source, async (path, size, data) => {
    const parts: Uint8Array[] = [];
    for await (const part of data) parts.push(part);
    const whole = new Uint8Array(Buffer.concat(parts));
    expect(whole.length).toBe(size);
    files.set(path, whole);
  });
  return files;
}

function gnuTar(build: (dir: string) => void, format: 'gnu' | 'posix' | 'ustar') {
  const dir = mkdtempSync(join(tmpdir(), 'tar-stream-test-'));
  build(dir);
  return new Uint8Array(execFileSync('tar', ['--format', format, '-cf', '-', '-C', dir, '.']));
}

describe('readTarStream', () => {
  it.each([
    ['gnu', 1],
    ['posix', 513],
    ['ustar', 100_000],
  ] as const)('reads what readTar reads from GNU tar (%s format, %i-byte chunks)', async (format, size) => {
    const long = `${'d'.repeat(80)}/${'f'.repeat(90)}.json`;
    const archive = gnuTar((dir) => {
      writeFileSync(join(dir, 'config.json'), '{"a":1}');
      mkdirSync(join(dir, 'd'.repeat(80)));
      writeFileSync(join(dir, long), 'x'.repeat(1000));
      writeFileSync(
        join(dir, 'weights'),
        new Uint8Array(70_001).map((_, i) => (i * 7) % 256),
      );
      writeFileSync(join(dir, 'empty'), '');
    }, format);
    const expected = readTar(archive);
    expect(expected.size).toBe(4);
    expect(await streamed(chunked(archive, size))).toEqual(expected);
  });

  it('skips what the callback leaves unread', async () => {
    const archive = writeTar({ a: new Uint8Array(3000).fill(1), b: new Uint8Array([2, 3]) });
    const seen: string[] = [];
    await readTarStream(chunked(archive, 700), async (path, _size, data) => {
      seen.push(path);
      for await (const _ of data) break; // reads one chunk only
    });
    expect(seen).toEqual(['a', 'b']);
  });

  it('refuses a truncated archive, a cut-off member, links and paths leaving the archive', async () => {
    const archive = writeTar({ 'config.json': new Uint8Array(2000).fill(32) });
    await expect(streamed(chunked(archive.subarray(0, 1200), 64))).rejects.toThrow(
      'archive is truncated inside a member at byte 0',
    );
    await expect(streamed(chunked(archive.subarray(0, archive.length - 1024), 64))).rejects.toThrow(
      'archive is truncated (no end-of-archive blocks)',
    );
    const linked = gnuTar((dir) => {
      writeFileSync(join(dir, 'real'), 'x');
      symlinkSync('/etc/passwd', join(dir, 'config.json'));
    }, 'gnu');
    await expect(streamed(chunked(linked, 512))).rejects.toThrow(TarError);
    await expect(streamed(chunked(linked, 512))).rejects.toThrow('symbolic link');
    const escaping = writeTar({ '../x': new Uint8Array([1]) });
    await expect(streamed(chunked(escaping, 512))).rejects.toThrow('leaves the archive');
  });
});
