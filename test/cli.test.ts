// The `rlhf` command line against a real API (its own database, Redis namespace and artifacts) and a real
// in-process CPU worker: login, datasets, a pipeline file submitted with --watch to the end, the read
// commands, download of a stage's Hugging Face directory, models upload, cancel, errors as one line, and
// the installed bin run as a subprocess.
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { main } from '@rlhf/cli';
import { createLogger } from '@rlhf/config';
import { sortDigitsFiles, tasks } from '@rlhf/examples';
import { loadHfModel } from '@rlhf/model';
import { type RunningWorker, runners, startWorker } from '@rlhf/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { baseUrl, createTestTeam, startApi, type TestApi, type TestTeam, waitFor } from './api-helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const BIN = fileURLToPath(new URL('../node_modules/.bin/rlhf', import.meta.url));
const logger = createLogger('cli-test', process.env.TEST_LOG_LEVEL ?? 'silent');

// sft -> grpo on the sort-digits task, a few steps each: every read command has something to show (GRPO
// stores sample tables), and the whole run takes seconds on a CPU.
const PIPELINE_YAML = `# a pipeline file as a user writes one
name: cli pipeline
model: { preset: tiny }
stages:
  - kind: sft
    dataset: { file: sft.jsonl, name: cli-sft }
    config: { maxSteps: 8, batchSize: 8, stepsPerCall: 4, evalEvery: 4 }
  - kind: grpo
    dataset: prompts.jsonl
    config: { reward: sort-digits, iterations: 2, promptsPerIteration: 4, groupSize: 2, maxNewTokens: 8, sampleEvery: 1 }
`;

