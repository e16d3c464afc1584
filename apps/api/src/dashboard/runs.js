// /dashboard: the team's runs, filtered by status, with their stages' progress.
import { $, badge, card, duration, el, runLink, stageBar, table, when } from './dom.js';
import { every, getJson, isCurrent, newPage, showError } from './session.js';

const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

export async function runsPage() {
  const p = newPage();
  const state = { status: '', items: [], cursor: null, extended: false };
  const status = el(
    'select',
    { id: 'run-status-filter' },
    el('option', { value: '' }, 'all statuses'),
    ...RUN_STATUSES.map((s) => el('option', { value: s }, s)),
  );
  const list = el('div', { id: 'runs' });
  const more = el('button', { type: 'button', hidden: true }, 'Load more');
  $('page').replaceChildren(
    card('Runs', el('label', { className: 'controls' }, 'Show ', status), list, more),
  );
  const query = (cursor) =>
    new URLSearchParams({
      limit: '50',
      ...(state.status ? { status: state.status } : {}),
      ...(cursor ? { cursor } : {}),
    });
  const render = () => {
    if (!isCurrent(p)) return;
    list.replaceChildren(
      state.items.length === 0
        ? el('p', { className: 'muted' }, 'No runs yet: POST /v1/runs (or `rlhf submit`) starts one.')
        : table(
            ['run', 'status', 'stages', 'created', 'duration', 'error'],
            state.items.map((run) =>
              el(
                'tr',
                { dataset: { runId: run.id } },
                el('td', {}, runLink(run), el('div', { className: 'muted' }, run.id)),
                el('td', {}, badge(run.status)),
                el('td', {}, ...run.stages.map((s) => stageBar(s))),
                el('td', { className: 'num' }, when(run.createdAt)),
                el('td', { className: 'num' }, duration(run.startedAt, run.finishedAt)),
                el('td', {}, run.error ? el('div', { className: 'error-text' }, run.error) : ''),
              ),
            ),
          ),
    );
    more.hidden = !state.cursor;
  };
  const load = async () => {
    const first = await getJson(`/v1/runs?${query()}`, { signal: p.controller.signal });
    state.items = first.items;
    state.cursor = first.nextCursor;
    state.extended = false;
    render();
  };
  status.onchange = () => {
    state.status = status.value;
    load().catch(showError);
  };
  more.onclick = async () => {
    const next = await getJson(`/v1/runs?${query(state.cursor)}`, { signal: p.controller.signal }).catch(
      showError,
    );
    if (!next) return;
    state.items.push(...next.items);
    state.cursor = next.nextCursor;
    state.extended = true;
    render();
  };
  await load();
  every(p, 5000, () => (state.extended ? undefined : load())); // older pages the user opened stay as they are
}
