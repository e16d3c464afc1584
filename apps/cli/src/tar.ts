// A ustar archive of plain files (what POST /v1/models reads): a 512-byte header per file, the data padded
// to 512 bytes, two zero blocks at the end.

const BLOCK = 512;

function header(name: string, size: number, mtime: number): Uint8Array {
  const block = new Uint8Array(BLOCK);
  const ascii = new TextEncoder();
  const put = (offset: number, length: number, text: string) =>
    block.set(ascii.encode(text).slice(0, length), offset);
  const octal = (offset: number, length: number, value: number) =>
    put(offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
  if (ascii.encode(name).length > 100) throw new Error(`tar: file name longer than 100 bytes: ${name}`);
  put(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, mtime);
  put(148, 8, '        '); // the checksum is computed with its own field as spaces
  put(156, 1, '0');
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  const sum = block.reduce((total, byte) => total + byte, 0);
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

/** The archive of `files` (name -> bytes), in the given order. */
export function tarArchive(
  files: readonly (readonly [string, Uint8Array])[],
  mtime = Math.floor(Date.now() / 1000),
): Uint8Array {
  const size = files.reduce(
    (total, [, data]) => total + BLOCK + Math.ceil(data.length / BLOCK) * BLOCK,
    2 * BLOCK,
  );
  const out = new Uint8Array(size);
  let at = 0;
  for (const [name, data] of files) {
    out.set(header(name, data.length, mtime), at);
    out.set(data, at + BLOCK);
    at += BLOCK + Math.ceil(data.length / BLOCK) * BLOCK;
  }
  return out;
}
