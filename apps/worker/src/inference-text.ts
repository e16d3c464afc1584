// Text side of inference: prompts framed as the trainers frame them, and the text of a growing sequence cut at
// stop sequences, released to the client only where it can no longer change.
import { ChatTemplateError, type Tokenizer } from '@rlhf/model';
import type { ChatTurn, TokenLogprob } from '@rlhf/queue';
import { type Framing, framingOf, promptTokens } from '@rlhf/stage-kit';

export class PromptError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

// A model's template is parsed once per loaded tokenizer, not per request.
const framings = new WeakMap<Tokenizer, Framing>();
function framingFor(tokenizer: Tokenizer): Framing {
  let framing = framings.get(tokenizer);
  if (!framing) {
    framing = framingOf(tokenizer);
    framings.set(tokenizer, framing);
  }
  return framing;
}

/**
 * The prompts' token ids, framed as the trainers frame prompt rows (stage-kit promptTokens with the default
 * framing): chat turns in the model's own Jinja chat template when it has one, ending in its generation prompt
 * (else the built-in `<|role|>` format); bos when the tokenizer adds one and the template does not write it.
 */
export function promptIds(
  tokenizer: Tokenizer,
  request: { kind: 'chat' | 'completion'; messages?: ChatTurn[]; prompts?: string[] },
): { prompts: number[][] } {
  const framing = framingFor(tokenizer);
  const all = Number.POSITIVE_INFINITY;
  if (request.kind === 'completion')
    return { prompts: (request.prompts ?? []).map((text) => promptTokens(tokenizer, text, all, framing)) };
  try {
    // Plain objects: a prompt row's messages (ChatTurn is an interface, without the row's index signature).
    const messages = (request.messages ?? []).map(({ role, content }) => ({ role, content }));
    return { prompts: [promptTokens(tokenizer, { messages }, all, framing)] };
  } catch (error) {
    if (error instanceof ChatTemplateError) throw new PromptError(error.message, 'messages');
    throw error;
  }
}

/** Where text must end: the first stop sequence, or null. */
function firstStop(text: string, stops: readonly string[]): number | null {
  let cut: number | null = null;
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at !== -1 && (cut === null || at < cut)) cut = at;
  }
  return cut;
}

/** Length of the longest end of `text` that begins a stop sequence (held back until the next tokens decide). */
function pendingStop(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const stop of stops)
    for (let k = Math.min(stop.length - 1, text.length); k > hold; k--)
      if (text.endsWith(stop.slice(0, k))) {
        hold = k;
        break;
      }
  return hold;
}

/** A completion's text as its tokens arrive: what may be sent, and where it ends. */
export class CompletionText {
  readonly tokens: number[] = [];
  private readonly logprobs: number[] = [];
  /** Per token, its most likely alternatives (with topLogprobs > 0). */
  private readonly alternatives: { id: number; logprob: number }[][] = [];
  private sentText = 0;
  private sentTokens = 0;
  finishReason: 'stop' | 'length' | null = null;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly stops: readonly string[],
    private readonly maxTokens: number,
    /** Alternatives listed per token (0: none). */
    private readonly topLogprobs = 0,
  ) {}

  get remaining(): number {
    return this.maxTokens - this.tokens.length;
  }

  /** Adds sampled tokens (EOS last if sampled); returns the text and token log-probs now final. */
  push(
    tokens: readonly number[],
    logprobs: readonly number[],
    alternatives?: readonly { id: number; logprob: number }[][],
  ): { text: string; logprobs: TokenLogprob[] } {
    const { eosId } = this.tokenizer;
    let eos = false;
    for (const [i, id] of tokens.entries()) {
      if (this.remaining === 0) break;
      if (id === eosId) {
        eos = true;
        break;
      }
      this.tokens.push(id);
      this.logprobs.push(logprobs[i]);
      this.alternatives.push(alternatives?.[i].slice(0, this.topLogprobs) ?? []);
    }
    const text = this.decode(this.tokens.length);
    const cut = firstStop(text, this.stops);
    let end: number;
    let endTokens = this.tokens.length;
    if (cut !== null) {
      this.finishReason = 'stop';
      end = cut;
      // The tokens that make up the text before the stop sequence (the one that starts it counts).
      endTokens = this.tokens.findIndex((_, k) => this.decode(k + 1).length > cut) + 1 || this.tokens.length;
      this.tokens.length = endTokens;
      this.logprobs.length = endTokens;
      this.alternatives.length = endTokens;
    } else if (eos) {
      this.finishReason = 'stop';
      end = text.length;
    } else if (this.remaining === 0) {
      this.finishReason = 'length';
      end = text.length;
    } else {
      // An unfinished UTF-8 sequence or the start of a stop sequence may still change: hold it back.
      end = text.endsWith('\uFFFD') ? text.length - 1 : text.length;
      end -= pendingStop(text.slice(0, end), this.stops);
      endTokens = this.sentTokens;
      for (let k = this.sentTokens + 1; k <= this.tokens.length && this.decode(k).length <= end; k++)
        endTokens = k;
    }
    const out = {
      text: text.slice(this.sentText, Math.max(this.sentText, end)),
      logprobs: this.tokenLogprobs(this.sentTokens, endTokens),
    };
    this.sentText = Math.max(this.sentText, end);
    this.sentTokens = Math.max(this.sentTokens, endTokens);
    return out;
  }

  private decode(count: number): string {
    return this.tokenizer.decode(this.tokens.slice(0, count), { skipSpecialTokens: true });
  }

  private tokenText(id: number): string {
    return this.tokenizer.decode([id], { skipSpecialTokens: true });
  }

  private tokenLogprobs(from: number, to: number): TokenLogprob[] {
    const out: TokenLogprob[] = [];
    for (let k = from; k < to; k++) {
      const token = this.tokenText(this.tokens[k]);
      out.push({
        token,
        logprob: this.logprobs[k],
        bytes: [...Buffer.from(token, 'utf8')],
        ...(this.topLogprobs > 0
          ? {
              top_logprobs: this.alternatives[k].map((a) => {
                const text = this.tokenText(a.id);
                return { token: text, logprob: a.logprob, bytes: [...Buffer.from(text, 'utf8')] };
              }),
            }
          : {}),
      });
    }
    return out;
  }
}
