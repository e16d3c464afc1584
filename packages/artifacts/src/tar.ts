// A strict reader and a plain writer of tar archives (POSIX ustar + pax headers): how a model directory is
// uploaded in one body. Only regular files come out; links, devices and paths leaving the archive are refused.

/** A tar archive that is malformed or holds what an upload may not (a link, `../`, an absolute path). */
export class TarError extends Error {
  override name = 'TarError';
}

const BLOCK = 512;
const decoder = new TextDecoder('utf-8', { fatal: false });

/** NUL-terminated text field of a header. */
function field(header: Uint8Array, start: number, length: number): string {
  const bytes = header.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return decoder.decode(end === -1 ? bytes : bytes.subarray(0, end));
}

/** Octal number field, or base-256 when its first byte has the high bit (GNU, files over 8 GiB). */
function number(header: Uint8Array, start: number, length: number, what: string): number {
  const bytes = header.subarray(start, start + length);
  if (bytes[0] & 0x80) {
    let value = bytes[0] & 0x7f;
    for (let i = 1; i < bytes.length; i++) value = value * 256 + bytes[i];
    return value;
  }
  const text = field(header, start, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text))
    throw new TarError(`header ${what} is not an octal number: ${JSON.stringify(text)}`);
  return Number.parseInt(text, 8);
}

/** The header checksum: the sum of its bytes with the checksum field read as spaces. */
function checksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
  return sum;
}

/** pax extended header records: "<length> <key>=<value>\n". */
function paxRecords(data: Uint8Array): Map<string, string> {
  const records = new Map<string, string>();
  const text = decoder.decode(data);
  let at = 0;
  while (at < text.length) {
    const space = text.indexOf(' ', at);
    const length = Number.parseInt(text.slice(at, space), 10);
    if (space === -1 || !Number.isInteger(length) || length <= 0) throw new TarError('malformed pax header');
    const record = text.slice(space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq === -1) throw new TarError('malformed pax header');
    records.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return records;
}

/** A member path made relative and checked: no absolute path, no `..`, no empty or hidden segment tricks. */
function memberPath(raw: string): string {
  const path = raw.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw))
    throw new TarError(`absolute path ${JSON.stringify(raw)}`);
  if (path.split('/').some((segment) => segment === '..' || segment === '' || segment === '.'))
    throw new TarError(`path ${JSON.stringify(raw)} leaves the archive or is malformed`);
  return path;
}

export interface TarLimits {
  /** At most this many files (default 64). */
  maxFiles?: number;
}

/**
 * The regular files of an archive, by path. Directories are skipped; symlinks, hard links, devices, FIFOs,
 * duplicate paths, truncated data and bad checksums throw TarError.
 */
export function readTar(archive: Uint8Array, limits: TarLimits = {}): Map<string, Uint8Array> {
  const maxFiles = limits.maxFiles ?? 64;
  const files = new Map<string, Uint8Array>();
  let offset = 0;
  let pax = new Map<string, string>();
  let longName: string | undefined;
  while (true) {
    if (offset + BLOCK > archive.length)
      throw new TarError('archive is truncated (no end-of-archive blocks)');
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break;
    if (checksum(header) !== number(header, 148, 8, 'checksum'))
      throw new TarError(`bad header checksum at byte ${offset}`);
    const type = String.fromCharCode(header[156] || 48);
    const size = number(header, 124, 12, 'size');
    const dataStart = offset + BLOCK;
    if (dataStart + size > archive.length)
      throw new TarError(`archive is truncated inside a member at byte ${offset}`);
    const data = archive.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x') {
      pax = paxRecords(data);
      continue;
    }
    if (type === 'g') continue; // global pax defaults (mtime, charset): nothing we use
    if (type === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    const prefix = field(header, 345, 155);
    const name =
      pax.get('path') ?? longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    pax = new Map();
    longName = undefined;
    if (type === '5') continue;
    if (type === '1' || type === '2')
      throw new TarError(
        `${JSON.stringify(name)} is a ${type === '2' ? 'symbolic' : 'hard'} link (only regular files are accepted)`,
      );
    if (type !== '0' && type !== '7')
      throw new TarError(`${JSON.stringify(name)} is not a regular file (tar type '${type}')`);
    const path = memberPath(name);
    if (files.has(path)) throw new TarError(`${JSON.stringify(path)} appears twice`);
    if (files.size >= maxFiles) throw new TarError(`more than ${maxFiles} files`);
    files.set(path, data);
  }
  return files;
}

function writeField(header: Uint8Array, text: string, start: number, length: number): void {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > length) throw new TarError(`tar field too long: ${text}`);
  header.set(bytes, start);
}

const octal = (value: number, length: number) => `${value.toString(8).padStart(length - 1, '0')}\0`;

/** A ustar archive of the files (paths up to 100 bytes, sizes under 8 GiB), in insertion order. */
export function writeTar(
  files: ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>,
): Uint8Array {
  const entries = files instanceof Map ? [...files] : Object.entries(files);
  const parts: Uint8Array[] = [];
  for (const [path, data] of entries) {
    const header = new Uint8Array(BLOCK);
    writeField(header, path, 0, 100);
    writeField(header, octal(0o644, 8), 100, 8);
    writeField(header, octal(0, 8), 108, 8);
    writeField(header, octal(0, 8), 116, 8);
    writeField(header, octal(data.length, 12), 124, 12);
    writeField(header, octal(0, 12), 136, 12);
    header[156] = 48; // '0': regular file
    writeField(header, 'ustar\u000000', 257, 8);
    writeField(header, octal(checksum(header), 7), 148, 7);
    header[155] = 32;
    parts.push(header, data, new Uint8Array((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  parts.push(new Uint8Array(BLOCK * 2));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
