// Bad-input corpus over the newer routes: model uploads, graders, evaluations, and the OpenAI-compatible files,
// fine-tuning jobs and completions. Every refused request is a 4xx with a JSON error body, never a 500; a refused
// write leaves nothing behind (rows and the artifact store unchanged); the server is ready afterwards.
import { writeTar } from '@rlhf/artifacts';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createTestTeam,
  PROMPT_ROWS,
  registerModel,
  startApi,
  type TestApi,
  type TestTeam,
  tinyLlamaFiles,
  uploadDataset,
} from './api-helpers.js';
import { corpusChecks } from './corpus-helpers.js';

fc.configureGlobal({ seed: Number(process.env.CORPUS_SEED ?? 20261202) });
const RUNS = Number(process.env.CORPUS_RUNS ?? 40);

let api: TestApi;
let team: TestTeam;
let modelId: string;
let prompts: string;
const { statusCounts, refused, answered, expectReady } = corpusChecks(() => api);

beforeAll(async () => {
  // No event consumer and no workers: nothing here may start work, and a completion must be refused before
  // it would wait for an inference worker.
  api = await startApi({ consumeEvents: false });
  team = await createTestTeam(api.app, { requestsPerMinute: 1_000_000 });
  modelId = (await registerModel(api.app, team.headers, 'corpus-model')).id;
  prompts = await uploadDataset(api.app, team.headers, 'prompt', PROMPT_ROWS);
});
afterAll(() => api?.close());

const json = (method: 'POST' | 'GET', url: string, payload?: unknown) => ({
  method,
  url,
  headers: { ...team.headers, 'content-type': 'application/json' },
  ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
});
const anyJson = fc.jsonValue({ maxDepth: 3 });
/** Path segments and query values that are no id of ours. */
const oddText = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('%00', '..%2F..', 'ft:x:y:z:%00', `${'a'.repeat(300)}`, 'ftjob-', 'file-', '-1', '1e309'),
);

describe('model uploads', () => {
  test('property: arbitrary bytes and archives with a broken member are refused, nothing stored', async () => {
    const good = tinyLlamaFiles();
    // Members we check byte by byte (a template or merges file is any UTF-8 text as far as we know).
    const names = Object.keys(good).filter((name) => name.endsWith('.json') || name.endsWith('.safetensors'));
    const broken = fc.oneof(
      fc.uint8Array({ maxLength: 4096 }).map((bytes) => Buffer.from(bytes)),
      // one member of a valid model replaced by random bytes, or truncated, or renamed
      fc
        .tuple(fc.constantFrom(...names), fc.uint8Array({ minLength: 1, maxLength: 512 }))
        .map(([name, bytes]) => Buffer.from(writeTar({ ...good, [name]: bytes }))),
      fc.tuple(fc.constantFrom(...names), fc.nat()).map(([name, cut]) =>
        // at least the closing brace and newline cut off (one trailing newline less is still the same file)
        Buffer.from(writeTar({ ...good, [name]: good[name].subarray(0, cut % (good[name].length - 1)) })),
      ),
      fc
        .constantFrom('../x', 'a/../../b', 'weights.bin', 'model-00001-of-00002.safetensors', '.hidden')
        .map((name) => Buffer.from(writeTar({ ...good, [name]: new Uint8Array(4) }))),
    );
    await fc.assert(
      fc.asyncProperty(broken, async (body) => {
        await refused({
          method: 'POST',
          url: '/v1/models?name=corpus-upload',
          headers: { ...team.headers, 'content-type': 'application/x-tar' },
          payload: body,
        });
      }),
      { numRuns: RUNS },
    );
    await expectReady();
  });

  test('property: odd names, ids and list queries are never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(oddText, oddText, async (name, id) => {
        await refused({
          method: 'POST',
          url: `/v1/models?name=${encodeURIComponent(`${name}\u0000`)}`,
          headers: { ...team.headers, 'content-type': 'application/x-tar' },
          payload: Buffer.from(writeTar(tinyLlamaFiles())),
        });
        await answered(json('GET', `/v1/models/${encodeURIComponent(id)}`));
        await answered(
          json('GET', `/v1/models?limit=${encodeURIComponent(id)}&cursor=${encodeURIComponent(name)}`),
        );
      }),
      { numRuns: RUNS },
    );
  });
});

