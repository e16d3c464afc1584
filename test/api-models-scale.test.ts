// The model registry at scale: sharded checkpoints (model-0000i-of-0000n.safetensors + index) upload and train,
// uploads stream to a temporary directory of the store (over the team's limit or truncated: refused, nothing
// left), and MODEL_DIRS registers read-only admin models that every team sees and a worker reads in place.
import { type ClientRequest, request } from 'node:http';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTar } from '@rlhf/artifacts';
import { createApiClient, waitForRun } from '@rlhf/demo';
import {
  ByteTokenizer,
  hfModelFiles,
  initParams,
  loadHfModel,
  presetConfig,
  readSafetensors,
  SAFETENSORS_INDEX,
  type SafeTensor,
  writeSafetensors,
} from '@rlhf/model';
import type { RunningWorker } from '@rlhf/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ADMIN_KEY,
  baseUrl,
  createTestTeam,
  SFT_ROWS,
  startApi,
  type TestApi,
  type TestTeam,
  uploadDataset,
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

const config = presetConfig('tiny-llama');
/** The tiny Llama as an HF directory, its weights sharded in files of at most 20 kB. */
function shardedFiles(): Record<string, Uint8Array> {
  const { 'README.md': _readme, ...files } = hfModelFiles(
    { config, params: initParams(config, 7) },
    { tokenizer: new ByteTokenizer(), maxShardBytes: 20_000 },
  );
  return files;
}
const Q_PROJ = 'model.layers.0.self_attn.q_proj.weight';
/** The safetensors file with `tensor` flattened to one dimension. */
function reshaped(file: Uint8Array, tensor: string): Uint8Array {
  const { tensors, metadata } = readSafetensors(file);
  const t = tensors.get(tensor) as SafeTensor;
  tensors.set(tensor, { ...t, shape: [t.data.length] } as SafeTensor);
  return writeSafetensors(tensors, metadata);
}
const shardsOf = (files: Record<string, Uint8Array>) =>
  Object.keys(files).filter((f) => f.startsWith('model-'));

