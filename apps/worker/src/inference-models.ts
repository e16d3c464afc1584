// Models the inference consumer serves: loaded once from the artifact store, kept in a small LRU of bases, each with
// its generation sessions (LoRA and prompt-tuning adapters ride on their base: inference-adapters.ts). A chunk call samples a few tokens for a batch of rows, each row with its own random
// stream, so a row's tokens depend on its seed only — not on which requests shared its batch or chunk.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildGenerationGraph,
  type GptConfig,
  leftPad,
  loadCheckpoint,
  MAX_TOP_LOGPROBS,
  paramFeeds,
  type Rng,
  type SamplerOptions,
  samplerFor,
  type Tokenizer,
  toRows,
} from '@rlhf/model';
import { type HostTensor, hostTensor, type Runtime, type Session } from '@rlhf/runtime';
import {
  adapterGraphKey,
  adapterGraphOptions,
  adapterSourceOf,
  type ServedAdapter,
  servedAdapter,
  storedDir,
} from './inference-adapters.js';

export interface ServedModel {
  key: string;
  config: GptConfig;
  /** Positions a request may fill (prompt + new tokens): maxPositions less an adapter's virtual tokens. */
  context: number;
  tokenizer: Tokenizer;
  /** The generation session of a sampler variant (built when first asked for), and the feeds every call takes. */
  session(variant: Required<SamplerOptions>): Promise<Session>;
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
  /** With sampling.topLogprobs: per row and kept token, the MAX_TOP_LOGPROBS most likely tokens. */
  top?: { id: number; logprob: number }[][][];
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
  sampling: { temperature: number; topP: number; topLogprobs?: boolean },
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
  // No top-p: the sort-free sampler; alternatives asked for: the graph that reports them.
  const session = await model.session({
    sampler: samplerFor(sampling),
    topLogprobs: sampling.topLogprobs ? MAX_TOP_LOGPROBS : 0,
  });
  const out = await session.run({
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
    ...(out.top_ids ? { top: alternatives(out.top_ids, out.top_logprobs, mask) } : {}),
  };
}

/** top_ids / top_logprobs [B, N, K] as, per row and kept token, its K alternatives. */
function alternatives(ids: HostTensor, logprobs: HostTensor, mask: number[][]) {
  const [B, N, K] = ids.dims;
  return Array.from({ length: B }, (_, b) =>
    mask[b].flatMap((kept, n) =>
      kept === 1
        ? [
            Array.from({ length: K }, (_, j) => ({
              id: Number(ids.data[(b * N + n) * K + j]),
              logprob: Number(logprobs.data[(b * N + n) * K + j]),
            })),
          ]
        : [],
    ),
  );
}

export interface ModelCache {
  get(key: string): Promise<ServedModel>;
  /** Base models loaded now (plain models are their own base), most recently used last. */
  loaded(): string[];
  /** Adapter models known now (served on a loaded base, or on one loaded again when asked for). */
  adapters(): string[];
  close(): Promise<void>;
}

/**
 * What a model directory's weights are: its files' (device, inode). The store writes by rename, so one inode is one
 * content: an adapter's directory whose base files are hard links of a registered model's shares that loaded base.
 */
async function baseIdentity(dir: string): Promise<string> {
  const files = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && !e.name.startsWith('.')) // not adapter/, nor the store's .sha256 sidecars
    .map((e) => e.name)
    .sort();
  if (files.length === 0) return dir;
  const stats = await Promise.all(files.map((name) => stat(join(dir, name))));
  return files.map((name, i) => `${name}:${stats[i].dev}:${stats[i].ino}`).join('|');
}

/** A loaded base: its weights converted once, and a generation session per adapter shape (none: plain). */
interface LoadedBase {
  config: GptConfig;
  tokenizer: Tokenizer;
  feeds: Record<string, HostTensor>;
  sessions: Map<string, Promise<Session>>;
}

/** Adapters kept (their tensors only: r × (in + out) per linear; the bases they need follow the base LRU). */
const ADAPTERS_KEPT = 64;

/**
 * The `capacity` most recently used bases stay loaded; loading one more releases the least recent. A model
 * directory with a LoRA adapter on a stored base (inference-adapters.ts) is served as that base + the adapter,
 * unmerged: several adapters of one base share one loaded base and one session per adapter shape.
 */