describe('graders', () => {
  test('property: any JSON to validate and run is a 200 or a 4xx JSON error, never a 5xx', async () => {
    const grader = fc.oneof(
      anyJson,
      fc.record({
        type: fc.constantFrom(
          'string_check',
          'regex',
          'text_similarity',
          'json',
          'numeric',
          'length',
          'multi',
          'x',
        ),
        pattern: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('(a+)+$', '(?<=a)b', '\\1(a)', '[')),
        reference: fc.oneof(fc.string({ maxLength: 20 }), fc.constant('{{item.answer}}'), fc.constant('{{')),
        operation: fc.constantFrom('eq', 'like', 'nope'),
        mode: fc.constantFrom('match', 'full_match', 1),
        metric: fc.constantFrom('bleu', 'rouge_l', 'fuzzy'),
        graders: fc.array(anyJson, { maxLength: 3 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(grader, anyJson, fc.string({ maxLength: 200 }), async (spec, row, response) => {
        await answered(json('POST', '/v1/graders/validate', { grader: spec }));
        await answered(json('POST', '/v1/graders/run', { grader: spec, row, response }));
      }),
      { numRuns: RUNS * 2 },
    );
    await expectReady();
  });
});

describe('evaluations', () => {
  test('property: bad specs are refused naming a field, nothing stored; reads are never a 5xx', async () => {
    const valid = {
      models: [{ modelId }, { runId: 'no-such-run' }],
      datasetId: prompts,
      judge: { type: 'task', name: 'sort-digits' },
      sampling: { maxNewTokens: 8 },
    };
    const spec = fc.oneof(
      anyJson,
      fc.constantFrom<unknown>(
        valid, // the run does not exist
        { ...valid, models: [{ modelId }] },
        { ...valid, models: [{ modelId }, { modelId }] },
        { ...valid, datasetId: 'x' },
        { ...valid, judge: { type: 'reward_model', runId: 'x' } },
        { ...valid, judge: { type: 'llm' } },
        { ...valid, seeds: [] },
        { ...valid, seeds: [-1] },
        { ...valid, maxPrompts: 0 },
        { ...valid, sampling: { maxNewTokens: 0 } },
        { ...valid, extra: 1 },
        { ...valid, judge: { type: 'grader', grader: { type: 'regex', pattern: '(', mode: 'match' } } },
        { ...valid, judge: { type: 'grader', grader: { type: 'reward_model' } } },
        { ...valid, judge: { type: 'language_model', modelId: 'no-such-model' } },
        { ...valid, judge: { type: 'language_model', modelId, template: 'no answers shown' } },
        { ...valid, judge: { type: 'language_model', modelId, tieMargin: 0.5 } },
        { ...valid, judge: { type: 'language_model', modelId, combine: 'majority' } },
      ),
      fc
        .tuple(fc.constantFrom('models', 'datasetId', 'judge', 'sampling', 'seeds'), anyJson)
        .map(([k, v]) => ({ ...valid, [k]: v })),
      // A grader or judge model spec with one field replaced by anything.
      fc
        .tuple(
          fc.constantFrom(
            { type: 'grader', grader: { type: 'string_check', operation: 'eq', reference: 'x' } },
            { type: 'language_model', modelId },
          ),
          fc.constantFrom('grader', 'modelId', 'template', 'combine', 'tieMargin'),
          anyJson,
        )
        .map(([judge, k, v]) => ({ ...valid, judge: { ...judge, [k]: v } })),
    );
    await fc.assert(
      fc.asyncProperty(spec, oddText, async (body, id) => {
        await refused(json('POST', '/v1/evaluations', body), 400);
        await answered(json('GET', `/v1/evaluations/${encodeURIComponent(id)}`));
        await answered(json('GET', `/v1/leaderboard?judge=${encodeURIComponent(id)}`));
      }),
      { numRuns: RUNS },
    );
    await expectReady();
  });
});

describe('OpenAI-compatible routes', () => {
  const multipart = (content: string | Buffer, purpose = 'fine-tune') => {
    const boundary = 'corpus-boundary';
    return {
      method: 'POST' as const,
      url: '/v1/files',
      headers: { ...team.headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n`),
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.jsonl"\r\n\r\n`,
        ),
        typeof content === 'string' ? Buffer.from(content) : content,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]),
    };
  };
  const turn = (role: string, content: unknown) => ({ role, content });

  test('property: files with a bad line are refused (OpenAI error naming the file), nothing stored', async () => {
    const good = JSON.stringify({ messages: [turn('user', 'q'), turn('assistant', 'a')] });
    const bad = fc.oneof(
      fc.constantFrom(
        '{',
        '[]',
        '"x"',
        JSON.stringify({ messages: [] }),
        JSON.stringify({
          messages: [
            turn('user', 'q'),
            turn('assistant', 'a'),
            { role: 'assistant', content: 'b', weight: 2 },
          ],
        }),
        JSON.stringify({ messages: [turn('user', 'q'), { role: 'assistant', content: 'a', weight: 0 }] }),
        JSON.stringify({ messages: [turn('robot', 'q'), turn('assistant', 'a')] }),
        JSON.stringify({
          input: { messages: [turn('user', 'q')] },
          preferred_output: [turn('assistant', 'a')],
        }),
        JSON.stringify({ input: {}, preferred_output: [], non_preferred_output: [] }),
        JSON.stringify({ messages: [turn('user', 'q'), turn('assistant', 'a')], tools: [] }),
      ),
      anyJson.map((value) => JSON.stringify(value)),
    );
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 3 }), bad, async (before, line) => {
        const content = `${Array.from({ length: before }, () => good).join('\n')}${before ? '\n' : ''}${line}\n`;
        // A line that happens to be a valid row of another format makes a mixed file: refused too.
        const response = await api.app.inject(multipart(content));
        expect(await api.app.services.prisma.file.count()).toBe(0);
        expect(response.statusCode, response.body).toBe(400);
        expect(response.json().error.param).toBe('file');
      }),
      { numRuns: RUNS },
    );
    await refused(multipart(Buffer.from([0xff, 0xfe, 0x0a])), 400);
    await refused(multipart('x', 'assistants'), 400);
    await refused(json('POST', '/v1/files', { file: 'x' }), 400);
    await expectReady();
  });

  test('property: job and completion requests of any JSON are 4xx JSON errors, nothing stored', async () => {
    const job = fc.oneof(
      anyJson,
      fc.record({
        model: fc.oneof(fc.constant('tiny'), fc.constant('corpus-model'), oddText),
        training_file: fc.oneof(fc.constant('file-none'), oddText, anyJson),
        method: fc.oneof(
          anyJson,
          fc.record({
            type: fc.constantFrom('supervised', 'dpo', 'reinforcement', 'unknown'),
            supervised: fc.record({ hyperparameters: fc.dictionary(fc.string({ maxLength: 6 }), anyJson) }),
            reinforcement: fc.record({ grader: anyJson }),
          }),
        ),
        suffix: fc.oneof(oddText, anyJson),
      }),
    );
    const completion = fc.oneof(
      anyJson,
      fc.record({
        model: fc.oneof(fc.constant('corpus-model'), fc.constant('ft:x:y:z:w'), oddText, anyJson),
        messages: fc.oneof(
          anyJson,
          fc.array(fc.record({ role: fc.constantFrom('user', 'x'), content: anyJson })),
        ),
        temperature: fc.oneof(fc.constant(-1), fc.constant(100), anyJson),
        max_tokens: fc.oneof(fc.constant(0), fc.constant(1e9), anyJson),
        n: fc.oneof(fc.constant(0), fc.constant(1e6), anyJson),
      }),
    );
    await fc.assert(
      fc.asyncProperty(job, completion, oddText, async (jobBody, chatBody, id) => {
        await refused(json('POST', '/v1/fine_tuning/jobs', jobBody));
        // Every generated completion names an unknown model or a bad value: refused before any queueing.
        await refused(
          json('POST', '/v1/chat/completions', { ...((chatBody ?? {}) as object), model: `nope-${id}` }),
        );
        await refused(json('POST', '/v1/completions', { model: modelId, prompt: 'x', temperature: -1 }));
        await answered(json('GET', `/v1/fine_tuning/jobs/${encodeURIComponent(id)}`));
        await answered(
          json(
            'GET',
            `/v1/fine_tuning/jobs/ftjob-${encodeURIComponent(id)}/events?limit=${encodeURIComponent(id)}`,
          ),
        );
        await answered(json('GET', `/v1/files/${encodeURIComponent(id)}/content`));
      }),
      { numRuns: RUNS },
    );
    await expectReady();
    const fiveHundreds = [...statusCounts].filter(([status]) => status >= 500);
    console.log(`corpus (new routes): ${JSON.stringify(Object.fromEntries(statusCounts))}`);
    expect(fiveHundreds).toEqual([]);
  });
});
