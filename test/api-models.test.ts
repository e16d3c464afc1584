// The model registry over REST: a tiny Llama in HF layout uploaded as a tar is validated, listed and trained
// from (an SFT run with `model: { modelId }` on a real worker); bad uploads are 4xx naming the file or tensor
// with nothing stored; another team sees nothing.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTar } from '@rlhf/artifacts';
import { createApiClient, waitForRun } from '@rlhf/demo';
import { ByteTokenizer, hfModelFiles, initParams, loadHfModel, presetConfig } from '@rlhf/model';
import type { RunningWorker } from '@rlhf/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  baseUrl,
  createTestTeam,
  SFT_ROWS,
  startApi,
  type TestApi,
  type TestTeam,
  tinyLlamaFiles,
  uploadDataset,
} from './api-helpers.js';
import { startTestWorker } from './worker-helpers.js';

const text = (value: string) => new TextEncoder().encode(value);

describe('model registry', () => {
  let api: TestApi;
  let worker: RunningWorker;
  let team: TestTeam;
  const upload = (name: string, body: Uint8Array, headers: Record<string, string> = {}) =>
    api.app.inject({
      method: 'POST',
      url: `/v1/models?name=${encodeURIComponent(name)}`,
      headers: { ...team.headers, 'content-type': 'application/x-tar', ...headers },
      payload: Buffer.from(body),
    });
  /** Nothing of a refused upload stays: no row, no file under models/. */
  const nothingStored = async () => {
    expect(await api.app.services.prisma.model.count({ where: { teamId: team.team.id } })).toBe(0);
    expect(await api.app.services.artifacts.list(`models/${team.team.id}/`)).toEqual([]);
  };

  beforeAll(async () => {
    api = await startApi();
    team = await createTestTeam(api.app);
    worker = await startTestWorker(api, 'models-worker');
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });

  test('bad uploads are 4xx naming the problem, and nothing is stored', async () => {
    const good = tinyLlamaFiles();
    const weights = good['model.safetensors'];
    const headerLength = Number(new DataView(weights.buffer, weights.byteOffset, 8).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(weights.subarray(8, 8 + headerLength)));
    const rewrite = (edit: (h: Record<string, { shape: number[]; data_offsets: number[] }>) => void) => {
      const h = structuredClone(header);
      edit(h);
      const json = text(JSON.stringify(h).padEnd(headerLength, ' '));
      const out = weights.slice();
      out.set(json.subarray(0, headerLength), 8);
      return out;
    };
    const config = JSON.parse(new TextDecoder().decode(good['config.json']));
    const wider = presetConfig('tiny-llama', { intermediateSize: 200 });
    const widerMlp = hfModelFiles(
      { config: wider, params: initParams(wider, 7) },
      { tokenizer: new ByteTokenizer() },
    );
    const symlinked = (() => {
      const dir = mkdtempSync(join(tmpdir(), 'model-tar-'));
      for (const [name, data] of Object.entries(good))
        if (name !== 'config.json') writeFileSync(join(dir, name), data);
      symlinkSync('/etc/passwd', join(dir, 'config.json'));
      return new Uint8Array(execFileSync('tar', ['-cf', '-', '-C', dir, '.']));
    })();
    const cases: [string, Uint8Array, RegExp, number?][] = [
      [
        'truncated weights',
        writeTar({ ...good, 'model.safetensors': weights.subarray(0, weights.length - 100) }),
        /model\.safetensors/,
      ],
      [
        'a header lying about offsets',
        writeTar({
          ...good,
          'model.safetensors': rewrite((h) => {
            h['model.norm.weight'].data_offsets = [0, 10 ** 9];
          }),
        }),
        /model\.safetensors/,
      ],
      // Weights of a wider MLP than config.json declares.
      [
        'a wrong shape',
        writeTar({ ...good, 'model.safetensors': widerMlp['model.safetensors'] }),
        /mlp.*shape/,
      ],
      ['a path leaving the archive', writeTar({ ...good, '../evil': text('x') }), /leaves the archive/],
      ['a symlink', symlinked, /symbolic link/],
      [
        'an unknown model_type',
        writeTar({ ...good, 'config.json': text(JSON.stringify({ ...config, model_type: 'mamba' })) }),
        /model_type/,
      ],
      ['a file that is not part of a model', writeTar({ ...good, 'run.sh': text('rm -rf /') }), /run\.sh/],
      ['no config.json', writeTar({ 'model.safetensors': weights }), /missing config\.json/],
      ['not a tar at all', text('hello'), /not a valid tar archive/],
    ];
    for (const [what, body, message] of cases) {
      const response = await upload('bad', body);
      expect(response.statusCode, what).toBe(400);
      expect(response.json().error.message, what).toMatch(message);
      await nothingStored();
    }
    // A declared size over the team's limit is refused before the body is read.
    const declared = await api.app.inject({
      method: 'POST',
      url: '/v1/models?name=huge',
      headers: {
        ...team.headers,
        'content-type': 'application/x-tar',
        'content-length': String(10 * 2 ** 30),
      },
      payload: Buffer.from(writeTar(good)),
    });
    expect([413, 400]).toContain(declared.statusCode);
    await nothingStored();
    expect((await api.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  test('a registered tiny Llama is listed with its facts, trains over REST, and another team cannot see it', async () => {
    const files = tinyLlamaFiles();
    // As `tar -cf m.tar my-model/` writes it: one top directory, stripped.
    const archive = writeTar(
      Object.fromEntries(Object.entries(files).map(([n, d]) => [`tiny-llama/${n}`, d])),
    );
    const created = await upload('tiny-llama', archive);
    expect(created.statusCode, created.body).toBe(201);
    const model = created.json();
    const config = presetConfig('tiny-llama');
    const params = initParams(config, 7);
    expect(model).toMatchObject({
      name: 'tiny-llama',
      object: 'model',
      architecture: 'LlamaForCausalLM',
      modelType: 'llama',
      parameterCount: [...params.values()].reduce((n, p) => n + p.length, 0),
      dtype: 'F32',
      contextLength: config.maxPositions,
      vocabSize: config.vocabSize,
      hasTokenizer: true,
    });
    expect(model.files.map((f: { name: string }) => f.name).sort()).toEqual(Object.keys(files).sort());
    expect((await upload('tiny-llama', archive)).statusCode).toBe(409); // names are unique per team

    const list = await api.app.inject({ method: 'GET', url: '/v1/models', headers: team.headers });
    expect(list.json().data.map((m: { id: string }) => m.id)).toEqual([model.id]);
    const other = await createTestTeam(api.app);
    expect(
      (await api.app.inject({ method: 'GET', url: `/v1/models/${model.id}`, headers: other.headers }))
        .statusCode,
    ).toBe(404);
    expect(
      (await api.app.inject({ method: 'GET', url: '/v1/models', headers: other.headers })).json().data,
    ).toEqual([]);
    const otherDataset = await uploadDataset(api.app, other.headers, 'sft', SFT_ROWS);
    const stolen = await api.app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: other.headers,
      payload: { model: { modelId: model.id }, stages: [{ kind: 'sft', datasetId: otherDataset }] },
    });
    expect(stolen.statusCode).toBe(400);
    expect(stolen.json().error.field).toBe('/model/modelId');

    const client = createApiClient(await baseUrl(api.app), team.key);
    const datasetId = await uploadDataset(api.app, team.headers, 'sft', SFT_ROWS);
    const submitted = await client.createRun({
      model: { modelId: model.id },
      // LoRA on the uploaded base: the stage keeps the merged model and the PEFT adapter beside it.
      stages: [{ kind: 'sft', datasetId, config: { maxSteps: 4, batchSize: 2, lr: 1e-3, lora: { r: 4 } } }],
    });
    const run = await waitForRun(client, submitted.id);
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');
    expect(run.hyperparameters).toMatchObject({ modelPreset: null, registeredModel: { modelId: model.id } });
    // The trained model comes back in the uploaded architecture, with its tokenizer, loadable as HF.
    const stage = run.stages[0];
    const key = (await api.app.services.prisma.stage.findUniqueOrThrow({ where: { id: stage.id } }))
      .modelKey as string;
    const trained = await loadHfModel(join(api.artifactDir, key, 'hf'));
    expect(trained.config).toMatchObject({ architecture: 'llama', nLayer: config.nLayer, numKvHeads: 2 });
    expect(readdirSync(join(api.artifactDir, key))).toContain('tokenizer.json');
    const adapterConfig = JSON.parse(
      readFileSync(join(api.artifactDir, key, 'adapter', 'adapter_config.json'), 'utf8'),
    );
    expect(adapterConfig).toMatchObject({ peft_type: 'LORA', r: 4, target_modules: ['q_proj', 'v_proj'] });
    expect(readdirSync(join(api.artifactDir, key, 'adapter'))).toContain('adapter_model.safetensors');

    // A model a run uses cannot be deleted; the other team cannot delete it either.
    expect(
      (await api.app.inject({ method: 'DELETE', url: `/v1/models/${model.id}`, headers: other.headers }))
        .statusCode,
    ).toBe(404);
    expect(
      (await api.app.inject({ method: 'DELETE', url: `/v1/models/${model.id}`, headers: team.headers }))
        .statusCode,
    ).toBe(409);
  }, 120_000);
});
