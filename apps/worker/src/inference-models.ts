// Models the inference consumer serves: loaded once from the artifact store, kept in a small LRU, each with its
// generation session. A chunk call samples a few tokens for a batch of rows, each row with its own random
// stream, so a row's tokens depend on its seed only — not on which requests shared its batch or chunk.
import { join } from 'node:path';
import {
  buildGenerationGraph,
  type GptConfig,
  leftPad,
  loadCheckpoint,
  paramFeeds,
  type Rng,
  type Tokenizer,
  toRows,
} from '@rlhf/model';
import { type HostTensor, hostTensor, type Runtime, type Session } from '@rlhf/runtime';

export interface ServedModel {
  key: string;
  config: GptConfig;
  tokenizer: Tokenizer;
  /** Generation session and the parameter feeds it takes on every call (converted once). */
  session: Session;
  feeds: Record<string, HostTensor>;
}

/** One sequence of a chunk call: its tokens so far (prompt + generated) and its own uniforms. */
export interface ChunkRow {
  ids: readonly number[];
  /** Uniforms for the next tokens, in order (at least `tokens` of them). */
  uniforms: readonly number[];
}

export interface ChunkResult {
  /** Per row: the sampled tokens up to and including EOS. */
  tokens: number[][];
  logprobs: number[][];
  /** Per row: it sampled EOS. */
  finished: boolean[];
}

/** A row's random stream, drawn as far as it has been used (a chunk may sample past a row's last token). */
export class UniformStream {
  private readonly drawn: number[] = [];
  constructor(private readonly rng: Rng) {}
  /** Uniforms for tokens [from, from + count). */
  slice(from: number, count: number): number[] {
    while (this.drawn.length < from + count) this.drawn.push(this.rng.uniform());
    return this.drawn.slice(from, from + count);
  }
}

/** `tokens` new tokens for every row in one session.run; temperature and top-p are the batch's. */
export async function generateChunk(
  model: ServedModel,
  rows: readonly ChunkRow[],
  tokens: number,
  sampling: { temperature: number; topP: number },
): Promise<ChunkResult> {
  const { tokenizer } = model;
  const B = rows.length;
  const uniforms = new Float32Array(tokens * B); // [N, B]: column b is row b's stream
  rows.forEach((row, b) => {
    for (let t = 0; t < tokens; t++) uniforms[t * B + b] = row.uniforms[t];
  });
  const prompt = leftPad(
    rows.map((row) => row.ids),
    tokenizer.padId,
  );
  const out = await model.session.run({
    ...model.feeds,
    prompt_ids: prompt.ids,
    prompt_mask: prompt.mask,
    uniforms: hostTensor('float32', [tokens, B], uniforms),
    temperature: hostTensor('float32', [], [sampling.temperature]),
    top_k: hostTensor('int64', [], [0]),
    top_p: hostTensor('float32', [], [sampling.topP]),
    eos_id: hostTensor('int64', [], [tokenizer.eosId]),
    pad_id: hostTensor('int64', [], [tokenizer.padId]),
  });
  const ids = toRows(out.tokens);
  const logprobs = toRows(out.logprobs);
  const mask = toRows(out.mask);
  return {
    tokens: ids.map((row, b) => row.filter((_, t) => mask[b][t] === 1)),
    logprobs: logprobs.map((row, b) => row.filter((_, t) => mask[b][t] === 1)),
    finished: Array.from(out.finished.data as Uint8Array, Boolean),
  };
}

export interface ModelCache {
  get(key: string): Promise<ServedModel>;
  /** Keys loaded now, most recently used last. */
  loaded(): string[];
  close(): Promise<void>;
}

/** The `capacity` most recently used models stay loaded; loading one more releases the least recent. */
export function createModelCache(runtime: Runtime, artifactDir: string, capacity: number): ModelCache {
  const models = new Map<string, Promise<ServedModel>>();
  async function load(key: string): Promise<ServedModel> {
    const checkpoint = await loadCheckpoint(join(artifactDir, key));
    const session = await runtime.createSession(buildGenerationGraph(checkpoint.config), {
      name: `inference ${key}`,
    });
    return {
      key,
      config: checkpoint.config,
      tokenizer: checkpoint.tokenizer,
      session,
      feeds: paramFeeds(checkpoint.config, checkpoint.params),
    };
  }
  const release = (model: Promise<ServedModel>) =>
    model.then(
      (m) => m.session.release(),
      () => {},
    );
  return {
    async get(key) {
      let model = models.get(key);
      if (model) {
        models.delete(key); // re-inserted below: Map order is the recency order
      } else {
        model = load(key);
        model.catch(() => models.delete(key)); // a failed load is retried by the next request
      }
      models.set(key, model);
      while (models.size > capacity) {
        const [oldest, evicted] = models.entries().next().value as [string, Promise<ServedModel>];
        models.delete(oldest);
        await release(evicted);
      }
      return model;
    },
    loaded: () => [...models.keys()],
    async close() {
      for (const model of models.values()) await release(model);
      models.clear();
    },
  };
}
