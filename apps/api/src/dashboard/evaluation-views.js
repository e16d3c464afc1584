// What the evaluations and the leaderboard pages share: model names and links, judge and sampling text,
// interval bars.
import { el, label } from './dom.js';
import { getJson, SignedOut } from './session.js';

export const OUTCOMES = { win: 'A wins', tie: 'tie', loss: 'B wins' };
export const VERDICT_LIMIT = 500;
export const pct = (x) => (typeof x === 'number' ? `${(x * 100).toFixed(1)} %` : '–');
// An untrained model emits control characters: shown as their Unicode pictures (␀, ␁ …), not swallowed.
export const visible = (text) =>
  Array.from(String(text ?? ''), (c) => {
    const code = c.charCodeAt(0);
    return code < 32 && c !== '\n' && c !== '\t' ? String.fromCharCode(0x2400 + code) : c;
  }).join('');

/** The team's run names by id (to name the models of runs); an empty map when the runs cannot be read. */
export async function runNames(signal) {
  try {
    const runs = await getJson('/v1/runs?limit=100', { signal });
    return new Map(runs.items.map((r) => [r.id, r.name]));
  } catch (error) {
    if (error instanceof SignedOut || error?.name === 'AbortError') throw error;
    return new Map();
  }
}
/** A model's name as the leaderboard keys it: `run:<id>:<stage>` (a run's policy) or `model:<name>` (registered). */
function parseModel(name) {
  const run = /^run:([^:]+):(.+)$/.exec(name);
  if (run) return { runId: run[1], stage: run[2] };
  const model = /^model:(.+)$/.exec(name);
  return { registered: model ? model[1] : name };
}
export function shortModel(name, names) {
  const m = parseModel(name);
  if (m.runId) return `${names.get(m.runId) ?? `run ${m.runId.slice(0, 8)}`} · ${label(m.stage)}`;
  return m.registered;
}
/** The model with a link to its run, and what it is under that. */
export function modelCell(name, names) {
  const m = parseModel(name);
  if (m.runId) {
    return el(
      'span',
      { className: 'model' },
      el(
        'a',
        { href: `/dashboard/runs/${m.runId}`, dataset: { route: '' } },
        names.get(m.runId) ?? `run ${m.runId.slice(0, 8)}`,
      ),
      ` · ${label(m.stage)}`,
      el('div', { className: 'muted key' }, name),
    );
  }
  return el(
    'span',
    { className: 'model' },
    m.registered,
    el('div', { className: 'muted' }, 'registered model'),
  );
}
export function judgeText(judge) {
  if (!judge) return '–';
  const margin = judge.tieMargin ? ` · tie margin ${judge.tieMargin}` : '';
  if (judge.type === 'task') return el('span', {}, `task grader ${judge.name}`, margin);
  if (judge.type === 'grader')
    return el('span', {}, `grader ${judge.grader?.name ?? judge.grader?.type ?? '?'}`, margin);
  if (judge.type === 'language_model')
    return el(
      'span',
      {},
      'judge model ',
      el('code', {}, judge.modelId),
      ` · both orders, ${judge.combine ?? 'consistent'}`,
      margin,
    );
  return el(
    'span',
    {},
    'reward model of run ',
    el('a', { href: `/dashboard/runs/${judge.runId}`, dataset: { route: '' } }, judge.runId),
    margin,
  );
}
export function samplingText(sampling) {
  if (!sampling) return '–';
  const parts = [`up to ${sampling.maxNewTokens} new tokens`];
  parts.push(sampling.temperature === 0 ? 'greedy' : `temperature ${sampling.temperature}`);
  if (sampling.topK) parts.push(`top-k ${sampling.topK}`);
  if (sampling.topP) parts.push(`top-p ${sampling.topP}`);
  return parts.join(' · ');
}
export const evaluationLink = (e) =>
  el('a', { href: `/dashboard/evaluations/${e.id}`, dataset: { route: '' } }, e.name ?? e.id);

/**
 * An interval on a horizontal scale [lo, hi]: the interval as a band, the estimate as a mark, and reference
 * lines (e.g. a win rate of ½). Positions are percentages of the track, set through the CSSOM (the CSP
 * refuses style attributes, not style properties).
 */
export function intervalBar({ lo, hi, lower, upper, value, refs = [], title, className = '' }) {
  const at = (x) => Math.max(0, Math.min(100, ((x - lo) / (hi - lo || 1)) * 100));
  const band = el('div', { className: 'ci-band' });
  band.style.left = `${at(lower)}%`;
  band.style.width = `${Math.max(0, at(upper) - at(lower))}%`;
  const mark = el('div', { className: 'ci-mark' });
  mark.style.left = `${at(value)}%`;
  const lines = refs.map((r) => {
    const line = el('div', { className: 'ci-ref' });
    line.style.left = `${at(r)}%`;
    return line;
  });
  return el(
    'div',
    {
      className: `ci ${className}`.trim(),
      title,
      dataset: { lower: at(lower).toFixed(2), upper: at(upper).toFixed(2), value: at(value).toFixed(2) },
    },
    el('div', { className: 'ci-track' }, ...lines, band, mark),
  );
}
