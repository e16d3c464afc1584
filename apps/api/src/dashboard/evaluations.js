// /dashboard/evaluations[/:id]: the evaluations list and one evaluation's page.
import { $, badge, card, duration, el, notFound, POLL_MS, table, when } from './dom.js';
import {
  positionBiasText,
  renderMeanScores,
  renderPairs,
  renderVerdicts,
  workText,
} from './evaluation-results.js';
import {
  evaluationLink,
  judgeText,
  modelCell,
  OUTCOMES,
  pct,
  runNames,
  samplingText,
  shortModel,
} from './evaluation-views.js';
import { ApiError, every, getJson, isCurrent, newPage, showError } from './session.js';

export async function evaluationsPage() {
  const p = newPage();
  const state = { items: [], cursor: null, extended: false, names: new Map() };
  const list = el('div', { id: 'evaluations' }, el('p', { className: 'muted' }, 'Loading…'));
  const more = el('button', { type: 'button', hidden: true }, 'Load more');
  $('page').replaceChildren(
    card(
      'Evaluations',
      el('a', { href: '/dashboard/leaderboard', dataset: { route: '' } }, 'leaderboard →'),
      list,
      more,
    ),
  );
  const resultCell = (e) => {
    if (e.status === 'failed') return el('div', { className: 'error-text' }, e.error ?? 'failed');
    if (!e.result) return el('span', { className: 'muted' }, e.status === 'running' ? 'generating…' : '–');
    return e.result.pairs.map((pair) =>
      el(
        'div',
        { className: 'pair-summary' },
        `${shortModel(pair.a, state.names)} vs ${shortModel(pair.b, state.names)}: `,
        el('b', {}, pct(pair.winRate)),
        ` (${pct(pair.interval.lower)} – ${pct(pair.interval.upper)})`,
      ),
    );
  };
  const render = () => {
    if (!isCurrent(p)) return;
    list.replaceChildren(
      state.items.length === 0
        ? el(
            'p',
            { className: 'muted' },
            'No evaluations yet: POST /v1/evaluations compares two or more models on a prompt set.',
          )
        : table(
            ['evaluation', 'status', 'models', 'judge', 'win rate of A (95 %)', 'created', 'took'],
            state.items.map((e) =>
              el(
                'tr',
                { dataset: { evaluationId: e.id } },
                el('td', {}, evaluationLink(e), el('div', { className: 'muted key' }, e.id)),
                el('td', {}, badge(e.status)),
                el(
                  'td',
                  {},
                  ...e.models.map((m) =>
                    el('div', { className: 'model-name' }, shortModel(m.name, state.names)),
                  ),
                ),
                el('td', {}, judgeText(e.spec?.judge)),
                el('td', {}, resultCell(e)),
                el('td', { className: 'num' }, when(e.createdAt)),
                el('td', { className: 'num' }, duration(e.createdAt, e.finishedAt)),
              ),
            ),
            { id: 'evaluation-table' },
          ),
    );
    more.hidden = !state.cursor;
  };
  const load = async () => {
    const signal = p.controller.signal;
    const [first, names] = await Promise.all([
      getJson('/v1/evaluations?limit=20', { signal }),
      runNames(signal),
    ]);
    Object.assign(state, { items: first.items, cursor: first.nextCursor, extended: false, names });
    render();
  };
  more.onclick = async () => {
    const query = new URLSearchParams({ limit: '20', cursor: state.cursor });
    const next = await getJson(`/v1/evaluations?${query}`, { signal: p.controller.signal }).catch(showError);
    if (!next) return;
    state.items.push(...next.items);
    state.cursor = next.nextCursor;
    state.extended = true;
    render();
  };
  await load();
  every(p, 5000, () => (state.extended ? undefined : load()));
}

export async function evaluationPage(id) {
  const p = newPage();
  const signal = p.controller.signal;
  const read = () => getJson(`/v1/evaluations/${encodeURIComponent(id)}`, { signal });
  let view;
  try {
    view = await read();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      if (isCurrent(p)) notFound(id, error.message, 'evaluation', '/dashboard/evaluations');
      return;
    }
    throw error;
  }
  const names = await runNames(signal);
  if (!isCurrent(p)) return;
  const v = { p, view, names, shown: null };
  buildEvaluationLayout(v);
  renderEvaluation(v);
  let reading = false;
  every(p, POLL_MS, async () => {
    if (evaluationDone(v.view) || reading) return;
    reading = true;
    try {
      v.view = await read();
      renderEvaluation(v);
    } finally {
      reading = false;
    }
  });
}
const evaluationDone = (view) => view.status === 'succeeded' || view.status === 'failed';

