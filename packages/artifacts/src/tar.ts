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
  const files = new Map<string, Uint8Array>();
  let offset = 0;
  const members = new TarMembers(limits);
  while (true) {
    if (offset + BLOCK > archive.length)
      throw new TarError('archive is truncated (no end-of-archive blocks)');
    const header = members.header(archive.subarray(offset, offset + BLOCK), offset);
    if (header === 'end') break;
    const dataStart = offset + BLOCK;
    if (dataStart + header.size > archive.length)
      throw new TarError(`archive is truncated inside a member at byte ${offset}`);
    const data = archive.subarray(dataStart, dataStart + header.size);
    offset = dataStart + paddedSize(header.size);
    const path = members.member(header, data);
    if (path !== undefined) files.set(path, data);
  }
  return files;
}

/** A header block: the end of the archive, or a member of `size` bytes of data. */
export type TarHeader = 'end' | { type: string; size: number; name: string; offset: number };

/** A member's data blocks, padded to 512 bytes. */
export const paddedSize = (size: number): number => Math.ceil(size / BLOCK) * BLOCK;
export const TAR_BLOCK = BLOCK;

/**
 * The rules of readTar, fed one header and its data at a time (so a streaming reader applies the same ones):
 * pax and GNU long names apply to the next member; directories are skipped; links, devices, FIFOs, unsafe or
 * duplicate paths and too many files throw TarError.
 */
export class TarMembers {
  private pax = new Map<string, string>();
  private longName: string | undefined;
  private readonly paths = new Set<string>();
  private readonly maxFiles: number;
  constructor(limits: TarLimits = {}) {
    this.maxFiles = limits.maxFiles ?? 64;
  }

  /** Parses and checks a header block. */
  header(block: Uint8Array, offset: number): TarHeader {
    if (block.every((b) => b === 0)) return 'end';
    if (checksum(block) !== number(block, 148, 8, 'checksum'))
      throw new TarError(`bad header checksum at byte ${offset}`);
    const type = String.fromCharCode(block[156] || 48);
    const prefix = field(block, 345, 155);
    const name = prefix ? `${prefix}/${field(block, 0, 100)}` : field(block, 0, 100);
    return { type, size: number(block, 124, 12, 'size'), name, offset };
  }

  /** Whether the member's data must be read in memory (pax / long-name records) rather than streamed. */
  isMetadata(header: Exclude<TarHeader, 'end'>): boolean {
    return header.type === 'x' || header.type === 'g' || header.type === 'L';
  }

  /**
   * The path of a regular file member, or undefined for a member that is not one (metadata, a directory).
   * `data` is needed only for metadata members.
   */
  member(header: Exclude<TarHeader, 'end'>, data?: Uint8Array): string | undefined {
    const { type } = header;
    if (type === 'x') {
      this.pax = paxRecords(data ?? new Uint8Array());
      return undefined;
    }
    if (type === 'g') return undefined; // global pax defaults (mtime, charset): nothing we use
    if (type === 'L') {
      this.longName = field(data ?? new Uint8Array(), 0, data?.length ?? 0);
      return undefined;
    }
    const name = this.pax.get('path') ?? this.longName ?? header.name;
    this.pax = new Map();
    this.longName = undefined;
    if (type === '5') return undefined;
    if (type === '1' || type === '2')
      throw new TarError(
        `${JSON.stringify(name)} is a ${type === '2' ? 'symbolic' : 'hard'} link (only regular files are accepted)`,
      );
    if (type !== '0' && type !== '7')
      throw new TarError(`${JSON.stringify(name)} is not a regular file (tar type '${type}')`);
    const path = memberPath(name);
    if (this.paths.has(path)) throw new TarError(`${JSON.stringify(path)} appears twice`);
    if (this.paths.size >= this.maxFiles) throw new TarError(`more than ${this.maxFiles} files`);
    this.paths.add(path);
    return path;
  }
}

function writeField(header: Uint8Array, text: string, start: number, length: number): void {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > length) throw new TarError(`tar field too long: ${text}`);
  header.set(bytes, start);
}

const octal = (value: number, length: number) => `${value.toString(8).padStart(length - 1, '0')}\0`;

/** A ustar header block for a regular file (path up to 100 bytes, size under 8 GiB). */
export function tarHeader(path: string, size: number): Uint8Array {
  const header = new Uint8Array(BLOCK);
  writeField(header, path, 0, 100);
  writeField(header, octal(0o644, 8), 100, 8);
  writeField(header, octal(0, 8), 108, 8);
  writeField(header, octal(0, 8), 116, 8);
  writeField(header, octal(size, 12), 124, 12);
  writeField(header, octal(0, 12), 136, 12);
  header[156] = 48; // '0': regular file
  writeField(header, 'ustar\u000000', 257, 8);
  writeField(header, octal(checksum(header), 7), 148, 7);
  header[155] = 32;
  return header;
}

/** The zeros after a member's data up to the next block. */
const tarPadding = (size: number) => new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
/** Two zero blocks end an archive. */
const tarEnd = () => new Uint8Array(BLOCK * 2);

/** A ustar archive of the files (paths up to 100 bytes, sizes under 8 GiB), in insertion order. */
export function writeTar(
  files: ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>,
): Uint8Array {
  const entries = files instanceof Map ? [...files] : Object.entries(files);
  const parts: Uint8Array[] = [];
  for (const [path, data] of entries) parts.push(tarHeader(path, data.length), data, tarPadding(data.length));
  parts.push(tarEnd());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A member of a streamed archive: its size must be exact, `open` is called once when its turn comes. */
export interface TarStreamMember {
  path: string;
  size: number;
  open(): AsyncIterable<Uint8Array>;
}

/** The archive of `members` as chunks, one file open at a time (for downloads of multi-GB directories). */
export async function* writeTarStream(members: readonly TarStreamMember[]): AsyncGenerator<Uint8Array> {
  for (const member of members) {
    yield tarHeader(member.path, member.size);
    let sent = 0;
    for await (const chunk of member.open()) {
      sent += chunk.length;
      yield chunk;
    }
    if (sent !== member.size)
      throw new TarError(`${member.path}: ${sent} bytes read, ${member.size} declared`);
    yield tarPadding(member.size);
  }
  yield tarEnd();
}

/** The size in bytes of writeTarStream(members): for a content-length header. */
export const tarSize = (members: readonly Pick<TarStreamMember, 'size'>[]): number =>
  members.reduce((n, m) => n + BLOCK + paddedSize(m.size), 0) + BLOCK * 2;
