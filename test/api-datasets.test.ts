// Dataset uploads: streamed, validated line by line, content-addressed; nothing half-stored.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createTestTeam,
  jsonl,
  PREFERENCE_ROWS,
  PROMPT_ROWS,
  SFT_ROWS,
  startApi,
  type TestApi,
  uploadDataset,
} from './api-helpers.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ consumeEvents: false });
});
afterAll(() => api?.close());

const upload = (headers: { authorization: string }, query: string, payload: string) =>
  api.app.inject({
    method: 'POST',
    url: `/v1/datasets?${query}`,
    headers: { ...headers, 'content-type': 'application/x-ndjson' },
    payload,
  });

/** Every file in the artifact store under `dir` (temporary uploads included). */
async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(join(api.artifactDir, dir), { recursive: true, withFileTypes: true }))
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

describe('upload', () => {
  test('stores a valid file under its sha256 and records it; the same upload again is the same dataset', async () => {
    const { team, headers } = await createTestTeam(api.app);
    const text = jsonl(SFT_ROWS);
    const sha256 = createHash('sha256').update(text).digest('hex');
    const created = await upload(headers, 'name=demos&kind=sft', text);
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      teamId: team.id,
      name: 'demos',
      kind: 'sft',
      rowCount: 2,
      sizeBytes: Buffer.byteLength(text),
      sha256,
    });
    expect(await readFile(join(api.artifactDir, 'datasets', team.id, `${sha256}.jsonl`), 'utf8')).toBe(text);
    expect(await filesUnder(`uploads/${team.id}`)).toEqual([]);
    const again = await upload(headers, 'name=demos&kind=sft', text);
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(created.json().id);
    const fetched = await api.app.inject({
      method: 'GET',
      url: `/v1/datasets/${created.json().id}`,
      headers,
    });
    expect(fetched.json()).toEqual(created.json());
  });

  test('the same content under another name (or kind) is a new named dataset on the same stored file', async () => {
    const { team, headers } = await createTestTeam(api.app);
    const text = jsonl(PROMPT_ROWS);
    const first = await upload(headers, 'name=prompts-v1&kind=prompt', text);
    const renamed = await upload(headers, 'name=prompts-final&kind=prompt', text);
    expect([first.statusCode, renamed.statusCode]).toEqual([201, 201]);
    expect(renamed.json().id).not.toBe(first.json().id);
    expect(renamed.json()).toMatchObject({
      name: 'prompts-final',
      kind: 'prompt',
      sha256: first.json().sha256,
    });
    // Each name stays idempotent on its own.
    const renamedAgain = await upload(headers, 'name=prompts-final&kind=prompt', text);
    expect([renamedAgain.statusCode, renamedAgain.json().id]).toEqual([200, renamed.json().id]);
    const listed = await api.app.inject({ method: 'GET', url: '/v1/datasets', headers });
    expect(listed.json().items.map((d: { name: string }) => d.name)).toEqual(['prompts-final', 'prompts-v1']);
    // One stored file for both records (beside it, the store's hidden record of its sha256).
    const stored = (await filesUnder(`datasets/${team.id}`)).filter((name) => !name.startsWith('.'));
    expect(stored).toEqual([`${first.json().sha256}.jsonl`]);
  });

  test('accepts every kind, chat-form SFT rows and CRLF line ends', async () => {
    const { headers } = await createTestTeam(api.app);
    const chat = {
      messages: [
        { role: 'user', content: 'sort: 2 1' },
        { role: 'assistant', content: '1 2' },
      ],
    };
    const ranked = { prompt: 'sort: 3 1', responses: ['1 3', '3 1', '31'] };
    for (const [kind, text] of [
      ['sft', jsonl([chat]).replace('\n', '\r\n')],
      ['preference', jsonl(PREFERENCE_ROWS)],
      ['ranked', jsonl([ranked])],
      ['prompt', jsonl(PROMPT_ROWS)],
    ]) {
      const response = await upload(headers, `name=${kind}&kind=${kind}`, text);
      expect(response.statusCode, response.body).toBe(201);
    }
  });

  test('a malformed line is a 400 naming its line, and nothing is stored', async () => {
    const { team, headers } = await createTestTeam(api.app);
    const text = `${JSON.stringify(SFT_ROWS[0])}\n{"prompt": "x", "response": \n${JSON.stringify(SFT_ROWS[1])}\n`;
    const response = await upload(headers, 'name=bad&kind=sft', text);
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toEqual({
      code: 'invalid_dataset',
      message: 'not a valid sft dataset: line 2: invalid JSON',
    });
    const missing = await upload(headers, 'name=bad&kind=preference', jsonl([{ prompt: 'p', chosen: 'a' }]));
    expect(missing.json().error.message).toBe('not a valid preference dataset: line 1: /rejected: required');
    const tie = await upload(
      headers,
      'name=bad&kind=ranked',
      jsonl([{ prompt: 'p', responses: ['a', 'a'] }]),
    );
    expect(tie.json().error.message).toContain('line 1: /responses/1: duplicate response');
    const empty = await upload(headers, 'name=bad&kind=prompt', '\n\n');
    expect(empty.json().error.message).toBe('not a valid prompt dataset: file: no rows');
    expect(await api.app.services.prisma.dataset.count({ where: { teamId: team.id } })).toBe(0);
    expect(await filesUnder(`datasets/${team.id}`)).toEqual([]);
    expect(await filesUnder(`uploads/${team.id}`)).toEqual([]);
  });

  test('rows of another kind are refused (an SFT file uploaded as prompts)', async () => {
    const { headers } = await createTestTeam(api.app);
    const response = await upload(headers, 'name=x&kind=prompt', jsonl(SFT_ROWS));
    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toContain('line 1: /response: unknown field');
  });

  test("an upload over the team's limit is a 413 and nothing is stored", async () => {
    const { team, headers } = await createTestTeam(api.app, { maxUploadBytes: 200 });
    const rows = Array.from({ length: 20 }, (_, i) => ({ prompt: `sort: ${i} 1`, response: `1 ${i}` }));
    const response = await upload(headers, 'name=big&kind=sft', jsonl(rows));
    expect(response.statusCode).toBe(413);
    expect(response.json().error).toEqual({
      code: 'payload_too_large',
      message: "upload larger than the team's limit of 200 bytes",
    });
    // Without a declared length the limit is enforced while streaming.
    const chunked = await api.app.inject({
      method: 'POST',
      url: '/v1/datasets?name=big&kind=sft',
      headers: { ...headers, 'content-type': 'application/jsonl', 'transfer-encoding': 'chunked' },
      payload: jsonl(rows),
    });
    expect(chunked.statusCode).toBe(413);
    expect(await api.app.services.prisma.dataset.count({ where: { teamId: team.id } })).toBe(0);
    expect(await filesUnder(`uploads/${team.id}`)).toEqual([]);
  });

  test('a missing or unknown kind, or an unknown query field, is a 400', async () => {
    const { headers } = await createTestTeam(api.app);
    const unknownKind = await upload(headers, 'name=x&kind=chat', jsonl(SFT_ROWS));
    expect(unknownKind.statusCode).toBe(400);
    expect(unknownKind.json().error.message).toBe(
      'querystring /kind: must be one of "sft", "preference", "ranked", "prompt"',
    );
    const noKind = await upload(headers, 'name=x', jsonl(SFT_ROWS));
    expect(noKind.json().error.message).toBe('querystring /kind: required');
    const extra = await upload(headers, 'name=x&kind=sft&format=csv', jsonl(SFT_ROWS));
    expect(extra.json().error.message).toBe('querystring /format: unknown field');
  });

  test('a NUL character (Postgres cannot store it) is a 400, in the name or in a row, and nothing is stored', async () => {
    const { team, headers } = await createTestTeam(api.app);
    const badName = await upload(headers, 'name=a%00b&kind=sft', jsonl(SFT_ROWS));
    expect(badName.statusCode).toBe(400);
    expect(badName.json().error.message).toMatch(/^querystring \/name: /);
    const badRow = await upload(headers, 'name=x&kind=prompt', jsonl([{ prompt: 'sort 1\u0000 2:' }]));
    expect(badRow.statusCode).toBe(400);
    expect(badRow.json().error.message).toMatch(/line 1: \/prompt/);
    expect(await filesUnder(`datasets/${team.id}`)).toEqual([]);
  });
});

describe('list', () => {
  test("lists the team's datasets newest first, by kind, a page at a time", async () => {
    const { headers } = await createTestTeam(api.app);
    const sft = await uploadDataset(api.app, headers, 'sft', SFT_ROWS);
    const preference = await uploadDataset(api.app, headers, 'preference', PREFERENCE_ROWS);
    const prompt = await uploadDataset(api.app, headers, 'prompt', PROMPT_ROWS);
    const list = async (query: string) =>
      (await api.app.inject({ method: 'GET', url: `/v1/datasets?${query}`, headers })).json();
    expect((await list('')).items.map((d: { id: string }) => d.id)).toEqual([prompt, preference, sft]);
    expect((await list('kind=preference')).items.map((d: { id: string }) => d.id)).toEqual([preference]);
    const first = await list('limit=2');
    expect(first.items.map((d: { id: string }) => d.id)).toEqual([prompt, preference]);
    const second = await list(`limit=2&cursor=${first.nextCursor}`);
    expect(second).toMatchObject({ items: [{ id: sft }], nextCursor: null });
  });
});
