// Refused uploads over real HTTP: the client gets its 4xx while it is still sending, the socket is not
// left half-read, and a graceful shutdown right after does not wait for the client.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { baseUrl, createTestTeam, jsonl, SFT_ROWS, startApi, type TestApi } from './api-helpers.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ consumeEvents: false });
});
afterAll(() => api?.close());

/** Sends the request head and `body`, then keeps the socket open without sending more (a slow client). */
async function stalledUpload(url: string, head: Record<string, string>, body: string) {
  const { hostname, port, pathname, search } = new URL(url);
  const socket: Socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const lines = Object.entries(head).map(([name, value]) => `${name}: ${value}`);
  socket.write(
    `POST ${pathname}${search} HTTP/1.1\r\nhost: ${hostname}:${port}\r\n${lines.join('\r\n')}\r\n\r\n`,
  );
  socket.write(body);
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('utf8');
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {}); // a reset after the reply is what we want
  const response = async () => {
    const deadline = Date.now() + 5000;
    while (!/\r\n\r\n[\s\S]*\}/.test(received)) {
      if (Date.now() > deadline) throw new Error(`no response: ${JSON.stringify(received)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(received)?.[1]);
    const json = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/, ''));
    return { status, json, head: received.slice(0, received.indexOf('\r\n\r\n')) };
  };
  return { socket, response, closed };
}

describe('a refused upload does not block shutdown', () => {
  const cases: {
    name: string;
    head: (declared: boolean) => Record<string, string>;
    body: string;
    status: number;
  }[] = [
    {
      name: 'declared too large (content-length over the limit)',
      head: () => ({ 'content-length': String(50 * 1024 * 1024) }),
      body: 'x'.repeat(1024),
      status: 413,
    },
    {
      name: 'streamed past the limit (chunked)',
      head: () => ({ 'transfer-encoding': 'chunked' }),
      body: `${(2048).toString(16)}\r\n${'y'.repeat(2048)}\r\n`,
      status: 413,
    },
    {
      name: 'bad content (refused after the first errors, while the client still sends)',
      head: () => ({ 'content-length': String(900) }),
      body: jsonl(Array.from({ length: 30 }, () => ({ nope: 1 }))).slice(0, 600),
      status: 400,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const app = await api.restart();
      const { headers } = await createTestTeam(app, { maxUploadBytes: 1000 });
      const upload = await stalledUpload(
        `${await baseUrl(app)}/v1/datasets?name=refused&kind=sft`,
        { ...headers, 'content-type': 'application/jsonl', ...c.head(true) },
        c.body,
      );
      const { status, json, head } = await upload.response();
      expect(status).toBe(c.status);
      expect(json.error.code).toBe(c.status === 413 ? 'payload_too_large' : 'invalid_dataset');
      expect(head.toLowerCase()).toContain('connection: close');
      await upload.closed; // the server ends the connection: nothing is left half-read
      const started = Date.now();
      await app.close();
      expect(Date.now() - started).toBeLessThan(2000);
      upload.socket.destroy();
    });
  }

  test('a good upload over real HTTP keeps its connection', async () => {
    const { headers } = await createTestTeam(api.app);
    const response = await fetch(`${await baseUrl(api.app)}/v1/datasets?name=good&kind=sft`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/jsonl' },
      body: jsonl(SFT_ROWS),
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('connection')).not.toBe('close');
  });
});
