import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTar, TarError, tarSize, writeTar, writeTarStream } from './tar.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array | undefined) => new TextDecoder().decode(data);

/** An archive made by GNU tar from a directory built by `build`, in the given format. */
function gnuTar(build: (dir: string) => void, format: 'gnu' | 'posix' | 'ustar', args: string[] = ['.']) {
  const dir = mkdtempSync(join(tmpdir(), 'tar-test-'));
  build(dir);
  return new Uint8Array(execFileSync('tar', ['--format', format, '-cf', '-', '-C', dir, ...args]));
}

describe('readTar', () => {
  it.each(['gnu', 'posix', 'ustar'] as const)('reads what GNU tar writes (%s format)', (format) => {
    const long = `${'d'.repeat(80)}/${'f'.repeat(90)}.json`;
    const archive = gnuTar((dir) => {
      writeFileSync(join(dir, 'config.json'), '{"a":1}');
      mkdirSync(join(dir, 'd'.repeat(80)));
      writeFileSync(join(dir, long), 'x'.repeat(1000));
      writeFileSync(join(dir, 'empty'), '');
    }, format);
    const files = readTar(archive);
    expect([...files.keys()].sort()).toEqual(['config.json', 'empty', long].sort());
    expect(text(files.get('config.json'))).toBe('{"a":1}');
    expect(files.get(long)?.length).toBe(1000);
    expect(files.get('empty')?.length).toBe(0);
  });

  it('round-trips writeTar, and GNU tar lists what writeTar wrote', () => {
    const files = new Map([
      ['config.json', bytes('{}')],
      ['model.safetensors', new Uint8Array(1537).map((_, i) => i % 251)],
    ]);
    const archive = writeTar(files);
    expect(readTar(archive)).toEqual(files);
    const dir = mkdtempSync(join(tmpdir(), 'tar-test-'));
    writeFileSync(join(dir, 'a.tar'), archive);
    expect(
      execFileSync('tar', ['-tf', join(dir, 'a.tar')])
        .toString()
        .trim()
        .split('\n'),
    ).toEqual(['config.json', 'model.safetensors']);
    execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', dir]);
    expect(new Uint8Array(readFileSync(join(dir, 'model.safetensors')))).toEqual(
      files.get('model.safetensors'),
    );
  });

  it('refuses links, paths leaving the archive, duplicates and truncation with a TarError', () => {
    const symlink = gnuTar((dir) => {
      writeFileSync(join(dir, 'a'), 'a');
      symlinkSync('/etc/passwd', join(dir, 'config.json'));
    }, 'posix');
    expect(() => readTar(symlink)).toThrow(/"\.\/config\.json" is a symbolic link/);
    expect(() => readTar(writeTar({ '../escape': bytes('x') }))).toThrow(/leaves the archive/);
    expect(() => readTar(writeTar({ 'a/../../b': bytes('x') }))).toThrow(/leaves the archive/);
    expect(() => readTar(writeTar({ '/etc/passwd': bytes('x') }))).toThrow(/absolute path/);
    expect(() =>
      readTar(
        writeTar(
          new Map([
            ['a', bytes('1')],
            ['./a', bytes('2')],
          ]),
        ),
      ),
    ).toThrow(/appears twice/);
    const whole = writeTar({ big: new Uint8Array(4096) });
    expect(() => readTar(whole.subarray(0, 2048))).toThrow(TarError);
    expect(() => readTar(whole.subarray(0, 4608))).toThrow(/truncated/);
    const corrupt = whole.slice();
    corrupt[10] ^= 1;
    expect(() => readTar(corrupt)).toThrow(/checksum/);
    expect(() => readTar(writeTar({ a: bytes(''), b: bytes(''), c: bytes('') }), { maxFiles: 2 })).toThrow(
      /more than 2 files/,
    );
    expect(() => readTar(bytes('not a tar'))).toThrow(TarError);
  });
});

describe('writeTarStream', () => {
  const files = {
    'config.json': bytes('{"a":1}'),
    'adapter/w.bin': new Uint8Array(1000).fill(7),
    empty: bytes(''),
  };
  const members = Object.entries(files).map(([path, data]) => ({
    path,
    size: data.length,
    async *open() {
      // In two chunks, as a file stream gives them.
      yield data.subarray(0, 3);
      yield data.subarray(3);
    },
  }));
  const collect = async (chunks: AsyncIterable<Uint8Array>) => {
    const parts: Uint8Array[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    return Buffer.concat(parts);
  };

  it('streams the same bytes writeTar builds, of the size tarSize says; GNU tar lists them', async () => {
    const streamed = await collect(writeTarStream(members));
    expect(Buffer.compare(streamed, Buffer.from(writeTar(files)))).toBe(0);
    expect(streamed.length).toBe(tarSize(members));
    expect([...readTar(streamed).keys()]).toEqual(Object.keys(files));
    const dir = mkdtempSync(join(tmpdir(), 'tar-stream-'));
    writeFileSync(join(dir, 'a.tar'), streamed);
    const listed = execFileSync('tar', ['-tf', join(dir, 'a.tar')], { encoding: 'utf8' });
    expect(listed.trim().split('\n')).toEqual(Object.keys(files));
  });

  it('fails when a member yields other than its declared size (a file changed under it)', async () => {
    const lying = [
      {
        path: 'x',
        size: 5,
        async *open() {
          yield bytes('abc');
        },
      },
    ];
    await expect(collect(writeTarStream(lying))).rejects.toThrow(/x: 3 bytes read, 5 declared/);
  });
});