export function createModelCache(runtime: Runtime, artifactDir: string, capacity: number): ModelCache {
  // By identity (baseIdentity): directories of hard-linked files (an adapter uploaded alone) are one base.
  const bases = new Map<string, Promise<LoadedBase>>();
  const names = new Map<string, string>(); // identity -> the key it was loaded from
  const identities = new Map<string, Promise<string>>(); // key -> identity (model directories never change)
  // null: the directory is a plain model (or its adapter's base is not servable: its merged model is).
  const adapters = new Map<string, Promise<ServedAdapter | null>>();
  const adapterKeys = new Set<string>(); // the keys in `adapters` that are adapters

  async function loadBase(key: string): Promise<LoadedBase> {
    const checkpoint = await loadCheckpoint(storedDir(artifactDir, key));
    return {
      config: checkpoint.config,
      tokenizer: checkpoint.tokenizer,
      feeds: paramFeeds(checkpoint.config, checkpoint.params),
      sessions: new Map(),
    };
  }
  const releaseBase = (base: Promise<LoadedBase>) =>
    base.then(
      async (b) => {
        for (const session of b.sessions.values())
          await session.then(
            (s) => s.release(),
            () => {},
          );
      },
      () => {},
    );
  function identityOf(key: string): Promise<string> {
    let identity = identities.get(key);
    if (!identity) {
      identity = baseIdentity(storedDir(artifactDir, key)).catch(() => key); // missing: the load says why
      if (identities.size > 4 * ADAPTERS_KEPT) identities.clear();
      identities.set(key, identity);
    }
    return identity;
  }
  /** The base from the LRU (loaded when missing), most recently used now. */
  async function baseOf(key: string): Promise<LoadedBase> {
    const id = await identityOf(key);
    let base = bases.get(id);
    if (base) {
      bases.delete(id); // re-inserted below: Map order is the recency order
    } else {
      base = loadBase(key);
      names.set(id, key);
      base.catch(() => {
        bases.delete(id); // a failed load is retried by the next request
        identities.delete(key);
      });
    }
    bases.set(id, base);
    while (bases.size > capacity) {
      const [oldest, evicted] = bases.entries().next().value as [string, Promise<LoadedBase>];
      bases.delete(oldest);
      names.delete(oldest);
      await releaseBase(evicted);
    }
    return base;
  }
  function sessionOf(
    key: string,
    base: LoadedBase,
    adapter: ServedAdapter | null,
    variant: Required<SamplerOptions>,
  ): Promise<Session> {
    const graph = `${adapter ? adapterGraphKey(adapter) : ''}|${variant.sampler}|${variant.topLogprobs}`;
    let session = base.sessions.get(graph);
    if (!session) {
      const options = { ...variant, ...(adapter ? adapterGraphOptions(adapter) : {}) };
      session = runtime.createSession(buildGenerationGraph(base.config, options), {
        name: `inference ${key} ${graph}`,
      });
      session.catch(() => base.sessions.delete(graph));
      base.sessions.set(graph, session);
    }
    return session;
  }
  async function loadAdapter(key: string): Promise<ServedAdapter | null> {
    const source = await adapterSourceOf(artifactDir, key);
    if (!source) return null;
    const adapter = servedAdapter(source, (await baseOf(source.baseKey)).config);
    if (adapters.has(key)) adapterKeys.add(key);
    return adapter;
  }
  function adapterOf(key: string): Promise<ServedAdapter | null> {
    let adapter = adapters.get(key);
    if (adapter) adapters.delete(key);
    else {
      adapter = loadAdapter(key);
      adapter.catch(() => {
        adapters.delete(key);
        adapterKeys.delete(key);
      });
    }
    adapters.set(key, adapter);
    if (adapters.size > ADAPTERS_KEPT) {
      const oldest = adapters.keys().next().value as string;
      adapters.delete(oldest);
      adapterKeys.delete(oldest);
    }
    return adapter;
  }
  return {
    async get(key) {
      const adapter = await adapterOf(key);
      const base = await baseOf(adapter?.baseKey ?? key);
      // The plain session at once: a model that cannot be served fails here, where the caller expects it.
      await sessionOf(key, base, adapter, { sampler: 'plain', topLogprobs: 0 });
      return {
        key,
        config: base.config,
        // Prompt tuning's virtual tokens take positions before every prompt.
        context:
          base.config.maxPositions - (adapter?.kind === 'prompt' ? adapter.settings.numVirtualTokens : 0),
        tokenizer: base.tokenizer,
        session: (variant) => sessionOf(key, base, adapter, variant),
        // The base's feeds are shared (the same tensors for every adapter); the adapter adds its own few.
        feeds: adapter ? { ...base.feeds, ...adapter.feeds } : base.feeds,
      };
    },
    loaded: () => [...bases.keys()].map((id) => names.get(id) ?? id),
    adapters: () => [...adapters.keys()].filter((key) => adapterKeys.has(key)),
    async close() {
      for (const base of bases.values()) await releaseBase(base);
      bases.clear();
      names.clear();
      identities.clear();
      adapters.clear();
      adapterKeys.clear();
    },
  };
}
