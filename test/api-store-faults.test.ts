// Artifact store faults seen through the API: a full store is a 507 and a read-only one a 503, both with
// an error body and nothing left behind; bytes that are not UTF-8 are a 400 naming the line.
import { createWriteStream } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createArtifactStore } from '@rlhf/artifacts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createUtf8LineChecker } from '../apps/api/src/utf8.js';
import { createTestTeam, jsonl, SFT_ROWS, startApi, type TestApi } from './api-helpers.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ consumeEvents: false });
});
afterAll(() => api?.close());

const errno = (code: string) => Object.assign(new Error(`${code}: injected`), { code });

/** createWriteStream whose streams write `bytes` to the real file, then fail with `code`. */
const failingAfter = (bytes: number, code: string) =>
  ((path: string) => {
    const real = createWriteStream(path);
    let written = 0;
    return new Writable({
      write(chunk: Buffer, _encoding, callback) {
        written += chunk.byteLength;
        if (written > bytes) callback(errno(code));
        else real.write(chunk, callback);
      },
      final: (callback) => real.end(callback),
      destroy: (error, callback) => real.end(() => callback(error)),
    });
  }) as unknown as typeof createWriteStream;

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

const big = jsonl(Array.from({ length: 2000 }, (_, i) => ({ prompt: `p${i}`, response: `r${i}` })));

describe('a store that cannot take writes', () => {
  const faults = [
    {
      name: 'full (ENOSPC mid-write)',
      fs: { createWriteStream: failingAfter(1000, 'ENOSPC') },
      status: 507,
      code: 'insufficient_storage',
    },
    {
      name: 'read-only (EROFS, removing fails too)',
      fs: {
        // open(2) fails: no file is created, and nothing can be removed either
        createWriteStream: (() =>
          new Writable({
            construct: (callback) => callback(errno('EROFS')),
          })) as unknown as typeof createWriteStream,
        rm: (async () => {
          throw errno('EROFS');
        }) as never,
      },
      status: 503,
      code: 'store_read_only',
    },
  ];
  for (const fault of faults) {
    test(`${fault.name}: ${fault.status} with a JSON body, no temp file, no dataset`, async () => {
      const app = await api.restart({
        consumeEvents: false,
        artifacts: createArtifactStore(api.artifactDir, { fs: fault.fs }),
      });
      const { headers, team } = await createTestTeam(app);
      const response = await app.inject({
        method: 'POST',
        url: '/v1/datasets?name=big&kind=sft',
        headers: { ...headers, 'content-type': 'application/jsonl' },
        payload: big,
      });
      expect(response.statusCode).toBe(fault.status);
      expect(response.json().error.code).toBe(fault.code);
      expect(response.headers['retry-after']).toBe('60');
      expect((await filesUnder(api.artifactDir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
      expect(await filesUnder(join(api.artifactDir, 'uploads', team.id))).toEqual([]);
      expect(await app.services.prisma.dataset.count({ where: { teamId: team.id } })).toBe(0);
      // The healthy store takes the same upload.
      const again = await api.app.inject({
        method: 'POST',
        url: '/v1/datasets?name=big&kind=sft',
        headers: { ...headers, 'content-type': 'application/jsonl' },
        payload: big,
      });
      expect(again.statusCode).toBe(201);
      await app.close();
    });
  }
  afterAll(() => rm(join(api.artifactDir, 'datasets'), { recursive: true, force: true }));
});

describe('invalid UTF-8 in an upload', () => {
  test('is a 400 naming the line, and nothing is stored', async () => {
    const { headers, team } = await createTestTeam(api.app);
    const good = Buffer.from(jsonl(SFT_ROWS));
    const bad = Buffer.concat([
      good,
      Buffer.from('{"prompt": "caf'),
      Buffer.from([0xe9]),
      Buffer.from('", "response": "x"}\n'),
    ]);
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/datasets?name=latin1&kind=sft',
      headers: { ...headers, 'content-type': 'application/jsonl' },
      payload: bad,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({ code: 'invalid_dataset' });
    expect(response.json().error.message).toContain('line 3: invalid UTF-8');
    expect(await api.app.services.prisma.dataset.count({ where: { teamId: team.id } })).toBe(0);
    expect(await filesUnder(join(api.artifactDir, 'uploads', team.id))).toEqual([]);
    // Real multi-byte text is accepted.
    const text = await api.app.inject({
      method: 'POST',
      url: '/v1/datasets?name=utf8&kind=sft',
      headers: { ...headers, 'content-type': 'application/jsonl' },
      payload: jsonl([{ prompt: 'café 𝄞 日本', response: 'ok' }]),
    });
    expect(text.statusCode).toBe(201);
  });

  test('the checker: sequences split across chunks pass; overlong, surrogate, out of range and cut-off ones do not', () => {
    const text = Buffer.from('a\né\n𝄞 日本\n');
    for (let cut = 0; cut <= text.length; cut++) {
      const checker = createUtf8LineChecker();
      expect(checker.push(text.subarray(0, cut))).toBeNull();
      expect(checker.push(text.subarray(cut))).toBeNull();
      expect(checker.end()).toBeNull();
    }
    const line2 = (bytes: number[]) => {
      const checker = createUtf8LineChecker();
      return checker.push(Buffer.from([0x61, 0x0a, ...bytes, 0x0a])) ?? checker.end();
    };
    expect(line2([0xc0, 0x80])).toBe(2); // overlong NUL
    expect(line2([0xe0, 0x80, 0x80])).toBe(2); // overlong
    expect(line2([0xed, 0xa0, 0x80])).toBe(2); // a surrogate
    expect(line2([0xf4, 0x90, 0x80, 0x80])).toBe(2); // past U+10FFFF
    expect(line2([0x80])).toBe(2); // a stray continuation byte
    expect(line2([0xff])).toBe(2);
    const cut = createUtf8LineChecker();
    expect(cut.push(Buffer.from([0x61, 0x0a, 0x0a, 0xe6, 0x97]))).toBeNull();
    expect(cut.end()).toBe(3);
  });
});
