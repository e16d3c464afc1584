// Server-Sent Events from a fetch body (the WHATWG event-stream format: `event:`, `data:`, `id:` fields, a
// blank line ends an event, lines starting with ':' are comments such as keepalives).

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** The events of a stream, as they arrive. */
export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  const line = (text: string): SseEvent | undefined => {
    if (text === '') {
      const done =
        data.length > 0
          ? { event: event || 'message', data: data.join('\n'), ...(id ? { id } : {}) }
          : undefined;
      event = '';
      data = [];
      return done;
    }
    if (text.startsWith(':')) return undefined;
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    const value = colon < 0 ? '' : text.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
    return undefined;
  };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.search(/\r\n|\r|\n/);
    while (end >= 0) {
      const text = buffer.slice(0, end);
      buffer = buffer.slice(buffer[end] === '\r' && buffer[end + 1] === '\n' ? end + 2 : end + 1);
      const done = line(text);
      if (done) yield done;
      end = buffer.search(/\r\n|\r|\n/);
    }
  }
}
