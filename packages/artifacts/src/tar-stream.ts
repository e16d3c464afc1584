// readTar's rules over a stream: an archive too large for memory (a multi-GB model upload) is read block by
// block, each regular file's data handed on as it arrives, so it can go straight to disk.
import { paddedSize, TAR_BLOCK, type TarLimits, TarError, TarMembers } from './tar.js';

/** Exact-size reads over an async byte stream, buffering only what a read needs. */
class ByteReader {
  private readonly chunks: Uint8Array[] = [];
  private available = 0;
  constructor(private readonly source: AsyncIterator<Uint8Array | string>) {}

  private async pull(): Promise<boolean> {
    const next = await this.source.next();
    if (next.done) return false;
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    this.chunks.push(chunk);
    this.available += chunk.length;
    return true;
  }

  /** At most `n` bytes from the front of what is buffered (something must be). */
  private take(n: number): Uint8Array {
    const head = this.chunks[0];
    if (n >= head.length) {
      this.chunks.shift();
      this.available -= head.length;
      return head;
    }
    this.chunks[0] = head.subarray(n);
    this.available -= n;
    return head.subarray(0, n);
  }

  /** Exactly `n` bytes, or undefined when the stream ends first. */
  async exact(n: number): Promise<Uint8Array | undefined> {
    while (this.available < n) if (!(await this.pull())) return undefined;
    if (this.chunks[0].length >= n) return this.take(n);
    const out = new Uint8Array(n);
    for (let at = 0; at < n; ) {
      const part = this.take(n - at);
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** The next `n` bytes as they arrive; TarError when the stream ends first. */
  async *stream(n: number, what: string): AsyncGenerator<Uint8Array> {
    for (let left = n; left > 0; ) {
      if (this.available === 0 && !(await this.pull()))
        throw new TarError(`archive is truncated inside ${what}`);
      const part = this.take(Math.min(left, this.chunks[0].length));
      left -= part.length;
      yield part;
    }
  }
}

async function* counted(parts: AsyncIterable<Uint8Array>, count: (n: number) => void) {
  for await (const part of parts) {
    count(part.length);
    yield part;
  }
}

export interface TarStreamLimits extends TarLimits {
  /** Largest pax / long-name record read into memory (default 1 MiB). */
  maxMetadataBytes?: number;
}

/**
 * Reads a tar archive from `source`, calling `onFile(path, size, data)` for each regular file in order;
 * `data` yields the file's bytes as they arrive (what onFile leaves unread is skipped). The rules are readTar's
 * (TarMembers); a stream ending before the end-of-archive block is a TarError.
 */
export async function readTarStream(
  source: AsyncIterable<Uint8Array | string>,
  onFile: (path: string, size: number, data: AsyncIterable<Uint8Array>) => Promise<void>,
  limits: TarStreamLimits = {},
): Promise<void> {
  const reader = new ByteReader(source[Symbol.asyncIterator]());
  const members = new TarMembers(limits);
  const maxMetadata = limits.maxMetadataBytes ?? 1 << 20;
  let offset = 0;
  while (true) {
    const block = await reader.exact(TAR_BLOCK);
    if (!block) throw new TarError('archive is truncated (no end-of-archive blocks)');
    const header = members.header(block, offset);
    if (header === 'end') return;
    const what = `a member at byte ${offset}`;
    offset += TAR_BLOCK + paddedSize(header.size);
    if (members.isMetadata(header)) {
      if (header.size > maxMetadata)
        throw new TarError(
          `a ${header.size}-byte pax/long-name record at byte ${header.offset} is too large`,
        );
      const data = await reader.exact(paddedSize(header.size));
      if (!data) throw new TarError(`archive is truncated inside ${what}`);
      members.member(header, data.subarray(0, header.size));
      continue;
    }
    const path = members.member(header);
    let consumed = 0;
    if (path !== undefined)
      await onFile(
        path,
        header.size,
        counted(reader.stream(header.size, what), (n) => (consumed += n)),
      );
    // Whatever onFile left unread, then the padding.
    for await (const _ of reader.stream(paddedSize(header.size) - consumed, what));
  }
}