describe('model registry at scale', () => {
  let api: TestApi;
  let worker: RunningWorker;
  let team: TestTeam;
  let modelDir: string;
  const upload = (name: string, body: Uint8Array | NodeJS.ReadableStream, t = team) =>
    api.app.inject({
      method: 'POST',
      url: `/v1/models?name=${encodeURIComponent(name)}`,
      headers: { ...t.headers, 'content-type': 'application/x-tar' },
      payload: body instanceof Uint8Array ? Buffer.from(body) : body,
    });
  /** Nothing of a refused upload stays: no row, no file under models/ or the uploads' temporary directories. */
  const nothingStored = async (t = team) => {
    expect(await api.app.services.prisma.model.count({ where: { teamId: t.team.id } })).toBe(0);
    expect(await api.app.services.artifacts.list(`models/${t.team.id}/`)).toEqual([]);
    expect(await api.app.services.artifacts.list('uploads/')).toEqual([]);
  };

  /** POST /v1/models over a real socket; `send` writes the body. The status, when a response came. */
  const postRaw = async (
    name: string,
    send: (req: ClientRequest) => Promise<void>,
    headers: Record<string, string> = {},
  ): Promise<{ status?: number; body: string }> => {
    const url = new URL(`${await baseUrl(api.app)}/v1/models?name=${name}`);
    return new Promise((resolve) => {
      const req = request(url, {
        method: 'POST',
        headers: { ...team.headers, 'content-type': 'application/x-tar', ...headers },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
        res.on('error', () => resolve({ status: res.statusCode, body }));
      });
      req.on('error', () => resolve({ body: '' }));
      req.on('close', () => setTimeout(() => resolve({ body: '' }), 500));
      send(req).catch(() => {});
    });
  };

  beforeAll(async () => {
    // An admin model directory on "shared storage": sharded, with its tokenizer.
    modelDir = await mkdtemp(join(tmpdir(), 'rlhf-shared-models-'));
    const dir = join(modelDir, 'tiny-llama-shared');
    await mkdir(dir);
    for (const [name, data] of Object.entries(shardedFiles())) await writeFile(join(dir, name), data);
    await writeFile(join(dir, '.gitattributes'), '*.safetensors filter=lfs\n'); // not the model's: ignored
    api = await startApi({ modelDirs: [dir, join(modelDir, 'missing')] });
    team = await createTestTeam(api.app, { maxUploadBytes: 3_000_000 });
    worker = await startTestWorker(api, 'models-scale-worker');
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
    await rm(modelDir, { recursive: true, force: true });
  });

  test('a sharded checkpoint uploads with its index; bad shard sets are 400 naming the file', async () => {
    const files = shardedFiles();
    expect(shardsOf(files).length).toBeGreaterThan(2);
    const index = JSON.parse(new TextDecoder().decode(files[SAFETENSORS_INDEX]));
    const [first, second] = shardsOf(files).sort();
    const { [second]: _missing, ...withoutSecond } = files;
    // A tensor of a shard holding two or more, named by the index as another shard's.
    const tensors = Object.keys(index.weight_map);
    const moved = tensors.find(
      (t) => tensors.filter((u) => index.weight_map[u] === index.weight_map[t]).length > 1,
    ) as string;
    const from = index.weight_map[moved] as string;
    const to = from === first ? second : first;
    const qShard = index.weight_map[Q_PROJ] as string;
    const lying = { ...index, weight_map: { ...index.weight_map, [moved]: to } };
    const cases: [string, Record<string, Uint8Array>, RegExp][] = [
      ['a missing shard', withoutSecond, new RegExp(`missing ${second}`)],
      [
        'an index naming the wrong shard',
        { ...files, [SAFETENSORS_INDEX]: new TextEncoder().encode(JSON.stringify(lying)) },
        new RegExp(`${from}: tensor "${moved}" belongs to ${to}`),
      ],
      [
        'a shard the index does not name',
        { ...files, 'model-00009-of-00009.safetensors': files[first] },
        /model-00009-of-00009\.safetensors: not a shard named by/,
      ],
      [
        'a shard with a wrongly shaped tensor',
        { ...files, [qShard]: reshaped(files[qShard], Q_PROJ) },
        new RegExp(`tensor "${Q_PROJ}" has shape \\[\\d+\\] but the config expects`),
      ],
      [
        'shards without their index',
        { ...files, [SAFETENSORS_INDEX]: undefined as never },
        /missing model\.safetensors/,
      ],
    ];
    for (const [what, body, message] of cases) {
      const response = await upload(
        'bad',
        writeTar(Object.fromEntries(Object.entries(body).filter(([, d]) => d))),
      );
      expect(response.statusCode, what).toBe(400);
      expect(response.json().error.message, what).toMatch(message);
      if (what.includes('wrongly shaped')) expect(response.json().error.field).toBe(qShard);
      await nothingStored();
    }
    const created = await upload('sharded', writeTar(files));
    expect(created.statusCode, created.body).toBe(201);
    const model = created.json();
    expect(model.files.map((f: { name: string }) => f.name).sort()).toEqual(Object.keys(files).sort());
    expect(model).toMatchObject({ architecture: 'LlamaForCausalLM', dtype: 'F32', teamId: team.team.id });
    // Stored as uploaded (the shards, not one file), nothing left in the uploads' directory.
    expect((await api.app.services.artifacts.list(`models/${team.team.id}/${model.id}/`)).length).toBe(
      Object.keys(files).length,
    );
    expect(await api.app.services.artifacts.list('uploads/')).toEqual([]);
    const loaded = await loadHfModel(join(api.artifactDir, 'models', team.team.id, model.id));
    expect(loaded.config).toEqual(config);
    await api.app.inject({ method: 'DELETE', url: `/v1/models/${model.id}`, headers: team.headers });
  });

  test('uploads stream: over the limit (declared or not) is 413, a truncated tar is 400, nothing is left', async () => {
    const big = writeTar({ ...shardedFiles(), 'README.md': new Uint8Array(3_000_000).fill(65) });
    expect(big.length).toBeGreaterThan(3_000_000);
    // Sent over a real socket in 16 kB chunks with no content-length: refused once the limit is passed.
    const streamed = await postRaw('too-big', async (req) => {
      for (let at = 0; at < big.length && !req.destroyed; at += 16_384)
        await new Promise((r) => req.write(big.subarray(at, at + 16_384), r));
      req.end();
    });
    expect(streamed.status, streamed.body).toBe(413);
    await nothingStored();

    const huge = await api.app.inject({
      method: 'POST',
      url: '/v1/models?name=huge',
      headers: {
        ...team.headers,
        'content-type': 'application/x-tar',
        'content-length': String(10 * 2 ** 30),
      },
      payload: Buffer.from(writeTar(shardedFiles())),
    });
    expect(huge.statusCode).toBe(413);
    await nothingStored();

    const archive = writeTar(shardedFiles());
    const truncated = await upload('truncated', archive.subarray(0, Math.floor(archive.length / 2)));
    expect(truncated.statusCode).toBe(400);
    expect(truncated.json().error.message).toMatch(/truncated/);
    await nothingStored();

    // A client that goes away mid-body: the half-received files are removed.
    await postRaw(
      'gone',
      async (req) => {
        await new Promise((r) => req.write(archive.subarray(0, 200_000), r));
        await new Promise((r) => setTimeout(r, 300));
        req.destroy();
      },
      { 'content-length': String(archive.length) },
    );
    for (let i = 0; i < 50 && (await api.app.services.artifacts.list('uploads/')).length > 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    await nothingStored();
    expect((await api.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  test('MODEL_DIRS: an admin model every team sees, read-only, trained from in place', async () => {
    const other = await createTestTeam(api.app);
    const list = async (t: TestTeam) =>
      (await api.app.inject({ method: 'GET', url: '/v1/models', headers: t.headers })).json().data;
    // Registered at start-up by buildApp's caller; the scan route is how tests (and admins) do it.
    const scan = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/models/scan',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(scan.statusCode, scan.body).toBe(200);
    const [ok, missing] = scan.json().data;
    expect(missing).toMatchObject({ dir: join(modelDir, 'missing'), error: expect.stringMatching(/ENOENT/) });
    const again = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/models/scan',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(again.json().data[0].modelId).toBe(ok.modelId); // a rescan refreshes, never duplicates
    for (const t of [team, other]) {
      const [model] = (await list(t)).filter((m: { id: string }) => m.id === ok.modelId);
      expect(model).toMatchObject({ name: 'tiny-llama-shared', teamId: null, owned_by: 'system' });
      expect(model.files.map((f: { name: string }) => f.name)).not.toContain('.gitattributes');
    }
    expect(
      (await api.app.inject({ method: 'DELETE', url: `/v1/models/${ok.modelId}`, headers: other.headers }))
        .statusCode,
    ).toBe(403);
    // Never copied into the store.
    expect(await api.app.services.artifacts.list('models/')).toEqual([]);

    const client = createApiClient(await baseUrl(api.app), other.key);
    const datasetId = await uploadDataset(api.app, other.headers, 'sft', SFT_ROWS);
    const submitted = await client.createRun({
      model: { modelId: ok.modelId },
      stages: [{ kind: 'sft', datasetId, config: { maxSteps: 2, batchSize: 2, lr: 1e-3 } }],
    });
    const run = await waitForRun(client, submitted.id);
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');
    const key = (await api.app.services.prisma.stage.findUniqueOrThrow({ where: { id: run.stages[0].id } }))
      .modelKey as string;
    const trained = await loadHfModel(join(api.artifactDir, key, 'hf'));
    expect(trained.config).toMatchObject({ architecture: 'llama', nLayer: config.nLayer });
    expect(await readdir(join(modelDir, 'tiny-llama-shared'))).toHaveLength(
      Object.keys(shardedFiles()).length + 1,
    );
  }, 120_000);
});
