import { describe, expect, test } from 'vitest';
import { readSse } from './sse.js';

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield new TextEncoder().encode(part);
}

describe('readSse', () => {
  test('events split across chunks, multi-line data, ids, comments and CRLF', async () => {
    const events = [];
    for await (const event of readSse(
      chunks(
        ': keepalive\n\nid: 7\nevent: metr',
        'ics\ndata: {"a":1}\n\n',
        'data: x\r\ndata: y\r\n\r\nevent: end\ndata: {}\n\n',
      ),
    ))
      events.push(event);
    expect(events).toEqual([
      { event: 'metrics', data: '{"a":1}', id: '7' },
      { event: 'message', data: 'x\ny', id: '7' },
      { event: 'end', data: '{}', id: '7' },
    ]);
  });
});