function buildEvaluationLayout(v) {
  const filter = el('input', {
    type: 'search',
    id: 'verdict-filter',
    placeholder: 'filter prompt or responses…',
  });
  const outcome = el(
    'select',
    { id: 'verdict-outcome' },
    el('option', { value: '' }, 'every outcome'),
    ...Object.entries(OUTCOMES).map(([value, text]) => el('option', { value }, text)),
  );
  const pair = el('select', { id: 'verdict-pair', hidden: true });
  filter.oninput = () => renderVerdicts(v);
  outcome.onchange = () => renderVerdicts(v);
  pair.onchange = () => renderVerdicts(v);
  $('page').replaceChildren(
    el('section', { className: 'card', id: 'evaluation-head' }),
    card(
      'Win rates',
      null,
      el(
        'p',
        { className: 'muted' },
        'Per pair, the share of prompts and seeds model A wins (a tie counts ½) with its 95 % bootstrap ' +
          'interval (prompts resampled); the line marks ½, no difference.',
      ),
      el('div', { id: 'pairs' }),
    ),
    card('Mean scores', null, el('div', { id: 'mean-scores' })),
    card(
      'Verdicts',
      el(
        'div',
        { className: 'controls' },
        pair,
        filter,
        outcome,
        el('span', { id: 'verdict-count', className: 'muted' }),
      ),
      el('div', { id: 'verdicts' }),
    ),
  );
}

function renderEvaluation(v) {
  if (!isCurrent(v.p)) return;
  const { view, names } = v;
  const spec = view.spec ?? {};
  const seeds = spec.seeds ?? [];
  $('evaluation-head').replaceChildren(
    el(
      'div',
      { className: 'row' },
      el('h2', {}, view.name ?? 'evaluation', ' ', badge(view.status, 'evaluation-status')),
      el(
        'span',
        { className: 'muted', id: 'evaluation-mode' },
        evaluationDone(view) ? 'finished' : `refreshing every ${POLL_MS / 1000} s`,
      ),
    ),
    el(
      'div',
      { className: 'muted' },
      `${view.id} · created ${when(view.createdAt)} · finished ${when(view.finishedAt)} · ` +
        duration(view.createdAt, view.finishedAt),
    ),
    el(
      'dl',
      { className: 'facts' },
      el('dt', {}, 'models'),
      el(
        'dd',
        { id: 'evaluation-models' },
        ...view.models.map((m, i) =>
          el(
            'div',
            { dataset: { model: m.name } },
            el('b', {}, `${String.fromCharCode(65 + i)} `),
            modelCell(m.name, names),
          ),
        ),
      ),
      el('dt', {}, 'judge'),
      el('dd', { id: 'evaluation-judge' }, judgeText(spec.judge)),
      el('dt', {}, 'prompts'),
      el(
        'dd',
        {},
        `the first ${spec.maxPrompts ?? '?'} of dataset `,
        el('code', {}, spec.datasetId ?? '?'),
        ` × ${seeds.length} seed${seeds.length === 1 ? '' : 's'} (${seeds.join(', ')})`,
      ),
      el('dt', {}, 'sampling'),
      el('dd', {}, samplingText(spec.sampling)),
      ...(view.result?.positionBias
        ? [
            el('dt', {}, 'position bias'),
            el('dd', { id: 'evaluation-position-bias' }, positionBiasText(view.result.positionBias)),
          ]
        : []),
      ...(view.result?.work
        ? [el('dt', {}, 'reused'), el('dd', { id: 'evaluation-work' }, workText(view.result.work))]
        : []),
    ),
    ...(view.error ? [el('div', { className: 'error-text', id: 'evaluation-error' }, view.error)] : []),
  );
  const signature = `${view.status} ${view.result ? view.result.pairs.length : 0}`;
  if (signature === v.shown) return; // the result is drawn once; polling only refreshes the head
  v.shown = signature;
  renderPairs(v);
  renderMeanScores(v);
  const select = $('verdict-pair');
  const pairs = view.result?.pairs ?? [];
  select.replaceChildren(
    ...pairs.map((pair, i) =>
      el('option', { value: String(i) }, `${shortModel(pair.a, names)} vs ${shortModel(pair.b, names)}`),
    ),
  );
  select.hidden = pairs.length < 2;
  renderVerdicts(v);
}