/** A port nothing listens on (one the kernel just handed out and took back). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Result {
  code: number;
  out: string;
  err: string;
}

describe('rlhf CLI', () => {
  let api: TestApi;
  let worker: RunningWorker;
  let team: TestTeam;
  let url: string;
  let work: string;
  let config: string;
  let runId: string;
  let sftDatasetId: string;
  /** The CLI in-process, with its own config directory and `work` as the current directory. */
  const start = (args: string[], env: Record<string, string> = {}) => {
    const result: Result = { code: -1, out: '', err: '' };
    const done = main(args, {
      env: { XDG_CONFIG_HOME: config, ...env },
      stdout: { write: (text: string) => (result.out += text) },
      stderr: { write: (text: string) => (result.err += text) },
      cwd: work,
    }).then((code) => Object.assign(result, { code }));
    return { result, done };
  };
  const cli = (args: string[], env: Record<string, string> = {}): Promise<Result> => start(args, env).done;
  /** The stored login only: the RLHF_* variables of whoever runs the tests are left out. */
  const subprocessEnv = () => {
    const { RLHF_URL: _url, RLHF_API_KEY: _key, ...inherited } = process.env;
    return { ...inherited, XDG_CONFIG_HOME: config };
  };
  const jsonLines = (text: string): unknown[] =>
    text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
  const get = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${url}${path}`, { headers: team.headers });
    expect(response.status, path).toBe(200);
    return (await response.json()) as T;
  };

  beforeAll(async () => {
    api = await startApi();
    worker = await startWorker({
      redisUrl: REDIS_URL,
      artifactDir: api.artifactDir,
      device: 'cpu',
      workerId: 'cli-worker',
      runners,
      tasks,
      logger,
      prefix: api.prefix,
    });
    team = await createTestTeam(api.app);
    url = await baseUrl(api.app);
    work = await mkdtemp(join(tmpdir(), 'rlhf-cli-'));
    config = join(work, 'config-home');
    await copyFile(sortDigitsFiles.sft, join(work, 'sft.jsonl'));
    await copyFile(sortDigitsFiles.prompt, join(work, 'prompts.jsonl'));
    await writeFile(join(work, 'pipeline.yaml'), PIPELINE_YAML);
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('login: a refused key exits 1 with one line and stores nothing; a good one is stored with mode 0600', async () => {
    const refused = await cli(['login', '--url', url, '--key', 'rlhf_not-a-key']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^rlhf: list runs: 401 unauthorized: .+\n$/);
    await expect(stat(join(config, 'rlhf', 'config.json'))).rejects.toThrow(/ENOENT/);

    const ok = await cli(['login', '--url', `${url}/`, '--key', team.key]);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toContain(`logged in to ${url}`);
    const file = join(config, 'rlhf', 'config.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ url, key: team.key });
  });

  test('datasets upload (table, then --json for the same content) and list; a bad line is one error line', async () => {
    const first = await cli(['datasets', 'upload', 'sft.jsonl', '--kind', 'sft', '--name', 'digits']);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/^ID +NAME +KIND +ROWS +BYTES/);
    expect(first.out).toMatch(/digits +sft +2000 .*uploaded/);
    const again = await cli([
      'datasets',
      'upload',
      'sft.jsonl',
      '--kind',
      'sft',
      '--name',
      'digits',
      '--json',
    ]);
    const dataset = JSON.parse(again.out) as { id: string; rowCount: number; created: boolean };
    sftDatasetId = dataset.id;
    expect(dataset).toMatchObject({ rowCount: 2000, created: false });

    const listed = JSON.parse((await cli(['datasets', 'list', '--json'])).out) as { id: string }[];
    expect(listed.map((d) => d.id)).toContain(dataset.id);
    expect((await cli(['datasets', 'list'])).out).toContain(dataset.id);

    await writeFile(join(work, 'bad.jsonl'), '{"prompt":"a","response":"b"}\n{"prompt":1}\n');
    const bad = await cli(['datasets', 'upload', 'bad.jsonl', '--kind', 'sft']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^rlhf: upload dataset: 400 .*line 2.*\n$/);
    const usage = await cli(['datasets', 'upload', 'sft.jsonl']);
    expect(usage.code).toBe(2);
    expect(usage.err).toBe('rlhf: datasets upload: --kind is required (sft, preference, ranked, prompt)\n');
  });

  test('submit --watch runs a YAML pipeline (local dataset files uploaded) to the end and prints the summary', async () => {
    const started = Date.now();
    const watched = await cli(['submit', 'pipeline.yaml', '--watch']);
    expect(watched.code, watched.out + watched.err).toBe(0);
    runId = /run (\S+) submitted: sft -> grpo/.exec(watched.out)![1];
    // sft.jsonl's content was uploaded before under another name (stored once, named again); prompts.jsonl is new.
    expect(watched.out).toMatch(/^sft: sft\.jsonl (uploaded|already stored) as dataset \S+$/m);
    expect(watched.out).toContain('grpo: prompts.jsonl uploaded as dataset');
    // Progress lines per stage with step/total and key metrics, then the summary table.
    expect(watched.out).toMatch(/^sft +\[#+\] 100% 8\/8 +succeeded +train\/loss [\d.]+ +eval\/loss [\d.]+$/m);
    expect(watched.out).toMatch(/^grpo +\[#+\] 100% 2\/2 +succeeded +reward [\d.-]+ +kl [\d.e-]+$/m);
    expect(watched.out).toMatch(new RegExp(`^run ${runId} succeeded in \\d+ s$`, 'm'));
    expect(watched.out).toMatch(/^STAGE +ID +STATUS +STEP/m);
    const run = await get<{ status: string; stages: { datasetId: string }[] }>(`/v1/runs/${runId}`);
    expect(run.status).toBe('succeeded');
    const datasets = await get<{ items: { id: string; sha256: string }[] }>('/v1/datasets');
    const sha = (id: string) => datasets.items.find((d) => d.id === id)?.sha256;
    expect(sha(run.stages[0].datasetId)).toBe(sha(sftDatasetId));
    console.info(`cli: submit --watch of sft -> grpo took ${Date.now() - started} ms`);
  });

  test('workers, runs, show, metrics, samples and events print what the API has (tables and --json)', async () => {
    expect((await cli(['workers'])).out).toMatch(/^cli-worker +\S+ +cpu +(idle|busy) /m);
    const runs = await cli(['runs']);
    expect(runs.out).toMatch(new RegExp(`^${runId} +cli pipeline +succeeded +sft>grpo +100%`, 'm'));
    expect(JSON.parse((await cli(['runs', '--status', 'failed', '--json'])).out)).toEqual([]);
    const listed = JSON.parse((await cli(['runs', '--status', 'succeeded', '--json'])).out) as {
      id: string;
    }[];
    expect(listed.map((r) => r.id)).toEqual([runId]);

    const detail = await get<{ stages: { id: string; latestMetrics: Record<string, number> }[] }>(
      `/v1/runs/${runId}`,
    );
    expect(JSON.parse((await cli(['show', runId, '--json'])).out)).toEqual(detail);
    const show = await cli(['show', runId]);
    expect(show.out).toMatch(/^status +succeeded$/m);
    expect(show.out).toMatch(/^sft metrics \(latest, step 8\)$/m);
    expect(show.out).toMatch(/^ {2}train\/loss +[\d.]+$/m);

    const losses = await get<{ items: { step: number; value: number }[] }>(
      `/v1/runs/${runId}/metrics?name=train/loss&stageId=${detail.stages[0].id}`,
    );
    const printed = jsonLines(
      (await cli(['metrics', runId, '--stage', 'sft', '--name', 'train/loss', '--json'])).out,
    );
    expect(printed.map((p) => (p as { value: number }).value)).toEqual(losses.items.map((p) => p.value));
    expect((await cli(['metrics', runId, '--name', 'reward'])).out).toMatch(/^grpo +1 +reward +[\d.-]+$/m);

    const samples = await get<{ items: { prompt: string; response: string }[] }>(`/v1/runs/${runId}/samples`);
    expect(samples.items.length).toBeGreaterThan(0);
    const printedSamples = JSON.parse((await cli(['samples', runId, '--json'])).out) as { prompt: string }[];
    expect(printedSamples.map((s) => s.prompt)).toEqual(samples.items.slice(0, 20).map((s) => s.prompt));
    const table = (await cli(['samples', runId, '--stage', 'grpo'])).out;
    expect(table).toMatch(/^STAGE +STEP +SCORE +KL +EOS +PROMPT +RESPONSE$/m);
    expect(table).toContain(samples.items[0].prompt.slice(0, 20));

    // A finished run's stream: its snapshot, then the end.
    const events = await cli(['events', runId]);
    expect(events.code).toBe(0);
    expect(events.out).toMatch(/^run +succeeded sft:succeeded grpo:succeeded$/m);
    const first = jsonLines((await cli(['events', runId, '--json'])).out)[0] as {
      event: string;
      data: { id: string };
    };
    expect(first).toMatchObject({ event: 'run', data: { id: runId } });
  });

  test("download writes the stage's HF directory; its safetensors header matches config.json; models upload registers it", async () => {
    const result = await cli(['download', runId, '--stage', 'sft', '--out', 'model', '--json']);
    expect(result.code, result.err).toBe(0);
    const dir = join(work, 'model');
    expect(JSON.parse(result.out)).toMatchObject({ runId, stage: 'sft', dir });
    const files = await readdir(dir);
    for (const name of [
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ])
      expect(files).toContain(name);
    expect(files.some((name) => name.endsWith('.part'))).toBe(false);

    const hf = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, number>;
    const weights = await readFile(join(dir, 'model.safetensors'));
    const headerBytes = Number(weights.readBigUInt64LE(0));
    const header = JSON.parse(weights.subarray(8, 8 + headerBytes).toString('utf8')) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: [number, number] }
    >;
    expect(header.__metadata__).toMatchObject({ format: 'pt' });
    expect(header['transformer.wte.weight'].shape).toEqual([hf.vocab_size, hf.n_embd]);
    expect(header['transformer.wpe.weight'].shape).toEqual([hf.n_positions, hf.n_embd]);
    const layers = new Set(
      Object.keys(header).flatMap((name) => /^transformer\.h\.(\d+)\./.exec(name)?.[1] ?? []),
    );
    expect(layers.size).toBe(hf.n_layer);
    expect(header['transformer.h.0.attn.c_attn.weight'].shape).toEqual([hf.n_embd, 3 * hf.n_embd]);
    const end = Math.max(...Object.values(header).flatMap((t) => t.data_offsets ?? []));
    expect(8 + headerBytes + end).toBe(weights.length);
    // The same directory loads with the project's HF loader (the layout transformers reads).
    const loaded = await loadHfModel(dir);
    expect(loaded.config).toMatchObject({ nEmbd: hf.n_embd, nLayer: hf.n_layer, vocabSize: hf.vocab_size });

    const table = await cli(['download', runId]); // default: the last stage's model, into ./<run>-<stage>
    expect(table.out).toContain(`grpo model of run ${runId} -> ${join(work, `${runId}-grpo`)}`);
    expect(table.out).toMatch(/^ {2}model\.safetensors +\d+ +[0-9a-f]{64}$/m);

    const registered = await cli(['models', 'upload', 'model', '--name', 'cli-sft-model']);
    expect(registered.code, registered.err).toBe(0);
    expect(registered.out).toMatch(/cli-sft-model +GPT2LMHeadModel/);
    expect((await cli(['models', 'list'])).out).toContain('cli-sft-model');
  });

  test('events and metrics --follow print live lines until a cancel ends the run; Ctrl-C on a watching bin leaves it running; watch of the cancelled run exits 1', async () => {
    const long = join(work, 'long.json');
    await writeFile(
      long,
      JSON.stringify({
        model: { preset: 'tiny' },
        stages: [{ kind: 'sft', dataset: 'sft.jsonl', config: { maxSteps: 100_000, stepsPerCall: 4 } }],
      }),
    );
    const submitted = JSON.parse((await cli(['submit', 'long.json', '--json'])).out) as { id: string };
    const events = start(['events', submitted.id, '--follow']);
    const metrics = start(['metrics', submitted.id, '--name', 'train/loss', '--follow']);
    await waitFor(async () => /^sft +\d+ +train\/loss /m.test(metrics.result.out), 60_000);
    await waitFor(async () => /^metrics +sft step \d+ /m.test(events.result.out), 10_000);
    // Ctrl-C on the real bin while it watches: the watch stops, the run goes on. Sent once its stream is open
    // (the follows above hold two).
    const watching = spawn(BIN, ['watch', submitted.id], { env: subprocessEnv(), cwd: work });
    let watchErr = '';
    watching.stderr.on('data', (chunk: Buffer) => (watchErr += chunk));
    const exited = new Promise<number | null>((resolve) => watching.once('exit', (code) => resolve(code)));
    await waitFor(
      async () => (await api.app.services.metrics.sseClients.get()).values[0]?.value === 3,
      30_000,
    );
    watching.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(watchErr).toBe(
      `rlhf: stopped watching; run ${submitted.id} goes on (rlhf watch ${submitted.id}, rlhf cancel ${submitted.id})\n`,
    );
    const cancelled = await cli(['cancel', submitted.id]);
    expect(cancelled.code, cancelled.err).toBe(0);
    expect(cancelled.out).toMatch(new RegExp(`^run ${submitted.id}: cancelled`));
    // Both streams end by themselves once the run is over.
    await Promise.all([events.done, metrics.done]);
    expect(events.result).toMatchObject({ code: 0, err: '' });
    expect(events.result.out).toMatch(/^run +(queued|running) sft:/m);
    expect(events.result.out).toMatch(/^stage\.progress +sft \d+\/100000$/m);
    expect(events.result.out).toMatch(/^(stage\.cancelled +sft|run\.updated +cancelled)$/m);
    expect(metrics.result).toMatchObject({ code: 0, err: '' });
    const watched = await cli(['watch', submitted.id]);
    expect(watched.code).toBe(1);
    expect(watched.out).toContain(`run ${submitted.id} cancelled`);
  });

  test('errors are one line on stderr with a non-zero exit: wrong key, unknown run, unreachable API, usage', async () => {
    const wrongKey = await cli(['runs'], { RLHF_API_KEY: 'rlhf_wrong' });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.err).toMatch(/^rlhf: list runs: 401 unauthorized: [^\n]+\n$/);
    const missing = await cli(['show', '01a2132a-6a8d-75f9-a7fb-c9b082b980d2']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^rlhf: get run: 404 not_found: [^\n]+\n$/);
    const closed = await closedPort();
    const away = await cli(['runs', '--url', `http://127.0.0.1:${closed}`]);
    expect(away.code).toBe(1);
    expect(away.err).toBe(`rlhf: list runs: cannot reach http://127.0.0.1:${closed}: ECONNREFUSED\n`);
    const unknown = await cli(['frobnicate']);
    expect(unknown).toMatchObject({ code: 2, err: 'rlhf: unknown command "frobnicate"\n' });
    const noLogin = await cli(['runs'], { XDG_CONFIG_HOME: join(work, 'nowhere') });
    expect(noLogin.code).toBe(2);
    expect(noLogin.err).toMatch(/^rlhf: no API URL: run `rlhf login/);
  });

  test('the installed bin runs as a subprocess (runs --json; completion scripts parse in bash)', async () => {
    const run = promisify(execFile);
    const env = subprocessEnv();
    // Both at once: each start loads the TypeScript sources through tsx.
    const [listed, failed] = await Promise.all([
      run(BIN, ['runs', '--json'], { env, cwd: work }),
      run(BIN, ['show', 'no-such-run'], { env, cwd: work }).catch((error: unknown) => error),
    ]);
    expect((JSON.parse(listed.stdout) as { id: string }[]).map((r) => r.id)).toContain(runId);
    expect(failed).toMatchObject({ code: 1, stdout: '' });
    expect((failed as { stderr: string }).stderr).toMatch(/^rlhf: get run: 4\d\d [^\n]+\n$/);

    const bash = (await cli(['completion', 'bash'])).out;
    expect(bash).toContain('complete -o filenames -o bashdefault -F _rlhf rlhf');
    await run('bash', ['-n', '-c', bash]);
    // The words bash would offer after `rlhf datasets upload x --kind `.
    const offered = await run('bash', [
      '-c',
      `${bash}\nCOMP_WORDS=(rlhf datasets upload x --kind ''); COMP_CWORD=5; _rlhf; echo "\${COMPREPLY[*]}"`,
    ]);
    expect(offered.stdout.trim()).toBe('sft preference ranked prompt');
    expect((await cli(['completion', 'zsh'])).out).toMatch(/^#compdef rlhf\n/);
  });
});
