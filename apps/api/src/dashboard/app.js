// The dashboard: runs, one page per run (/dashboard/runs/:id), the evaluations (/dashboard/evaluations[/:id]),
// the team's leaderboard and the workers, all read from /v1 with the team key the user entered. Routes are client-side (the server answers every dashboard path with one shell).
import { fmt, LineChart } from './chart.js';

const KEY_STORE = 'rlhf.apiKey';
const STAGE_LABELS = {
  sft: 'SFT',
  reward_model: 'RM',
  dpo: 'DPO',
  pro: 'PRO',
  raft: 'RAFT',
  grpo: 'GRPO',
  ppo: 'PPO',
  eval: 'Eval',
};
// The metrics users watch first per stage kind (TRL's names); the others follow, folded.
const KEY_METRICS = {
  sft: ['train/loss', 'eval/loss', 'eval/win_rate'],
  reward_model: ['train/loss', 'eval/accuracy', 'eval/loss', 'train/accuracy'],
  dpo: ['train/loss', 'rewards/accuracies', 'rewards/margins', 'eval/rewards/accuracies', 'eval/win_rate'],
  pro: ['train/loss', 'rewards/accuracies', 'rewards/margins', 'eval/rewards/accuracies', 'eval/win_rate'],
  raft: ['reward/kept_mean', 'reward/all_mean', 'objective/ground_truth', 'train/loss', 'eval/win_rate'],
  grpo: ['reward', 'reward_std', 'kl', 'objective/ground_truth', 'train/loss', 'eval/win_rate'],
  ppo: [
    'objective/scores',
    'objective/ground_truth',
    'objective/kl',
    'kl_ctl/value',
    'loss/policy_avg',
    'eval/win_rate',
  ],
  // The eval stage's one point, and the policy stages' per-checkpoint eval/win_rate above.
  eval: ['eval/win_rate', 'eval/win_rate_lower', 'eval/win_rate_upper'],
};
const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const SAMPLE_PAGE = 50;
const POLL_MS = 2000;

const $ = (id) => document.getElementById(id);
const label = (kind) => STAGE_LABELS[kind] ?? kind;
const finished = (status) => ['succeeded', 'failed', 'cancelled'].includes(status);
// A cancelled run's running stage stops only at its next check: follow the run until no stage runs.
const settled = (run) => finished(run.status) && !run.stages.some((s) => s.status === 'running');
const when = (time) => (time ? new Date(time).toLocaleString() : '–');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function duration(from, to) {
  if (!from) return '–';
  const seconds = Math.max(0, Math.round(((to ? new Date(to) : new Date()) - new Date(from)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}
function size(bytes) {
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  return bytes < 1024 ** 3
    ? `${(bytes / 1024 ** 2).toFixed(1)} MiB`
    : `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

// Builds an element; strings become text nodes, so nothing from the API is ever parsed as HTML.
function el(tag, props, ...children) {
  const { dataset, ...rest } = props ?? {};
  const node = Object.assign(document.createElement(tag), rest);
  for (const [name, value] of Object.entries(dataset ?? {})) node.dataset[name] = String(value);
  node.append(
    ...children
      .flat()
      .filter((c) => c !== null && c !== undefined && c !== false)
      .map((c) => (c instanceof Node ? c : String(c))),
  );
  return node;
}
const badge = (status, id) => el('span', { className: `badge ${status}`, ...(id ? { id } : {}) }, status);
// A table in a box of its own that scrolls sideways on a narrow screen, so the page itself never does.
function table(headings, rows, props = {}) {
  return el(
    'div',
    { className: 'table-wrap' },
    el(
      'table',
      props,
      el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', {}, h)))),
      el('tbody', {}, ...rows),
    ),
  );
}
// Coalesces a burst of calls into one, at most every `ms` (e.g. many events -> one request).
function throttle(fn, ms) {
  let waiting = false;
  return () => {
    if (waiting) return;
    waiting = true;
    setTimeout(() => {
      waiting = false;
      Promise.resolve(fn()).catch(showError);
    }, ms);
  };
}
function showError(error) {
  if (error?.name === 'AbortError' || error instanceof SignedOut) return;
  $('error').hidden = !error;
  $('error').textContent = error ? String(error.message ?? error) : '';
}

// --- API key and requests ------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
/** Thrown after a 401: the login form is showing, callers just stop. */
class SignedOut extends Error {}

let key = localStorage.getItem(KEY_STORE);
const fragmentKey = new URLSearchParams(location.hash.slice(1)).get('key');
if (fragmentKey) {
  // local testing only: moved to localStorage, then cleared from the address bar
  key = fragmentKey;
  localStorage.setItem(KEY_STORE, key);
  history.replaceState(null, '', location.pathname + location.search);
}

async function api(path, init = {}) {
  if (!key) throw new SignedOut('no key');
  let response;
  try {
    response = await fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${key}` } });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new Error(`The API is unreachable (${error.message}); retrying.`);
  }
  if (response.ok) return response;
  const body = await response.json().catch(() => null);
  const message = body?.error?.message ?? `HTTP ${response.status}`;
  if (response.status === 401) {
    signOut(
      `This API key was not accepted (${message}). Check that it is complete and not revoked, or ask an admin for a new one.`,
    );
    throw new SignedOut(message);
  }
  if (response.status === 429) {
    const wait = response.headers.get('retry-after');
    throw new ApiError(429, 'rate_limited', `${message}${wait ? ` (try again in ${wait} s)` : ''}`);
  }
  throw new ApiError(response.status, body?.error?.code ?? 'error', message);
}
const getJson = async (path, init) => (await api(path, init)).json();

function signOut(message) {
  localStorage.removeItem(KEY_STORE);
  key = null;
  stopPage();
  $('page').hidden = true;
  $('page').replaceChildren();
  $('nav').hidden = true;
  $('forget').hidden = true;
  $('error').hidden = true;
  $('login').hidden = false;
  $('login-message').hidden = !message;
  $('login-message').textContent = message ?? '';
  $('key').focus();
}
$('forget').onclick = () => signOut(null);
$('login').onsubmit = async (event) => {
  event.preventDefault();
  const entered = $('key').value.trim();
  if (!entered) return;
  $('key').value = '';
  key = entered;
  try {
    await getJson('/v1/runs?limit=1'); // a wrong key is told here, before any page is drawn
  } catch (error) {
    if (!(error instanceof SignedOut)) {
      key = null;
      $('login-message').hidden = false;
      $('login-message').textContent = String(error.message);
    }
    return;
  }
  localStorage.setItem(KEY_STORE, key);
  signedIn();
};
function signedIn() {
  $('login').hidden = true;
  $('login-message').hidden = true;
  $('page').hidden = false;
  $('nav').hidden = false;
  $('forget').hidden = false;
  route();
}

// --- Pages and routes ----------------------------------------------------------------------------
// The page showing now: its requests and timers end when another page replaces it.
let page = null;
function stopPage() {
  if (!page) return;
  page.controller.abort();
  for (const timer of page.timers) clearInterval(timer);
  page = null;
}
function newPage() {
  stopPage();
  page = { controller: new AbortController(), timers: [] };
  showError(null);
  return page;
}
function every(p, ms, fn) {
  p.timers.push(setInterval(() => page === p && Promise.resolve(fn()).catch(showError), ms));
}

function route() {
  if (!key) return;
  const path = location.pathname.replace(/\/+$/, '');
  for (const link of $('nav').querySelectorAll('a')) {
    link.classList.toggle('current', new URL(link.href).pathname === path);
  }
  const match = /^\/dashboard\/runs\/([^/]+)$/.exec(path);
  const evaluation = /^\/dashboard\/evaluations\/([^/]+)$/.exec(path);
  if (match) runPage(decodeURIComponent(match[1])).catch(showError);
  else if (evaluation) evaluationPage(decodeURIComponent(evaluation[1])).catch(showError);
  else if (path === '/dashboard/evaluations') evaluationsPage().catch(showError);
  else if (path === '/dashboard/leaderboard') leaderboardPage().catch(showError);
  else if (path === '/dashboard/workers') workersPage().catch(showError);
  else runsPage().catch(showError);
}
document.addEventListener('click', (event) => {
  const link = event.target.closest?.('a[data-route]');
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  if (link.href !== location.href) history.pushState(null, '', link.href);
  route();
});
window.addEventListener('popstate', route);
const runLink = (run) =>
  el('a', { href: `/dashboard/runs/${run.id}`, dataset: { route: '' } }, run.name ?? run.id);

function stageBar(stage, labelled = true) {
  const fill = el('div', { className: `fill ${stage.status}` });
  fill.style.width = `${Math.round(stage.progress * 100)}%`;
  return el(
    'div',
    {
      className: 'stagebar',
      title: `${stage.kind}: ${stage.status}, step ${stage.step} / ${stage.totalSteps ?? '?'}`,
    },
    labelled ? el('span', {}, label(stage.kind)) : null,
    el('div', { className: 'track' }, fill),
  );
}

// --- Runs ----------------------------------------------------------------------------------------
async function runsPage() {
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
    el(
      'section',
      { className: 'card' },
      el(
        'div',
        { className: 'row' },
        el('h2', {}, 'Runs'),
        el('label', { className: 'controls' }, 'Show ', status),
      ),
      list,
      more,
    ),
  );
  const query = (cursor) =>
    new URLSearchParams({
      limit: '50',
      ...(state.status ? { status: state.status } : {}),
      ...(cursor ? { cursor } : {}),
    });
  const render = () => {
    if (page !== p) return;
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

// --- Workers -------------------------------------------------------------------------------------
async function workersPage() {
  const p = newPage();
  const body = el('div', { id: 'workers' }, el('p', { className: 'muted' }, 'Loading…'));
  $('page').replaceChildren(
    el(
      'section',
      { className: 'card' },
      el('h2', {}, 'Workers'),
      el(
        'p',
        { className: 'muted' },
        'Worker processes that sent a heartbeat recently; refreshed every 3 s.',
      ),
      body,
    ),
  );
  const load = async () => {
    const signal = p.controller.signal;
    const [workers, runs] = await Promise.all([
      getJson('/v1/workers', { signal }),
      getJson('/v1/runs?limit=100', { signal }),
    ]);
    // The team's stage ids -> their run, to link a busy worker to what it trains.
    const stages = new Map(runs.items.flatMap((run) => run.stages.map((s) => [s.id, { run, stage: s }])));
    if (page !== p) return;
    body.replaceChildren(
      workers.items.length === 0
        ? el('p', { className: 'muted' }, 'No worker is alive: start one with `npm start -w @rlhf/worker`.')
        : table(
            ['worker', 'host', 'device', 'status', 'stage', 'last heartbeat'],
            workers.items.map((w) => {
              const found = w.stageId ? stages.get(w.stageId) : null;
              return el(
                'tr',
                { dataset: { workerId: w.id } },
                el('td', { className: 'key' }, w.id),
                el('td', {}, w.hostname),
                el('td', {}, w.device),
                el('td', {}, badge(w.status)),
                el(
                  'td',
                  {},
                  found
                    ? [runLink(found.run), ` · ${label(found.stage.kind)}`]
                    : w.status === 'busy'
                      ? el('span', { className: 'muted' }, "another team's stage")
                      : '–',
                ),
                el('td', { className: 'num', title: w.lastSeenAt }, `${duration(w.lastSeenAt, null)} ago`),
              );
            }),
          ),
    );
  };
  await load();
  every(p, 3000, load);
}

// --- One run -------------------------------------------------------------------------------------
function notFound(id, message, what = 'run', back = '/dashboard') {
  $('page').replaceChildren(
    el(
      'section',
      { className: 'card notfound', id: 'not-found' },
      el('h2', {}, `${what[0].toUpperCase()}${what.slice(1)} not found`),
      el(
        'p',
        {},
        `No ${what} `,
        el('code', {}, id),
        ` belongs to your team: it may be another team’s ${what}, or the id is wrong.`,
      ),
      el('p', { className: 'muted' }, message),
      el('p', {}, el('a', { href: back, dataset: { route: '' } }, `← all ${what}s`)),
    ),
  );
}

async function runPage(id) {
  const p = newPage();
  const signal = p.controller.signal;
  let run;
  try {
    run = await getJson(`/v1/runs/${encodeURIComponent(id)}`, { signal });
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      if (page === p) notFound(id, error.message);
      return;
    }
    throw error;
  }
  if (page !== p) return;
  const v = {
    p,
    run,
    metrics: new Map(), // stageId -> name -> step -> value
    fetched: new Map(), // stageId -> last step read over REST (live events do not move it)
    charts: new Map(), // `${stageId} ${name}` -> LineChart
    sections: new Map(), // stageId -> its chart section
    smoothing: 0,
    compare: null, // { run, metrics: stage kind -> name -> [[step, value]] }
    samples: [],
    samplesCursor: null,
    artifacts: [],
    mode: '',
  };
  const alive = () => page === p;
  buildRunLayout(v);
  renderRun(v);
  await sync(v);
  loadCompareChoices(v).catch(showError);
  every(p, 1000, () => !settled(v.run) && renderTimeline(v)); // running bars grow with the clock
  if (!settled(v.run)) follow(v, alive).catch(showError);
  else setMode(v, 'finished');
}

function buildRunLayout(v) {
  const smoothing = el('input', {
    type: 'range',
    min: '0',
    max: '0.99',
    step: '0.01',
    value: '0',
    id: 'smoothing',
  });
  const smoothingValue = el('span', { className: 'num' }, '0');
  smoothing.oninput = () => {
    v.smoothing = Number(smoothing.value);
    smoothingValue.textContent = smoothing.value;
    renderCharts(v);
  };
  const compare = el('select', { id: 'compare' }, el('option', { value: '' }, 'no other run'));
  compare.onchange = () => chooseCompare(v, compare.value).catch(showError);
  const filter = el('input', {
    type: 'search',
    id: 'sample-filter',
    placeholder: 'filter prompt or response…',
  });
  filter.oninput = () => renderSamples(v);
  const stageFilter = el('select', { id: 'sample-stage' }, el('option', { value: '' }, 'all stages'));
  stageFilter.onchange = () => reloadSamples(v).catch(showError);
  const checkpoints = el('input', { type: 'checkbox', id: 'show-checkpoints' });
  checkpoints.onchange = () => renderArtifacts(v);
  const moreSamples = el(
    'button',
    { type: 'button', id: 'more-samples', hidden: true },
    'Load older samples',
  );
  moreSamples.onclick = () => loadSamples(v, true).catch(showError);
  $('page').replaceChildren(
    el('section', { className: 'card', id: 'run-head' }),
    el(
      'section',
      { className: 'card' },
      el('h2', {}, 'Stages'),
      el('div', { id: 'timeline' }),
      el('div', { id: 'stages' }),
    ),
    el(
      'section',
      { className: 'card' },
      el(
        'div',
        { className: 'row' },
        el('h2', {}, 'Metrics'),
        el(
          'div',
          { className: 'controls' },
          el('label', {}, 'smoothing ', smoothing, ' ', smoothingValue),
          el('label', {}, 'compare with ', compare),
          el('span', { className: 'muted' }, 'drag to zoom, double-click to reset'),
        ),
      ),
      el('div', { id: 'legend', className: 'legend', hidden: true }),
      el('div', { id: 'charts' }),
    ),
    el(
      'section',
      { className: 'card' },
      el(
        'div',
        { className: 'row' },
        el('h2', {}, 'Samples (newest first)'),
        el(
          'div',
          { className: 'controls' },
          filter,
          stageFilter,
          el('span', { id: 'sample-count', className: 'muted' }),
        ),
      ),
      el('div', { id: 'samples' }),
      moreSamples,
    ),
    el(
      'section',
      { className: 'card' },
      el('h2', {}, 'Resolved hyperparameters'),
      el('div', { id: 'hyperparameters' }),
    ),
    el(
      'section',
      { className: 'card' },
      el(
        'div',
        { className: 'row' },
        el('h2', {}, 'Artifacts'),
        el(
          'label',
          { className: 'controls' },
          checkpoints,
          el('span', { id: 'checkpoint-count' }, 'show checkpoints'),
        ),
      ),
      el('div', { id: 'artifacts' }),
    ),
  );
  for (const stage of v.run.stages) stageFilter.append(el('option', { value: stage.id }, label(stage.kind)));
}

function setMode(v, mode) {
  v.mode = mode;
  if (page === v.p) renderHead(v);
}
function renderRun(v) {
  if (page !== v.p) return;
  renderHead(v);
  renderTimeline(v);
  renderStages(v);
  renderHyperparameters(v);
}

function renderHead(v) {
  const { run } = v;
  const cancel = finished(run.status)
    ? null
    : el(
        'button',
        { className: 'danger', id: 'cancel-run', type: 'button', onclick: () => cancelRun(v) },
        'Cancel run',
      );
  $('run-head').replaceChildren(
    el(
      'div',
      { className: 'row' },
      el('h2', {}, run.name ?? 'unnamed run', ' ', badge(run.status, 'run-status')),
      el(
        'span',
        { className: 'controls' },
        el('span', { className: 'muted', id: 'run-mode' }, v.mode),
        cancel,
      ),
    ),
    el(
      'div',
      { className: 'muted' },
      `${run.id} · model ${run.hyperparameters?.modelPreset ?? run.spec?.model?.preset ?? '?'} · created ${when(run.createdAt)}` +
        ` · started ${when(run.startedAt)} · finished ${when(run.finishedAt)} · ${duration(run.startedAt, run.finishedAt)}`,
    ),
    ...(run.error ? [el('div', { className: 'error-text', id: 'run-error' }, run.error)] : []),
    ...(run.gate ? [gateLine(run.gate)] : []),
  );
}

// The eval stage's release gate: passed / failed (badge colours of succeeded / failed) or pending, and its numbers.
function gateLine(gate) {
  const state = gate.passed === null ? 'pending' : gate.passed ? 'passed' : 'failed';
  const bar = `${gate.rule === 'point' ? 'win rate' : 'interval lower bound'} ≥ ${gate.minWinRate}`;
  const measured =
    gate.winRate === null
      ? 'not measured yet'
      : `win rate ${gate.winRate.toFixed(3)} [${gate.interval.lower.toFixed(3)}, ${gate.interval.upper.toFixed(3)}]`;
  return el(
    'div',
    { className: 'row', id: 'run-gate' },
    el(
      'span',
      { className: `badge ${gate.passed === null ? 'queued' : gate.passed ? 'succeeded' : 'failed'}` },
      `gate ${state}`,
    ),
    el('span', { className: 'muted' }, ` ${bar} · ${measured}`),
  );
}

function renderTimeline(v) {
  if (page !== v.p) return;
  const { run } = v;
  const begin = new Date(run.startedAt ?? run.createdAt).getTime();
  const ends = run.stages.map((s) =>
    s.finishedAt ? new Date(s.finishedAt).getTime() : s.startedAt ? Date.now() : 0,
  );
  const end = Math.max(
    begin + 1000,
    run.finishedAt ? new Date(run.finishedAt).getTime() : Date.now(),
    ...ends,
  );
  const at = (time) => ((time - begin) / (end - begin)) * 100;
  const lanes = run.stages.map((s) => {
    const track = el('div', { className: 'lane-track' });
    if (s.startedAt) {
      const from = new Date(s.startedAt).getTime();
      const to = s.finishedAt ? new Date(s.finishedAt).getTime() : Date.now();
      const bar = el('div', {
        className: `bar ${s.status}`,
        title: `${when(s.startedAt)} → ${when(s.finishedAt)}`,
      });
      bar.style.left = `${at(from)}%`;
      bar.style.width = `${Math.max(0, at(to) - at(from))}%`;
      track.append(bar);
    }
    const step = `${s.step} / ${s.totalSteps ?? '?'}`;
    return el(
      'div',
      { className: 'lane', dataset: { stageKind: s.kind, status: s.status } },
      el('span', {}, label(s.kind), ' ', badge(s.status)),
      track,
      el(
        'span',
        { className: 'muted' },
        s.startedAt ? `step ${step} · ${duration(s.startedAt, s.finishedAt)}` : 'waiting',
      ),
    );
  });
  $('timeline').replaceChildren(
    el(
      'div',
      { className: 'timeline' },
      ...lanes,
      el(
        'div',
        { className: 'axis' },
        el('span'),
        el(
          'div',
          {},
          el('span', {}, new Date(begin).toLocaleTimeString()),
          el('span', {}, `+${duration(begin, end)}`),
        ),
        el('span'),
      ),
    ),
  );
}

function renderStages(v) {
  $('stages').replaceChildren(
    table(
      ['stage', 'status', 'progress', 'step', 'attempts', 'worker', 'started', 'took'],
      v.run.stages.map((s) =>
        el(
          'tr',
          { dataset: { stageKind: s.kind, step: s.step, status: s.status } },
          el('td', {}, label(s.kind)),
          el('td', {}, badge(s.status)),
          el('td', {}, stageBar(s, false)),
          el('td', { className: 'num stage-step' }, `${s.step} / ${s.totalSteps ?? '?'}`),
          el('td', { className: 'num' }, s.attempts),
          el('td', { className: 'key' }, s.workerId ?? '–'),
          el('td', { className: 'num' }, when(s.startedAt)),
          el('td', { className: 'num' }, duration(s.startedAt, s.finishedAt)),
        ),
      ),
      { id: 'stage-table' },
    ),
    // Errors below the table, as wide as the card (a table may scroll sideways on a narrow screen).
    ...v.run.stages
      .filter((s) => s.error)
      .map((s) =>
        el(
          'div',
          { className: 'error-text stage-error', dataset: { stageKind: s.kind } },
          `${label(s.kind)}: ${s.error}`,
        ),
      ),
  );
}

/** Nested settings as dotted keys: { kl: { coef: 0.1 } } -> kl.coef = 0.1. */
function flatten(value, prefix = '', out = []) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${k}` : k, out);
  } else out.push([prefix, Array.isArray(value) ? JSON.stringify(value) : String(value)]);
  return out;
}
function renderHyperparameters(v) {
  const record = v.run.hyperparameters ?? { stages: {} };
  const signature = JSON.stringify(record);
  if (signature === v.hyperparameters) return; // unchanged: keep the sections the user opened
  v.hyperparameters = signature;
  const settingsTable = (rows) =>
    table(
      ['setting', 'value'],
      rows.map(([k, value]) =>
        el('tr', {}, el('td', { className: 'key' }, k), el('td', { className: 'text' }, value)),
      ),
    );
  $('hyperparameters').replaceChildren(
    el(
      'p',
      { className: 'muted' },
      `model preset ${record.modelPreset ?? '–'}`,
      record.fromRun ? ` · from run ${record.fromRun.runId} (${record.fromRun.stage})` : '',
    ),
    el(
      'div',
      { className: 'cols' },
      ...v.run.stages.map((stage) => {
        const { resolved, ...given } = record.stages?.[stage.kind] ?? {};
        return el(
          'div',
          { dataset: { hyperparameters: stage.kind } },
          el('h3', {}, label(stage.kind)),
          resolved
            ? [el('div', { className: 'muted' }, 'resolved by the trainer'), settingsTable(flatten(resolved))]
            : el('p', { className: 'muted' }, 'Resolved when the stage finishes.'),
          el(
            'details',
            {},
            el('summary', {}, 'submitted settings (with defaults)'),
            settingsTable(flatten(given)),
          ),
        );
      }),
    ),
  );
}

// --- One run: metrics ----------------------------------------------------------------------------
function addPoint(v, stageId, step, name, value) {
  if (!v.metrics.has(stageId)) v.metrics.set(stageId, new Map());
  const byName = v.metrics.get(stageId);
  if (!byName.has(name)) byName.set(name, new Map());
  const series = byName.get(name);
  if (!series.has(step)) series.set(step, value); // a step reported again (resumed stage): the API keeps the first
}
/** All metric points of one stage after `afterStep`, page by page. */
async function metricPages(runId, stageId, afterStep, signal, onPoint) {
  let cursor = null;
  do {
    const query = new URLSearchParams({ stageId, limit: '5000' });
    if (afterStep !== undefined) query.set('afterStep', String(afterStep));
    if (cursor) query.set('cursor', cursor);
    const pageOfPoints = await getJson(`/v1/runs/${runId}/metrics?${query}`, { signal });
    for (const point of pageOfPoints.items) onPoint(point);
    cursor = pageOfPoints.nextCursor;
  } while (cursor);
}
async function loadMetrics(v, stage) {
  await metricPages(v.run.id, stage.id, v.fetched.get(stage.id), v.p.controller.signal, (m) => {
    addPoint(v, m.stageId, m.step, m.name, m.value);
    v.fetched.set(m.stageId, Math.max(m.step, v.fetched.get(m.stageId) ?? -1));
  });
}
const sortedPoints = (series) => [...series].sort((a, b) => a[0] - b[0]);

function stageSection(v, stage) {
  let section = v.sections.get(stage.id);
  if (!section) {
    const key = el('div', { className: 'grid' });
    const more = el('div', { className: 'grid' });
    const moreLabel = el('summary', {});
    const details = el('details', { hidden: true }, moreLabel, more);
    const empty = el('p', { className: 'muted' }, 'No metrics yet.');
    section = { key, more, moreLabel, details, empty, names: '' };
    section.element = el(
      'div',
      { dataset: { stageCharts: stage.kind } },
      el('h3', {}, label(stage.kind)),
      empty,
      key,
      details,
    );
    v.sections.set(stage.id, section);
  }
  return section;
}
function renderCharts(v) {
  if (page !== v.p) return;
  const container = $('charts');
  v.run.stages.forEach((stage, i) => {
    const section = stageSection(v, stage);
    if (container.children[i] !== section.element) container.append(section.element);
    const byName = v.metrics.get(stage.id) ?? new Map();
    const names = [...byName.keys()];
    const wanted = KEY_METRICS[stage.kind] ?? [];
    let first = wanted.filter((n) => byName.has(n));
    if (first.length === 0) first = names.slice().sort().slice(0, 4); // an unknown kind: its first few
    const rest = names.filter((n) => !first.includes(n)).sort();
    const chartOf = (name) => {
      const id = `${stage.id} ${name}`;
      if (!v.charts.has(id)) v.charts.set(id, new LineChart(name));
      return v.charts.get(id);
    };
    // Charts move between grids only when the set of names changed (moving a node would drop its hover).
    const layout = `${first.join(',')}|${rest.join(',')}`;
    if (layout !== section.names) {
      section.names = layout;
      section.key.replaceChildren(...first.map((n) => chartOf(n).element));
      section.more.replaceChildren(...rest.map((n) => chartOf(n).element));
      section.moreLabel.textContent = `${rest.length} more metrics`;
      section.details.hidden = rest.length === 0;
      section.empty.hidden = names.length > 0;
    }
    const other = v.compare?.metrics.get(stage.kind);
    for (const name of names) {
      chartOf(name).update(sortedPoints(byName.get(name)), other?.get(name) ?? null, v.smoothing);
    }
  });
}

async function loadCompareChoices(v) {
  const runs = await getJson('/v1/runs?limit=100', { signal: v.p.controller.signal });
  const select = $('compare');
  if (!select) return;
  for (const run of runs.items.filter((r) => r.id !== v.run.id)) {
    select.append(
      el('option', { value: run.id }, `${run.name ?? 'unnamed'} · ${run.id.slice(0, 8)} · ${run.status}`),
    );
  }
}
async function chooseCompare(v, runId) {
  if (!runId) {
    v.compare = null;
  } else {
    const signal = v.p.controller.signal;
    const run = await getJson(`/v1/runs/${runId}`, { signal });
    const metrics = new Map(); // stage kind -> name -> step -> value
    for (const stage of run.stages) {
      const byName = new Map();
      metrics.set(stage.kind, byName);
      await metricPages(run.id, stage.id, undefined, signal, (m) => {
        if (!byName.has(m.name)) byName.set(m.name, new Map());
        byName.get(m.name).set(m.step, m.value);
      });
    }
    const sorted = new Map(
      [...metrics].map(([kind, byName]) => [
        kind,
        new Map([...byName].map(([n, s]) => [n, sortedPoints(s)])),
      ]),
    );
    v.compare = { run, metrics: sorted };
  }
  const legend = $('legend');
  legend.hidden = !v.compare;
  if (v.compare) {
    legend.replaceChildren(
      el('span', {}, el('span', { className: 'swatch' }), 'this run'),
      el('span', {}, el('span', { className: 'swatch compare' }), v.compare.run.name ?? v.compare.run.id),
    );
  }
  renderCharts(v);
}

// --- One run: samples and artifacts ----------------------------------------------------------------
const sampleKey = (s) => `${s.stageId} ${s.step} ${s.prompt} ${s.response}`;
async function loadSamples(v, older) {
  const query = new URLSearchParams({ limit: String(SAMPLE_PAGE) });
  const stageId = $('sample-stage')?.value;
  if (stageId) query.set('stageId', stageId);
  if (older && v.samplesCursor) query.set('cursor', v.samplesCursor);
  const result = await getJson(`/v1/runs/${v.run.id}/samples?${query}`, { signal: v.p.controller.signal });
  if (older) {
    v.samples.push(...result.items);
    v.samplesCursor = result.nextCursor;
  } else {
    // The newest page, then the older rows already loaded that it does not repeat.
    const fresh = new Set(result.items.map(sampleKey));
    const kept = v.samples.filter((s) => !fresh.has(sampleKey(s)));
    v.samples = [...result.items, ...kept];
    if (kept.length === 0) v.samplesCursor = result.nextCursor;
  }
  renderSamples(v);
}
async function reloadSamples(v) {
  v.samples = [];
  v.samplesCursor = null;
  await loadSamples(v, false);
}
function renderSamples(v) {
  if (page !== v.p) return;
  const kinds = new Map(v.run.stages.map((s) => [s.id, label(s.kind)]));
  const needle = $('sample-filter').value.trim().toLowerCase();
  const shown = needle
    ? v.samples.filter((s) => `${s.prompt}\n${s.response}`.toLowerCase().includes(needle))
    : v.samples;
  $('sample-count').textContent = needle
    ? `${shown.length} of ${v.samples.length} loaded match`
    : `${v.samples.length} loaded`;
  $('more-samples').hidden = !v.samplesCursor;
  $('samples').replaceChildren(
    v.samples.length === 0
      ? el(
          'p',
          { className: 'muted' },
          'No samples yet (RAFT, GRPO and PPO stages log them while they train).',
        )
      : shown.length === 0
        ? el('p', { className: 'muted' }, 'No loaded sample matches the filter.')
        : table(
            ['stage', 'step', 'prompt', 'response', 'score', 'KL', 'EOS'],
            shown.map((s) =>
              el(
                'tr',
                { className: 'sample' },
                el('td', {}, kinds.get(s.stageId) ?? ''),
                el('td', { className: 'num' }, s.step),
                el('td', { className: 'text' }, s.prompt),
                el('td', { className: 'text' }, s.response),
                el('td', { className: 'num' }, fmt(s.score)),
                el('td', { className: 'num' }, fmt(s.kl)),
                el('td', {}, s.eos ? 'yes' : 'cut'),
              ),
            ),
            { id: 'sample-table' },
          ),
  );
}

async function loadArtifacts(v) {
  v.artifacts = (await getJson(`/v1/runs/${v.run.id}/artifacts`, { signal: v.p.controller.signal })).items;
  renderArtifacts(v);
}
function renderArtifacts(v) {
  if (page !== v.p) return;
  const kinds = new Map(v.run.stages.map((s) => [s.id, label(s.kind)]));
  const withCheckpoints = $('show-checkpoints').checked;
  const checkpoints = v.artifacts.filter((a) => a.kind === 'checkpoint').length;
  $('checkpoint-count').textContent = `show checkpoints (${checkpoints})`;
  const shown = v.artifacts.filter((a) => withCheckpoints || a.kind !== 'checkpoint');
  $('artifacts').replaceChildren(
    shown.length === 0
      ? el(
          'p',
          { className: 'muted' },
          v.artifacts.length === 0 ? 'No artifacts yet.' : 'Only checkpoints so far.',
        )
      : table(
          ['stage', 'kind', 'file', 'step', 'size', 'sha256', ''],
          shown.map((a) => {
            const name = a.key.split('/').pop();
            const link = el(
              'a',
              {
                href: `/v1/runs/${a.runId}/artifacts/${a.id}/download`,
                download: name,
                className: 'download',
              },
              'download',
            );
            link.onclick = (event) => {
              event.preventDefault();
              download(a, name).catch(showError);
            };
            return el(
              'tr',
              { dataset: { artifactKind: a.kind } },
              el('td', {}, kinds.get(a.stageId) ?? ''),
              el('td', {}, a.kind),
              el(
                'td',
                { className: 'key', title: a.key },
                a.key.replace(`runs/${a.runId}/${a.stageId}/`, ''),
              ),
              el('td', { className: 'num' }, a.step ?? '–'),
              el('td', { className: 'num' }, size(a.sizeBytes)),
              el('td', { className: 'key', title: a.sha256 ?? '' }, a.sha256 ? a.sha256.slice(0, 12) : '–'),
              el('td', {}, link),
            );
          }),
          { id: 'artifact-table' },
        ),
  );
}
// Downloads need the Authorization header: fetch the file as a blob and save it from an object URL.
async function download(artifact, name) {
  const response = await api(`/v1/runs/${artifact.runId}/artifacts/${artifact.id}/download`);
  const url = URL.createObjectURL(await response.blob());
  const link = el('a', { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// --- One run: keeping it current ------------------------------------------------------------------
/** Brings the whole view up to date: the run, new metrics of started stages, samples, artifacts. */
async function sync(v) {
  const signal = v.p.controller.signal;
  v.run = await getJson(`/v1/runs/${v.run.id}`, { signal });
  const started = v.run.stages.filter((s) => !['pending', 'queued'].includes(s.status));
  await Promise.all([
    loadSamples(v, false),
    loadArtifacts(v),
    ...started.map((stage) => loadMetrics(v, stage)),
  ]);
  renderRun(v);
  renderCharts(v);
}

// The named events of a run's stream (EventSource delivers a named event only to a listener of that name).
const STREAM_EVENTS = [
  'run',
  'metrics',
  'samples',
  'artifact',
  'stage.started',
  'stage.progress',
  'stage.completed',
  'stage.failed',
  'stage.cancelled',
  'stage.requeued',
  'run.updated',
  'unauthorized',
  'end',
];

/**
 * One connection of the run's event stream: an EventSource opened with a short-lived stream token (the key
 * never goes into a URL), resuming after `lastEventId`. Resolves 'end' after the server's `end` event,
 * 'revoked' when the key was revoked, 'dropped' when the connection failed or closed (the caller reconnects
 * with a fresh token: EventSource's own retry would reuse an expired one), 'aborted' when the page changed.
 */
async function streamOnce(runId, signal, lastEventId, onEvent) {
  const { url } = await getJson(`/v1/runs/${runId}/stream-token`, { method: 'POST', signal });
  const resume = lastEventId ? `&lastEventId=${encodeURIComponent(lastEventId)}` : '';
  return new Promise((resolve) => {
    const source = new EventSource(`${url}${resume}`);
    const done = (how) => {
      source.close();
      signal.removeEventListener('abort', aborted);
      resolve(how);
    };
    const aborted = () => done('aborted');
    signal.addEventListener('abort', aborted);
    for (const type of STREAM_EVENTS) {
      source.addEventListener(type, (event) => {
        onEvent(type, JSON.parse(event.data), event.lastEventId || null);
        if (type === 'end') done('end');
        else if (type === 'unauthorized') done('revoked');
      });
    }
    source.onerror = () => done('dropped');
  });
}

/** Follows the run's event stream (reconnecting after the last event id when it drops) until the run ended. */
async function follow(v, alive) {
  const signal = v.p.controller.signal;
  const chartsSoon = throttle(() => renderCharts(v), 250);
  const runSoon = throttle(async () => {
    v.run = await getJson(`/v1/runs/${v.run.id}`, { signal });
    renderRun(v);
  }, 500);
  const samplesSoon = throttle(() => loadSamples(v, false), 500);
  const artifactsSoon = throttle(() => loadArtifacts(v), 1000);
  const syncSoon = throttle(() => sync(v), 100);
  let lastEventId = null;
  let failures = 0;
  const onEvent = (type, data, id) => {
    if (id) lastEventId = id;
    failures = 0; // connected: the next drop waits from the start again
    if (type === 'run') {
      v.run = data;
      renderRun(v);
      syncSoon(); // the snapshot: load what was persisted before the stream
    } else if (type === 'metrics') {
      for (const [name, value] of Object.entries(data.values)) {
        if (typeof value === 'number') addPoint(v, data.stageId, data.step, name, value); // NaN arrives as null
      }
      chartsSoon();
    } else if (type === 'stage.progress') {
      const stage = v.run.stages.find((s) => s.id === data.stageId);
      if (stage && data.step >= stage.step) {
        stage.step = data.step;
        stage.totalSteps = data.totalSteps ?? stage.totalSteps;
        if (stage.totalSteps) stage.progress = Math.min(1, stage.step / stage.totalSteps);
        renderRun(v);
      }
    } else if (type === 'samples') samplesSoon();
    else if (type === 'artifact') artifactsSoon();
    else if (type !== 'end' && type !== 'unauthorized') runSoon(); // stage.* and run.updated: statuses changed
  };
  while (alive()) {
    let how;
    try {
      setMode(v, 'live');
      how = await streamOnce(v.run.id, signal, lastEventId, onEvent);
    } catch (error) {
      if (signal.aborted || error instanceof SignedOut) return;
      if (error instanceof ApiError && error.status === 404) return notFound(v.run.id, error.message); // deleted
      how = `stream token refused (${error.message})`;
    }
    if (how === 'aborted') return;
    if (how === 'end') break;
    if (how === 'revoked') {
      signOut('This API key was revoked while the page was open; enter a valid key.');
      return;
    }
    failures += 1;
    setMode(v, `stream lost${how === 'dropped' ? '' : `: ${how}`}; reconnecting`);
    await sleep(Math.min(500 * 2 ** failures, 10_000));
    if (alive()) await sync(v).catch(showError); // what the gap missed
  }
  // After `end`: sync until no stage is running (a cancelled stage stops at its next check).
  for (;;) {
    if (!alive()) return;
    await sync(v).catch(showError);
    if (settled(v.run)) break;
    setMode(v, `stopping; polling every ${POLL_MS / 1000} s`);
    await sleep(POLL_MS);
  }
  setMode(v, 'finished');
}

async function cancelRun(v) {
  if (!confirm('Cancel this run? A running stage stops at its next check.')) return;
  try {
    v.run = await getJson(`/v1/runs/${v.run.id}/cancel`, { method: 'POST' });
    renderRun(v);
  } catch (error) {
    showError(error);
  }
}

// --- Evaluations and the leaderboard ---------------------------------------------------------------
const OUTCOMES = { win: 'A wins', tie: 'tie', loss: 'B wins' };
const VERDICT_LIMIT = 500;
const pct = (x) => (typeof x === 'number' ? `${(x * 100).toFixed(1)} %` : '–');
// An untrained model emits control characters: shown as their Unicode pictures (␀, ␁ …), not swallowed.
const visible = (text) =>
  Array.from(String(text ?? ''), (c) => {
    const code = c.charCodeAt(0);
    return code < 32 && c !== '\n' && c !== '\t' ? String.fromCharCode(0x2400 + code) : c;
  }).join('');

/** The team's run names by id (to name the models of runs); an empty map when the runs cannot be read. */
async function runNames(signal) {
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
function shortModel(name, names) {
  const m = parseModel(name);
  if (m.runId) return `${names.get(m.runId) ?? `run ${m.runId.slice(0, 8)}`} · ${label(m.stage)}`;
  return m.registered;
}
/** The model with a link to its run, and what it is under that. */
function modelCell(name, names) {
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
function judgeText(judge) {
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
function samplingText(sampling) {
  if (!sampling) return '–';
  const parts = [`up to ${sampling.maxNewTokens} new tokens`];
  parts.push(sampling.temperature === 0 ? 'greedy' : `temperature ${sampling.temperature}`);
  if (sampling.topK) parts.push(`top-k ${sampling.topK}`);
  if (sampling.topP) parts.push(`top-p ${sampling.topP}`);
  return parts.join(' · ');
}
const evaluationLink = (e) =>
  el('a', { href: `/dashboard/evaluations/${e.id}`, dataset: { route: '' } }, e.name ?? e.id);

/**
 * An interval on a horizontal scale [lo, hi]: the interval as a band, the estimate as a mark, and reference
 * lines (e.g. a win rate of ½). Positions are percentages of the track, set through the CSSOM (the CSP
 * refuses style attributes, not style properties).
 */
function intervalBar({ lo, hi, lower, upper, value, refs = [], title, className = '' }) {
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

// --- Leaderboard -------------------------------------------------------------------------------------
async function leaderboardPage() {
  const p = newPage();
  const judge = el(
    'select',
    { id: 'leaderboard-judge' },
    el('option', { value: '' }, 'every judge'),
    el('option', { value: 'task' }, 'task graders'),
    el('option', { value: 'reward_model' }, 'reward models'),
  );
  const body = el('div', { id: 'leaderboard' }, el('p', { className: 'muted' }, 'Loading…'));
  $('page').replaceChildren(
    el(
      'section',
      { className: 'card' },
      el(
        'div',
        { className: 'row' },
        el('h2', {}, 'Leaderboard'),
        el('label', { className: 'controls' }, 'comparisons by ', judge),
      ),
      el(
        'p',
        { className: 'muted' },
        'Bradley–Terry ratings on the Elo scale from every finished evaluation of the team, best first. ' +
          'The bar is the 95 % bootstrap interval of the rating, the mark the rating itself.',
      ),
      body,
    ),
  );
  const load = async () => {
    const signal = p.controller.signal;
    const query = judge.value ? `?judge=${judge.value}` : '';
    const [board, names] = await Promise.all([
      getJson(`/v1/leaderboard${query}`, { signal }),
      runNames(signal),
    ]);
    if (page === p) renderLeaderboard(body, board, names);
  };
  judge.onchange = () => load().catch(showError);
  await load();
  every(p, 10_000, load);
}
function renderLeaderboard(body, board, names) {
  if (board.rows.length === 0) {
    body.replaceChildren(
      el(
        'p',
        { className: 'muted' },
        'No finished evaluation yet: POST /v1/evaluations compares two or more models (see ',
        el('a', { href: '/dashboard/evaluations', dataset: { route: '' } }, 'evaluations'),
        ').',
      ),
    );
    return;
  }
  const lows = board.rows.map((r) => r.interval.lower);
  const highs = board.rows.map((r) => r.interval.upper);
  const [min, max] = [Math.min(...lows, ...board.rows.map((r) => r.rating)), Math.max(...highs)];
  const pad = Math.max(5, (max - min) * 0.05);
  const scale = { lo: min - pad, hi: max + pad };
  const scaleHeading = el(
    'span',
    { className: 'ci-scale' },
    el('span', {}, Math.round(scale.lo)),
    el('span', {}, 'rating'),
    el('span', {}, Math.round(scale.hi)),
  );
  body.replaceChildren(
    el(
      'p',
      { className: 'muted', id: 'leaderboard-summary' },
      `${board.rows.length} models · ${board.comparisons} comparisons from ${board.evaluations} ` +
        (board.evaluations === 1 ? 'evaluation' : 'evaluations'),
    ),
    table(
      ['rank', 'model', 'rating', '95 % interval', scaleHeading, 'games', 'W / T / L'],
      board.rows.map((r) =>
        el(
          'tr',
          { className: 'rating', dataset: { model: r.model, rank: r.rank } },
          el('td', { className: 'num' }, r.rank),
          el('td', {}, modelCell(r.model, names)),
          el('td', { className: 'num rating-value' }, Math.round(r.rating)),
          el(
            'td',
            { className: 'num rating-interval' },
            `${Math.round(r.interval.lower)} – ${Math.round(r.interval.upper)}`,
          ),
          el(
            'td',
            { className: 'ci-cell' },
            intervalBar({
              ...scale,
              lower: r.interval.lower,
              upper: r.interval.upper,
              value: r.rating,
              title: `${Math.round(r.rating)} (95 %: ${Math.round(r.interval.lower)} – ${Math.round(r.interval.upper)})`,
            }),
          ),
          el('td', { className: 'num' }, r.games),
          el('td', { className: 'num wtl' }, `${r.wins} / ${r.ties} / ${r.losses}`),
        ),
      ),
      { id: 'leaderboard-table' },
    ),
  );
}

// --- Evaluations -------------------------------------------------------------------------------------
async function evaluationsPage() {
  const p = newPage();
  const state = { items: [], cursor: null, extended: false, names: new Map() };
  const list = el('div', { id: 'evaluations' }, el('p', { className: 'muted' }, 'Loading…'));
  const more = el('button', { type: 'button', hidden: true }, 'Load more');
  $('page').replaceChildren(
    el(
      'section',
      { className: 'card' },
      el(
        'div',
        { className: 'row' },
        el('h2', {}, 'Evaluations'),
        el('a', { href: '/dashboard/leaderboard', dataset: { route: '' } }, 'leaderboard →'),
      ),
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
    if (page !== p) return;
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

async function evaluationPage(id) {
  const p = newPage();
  const signal = p.controller.signal;
  const read = () => getJson(`/v1/evaluations/${encodeURIComponent(id)}`, { signal });
  let view;
  try {
    view = await read();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      if (page === p) notFound(id, error.message, 'evaluation', '/dashboard/evaluations');
      return;
    }
    throw error;
  }
  const names = await runNames(signal);
  if (page !== p) return;
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
    el(
      'section',
      { className: 'card' },
      el('h2', {}, 'Win rates'),
      el(
        'p',
        { className: 'muted' },
        'Per pair, the share of prompts and seeds model A wins (a tie counts ½) with its 95 % bootstrap ' +
          'interval (prompts resampled); the line marks ½, no difference.',
      ),
      el('div', { id: 'pairs' }),
    ),
    el('section', { className: 'card' }, el('h2', {}, 'Mean scores'), el('div', { id: 'mean-scores' })),
    el(
      'section',
      { className: 'card' },
      el(
        'div',
        { className: 'row' },
        el('h2', {}, 'Verdicts'),
        el(
          'div',
          { className: 'controls' },
          pair,
          filter,
          outcome,
          el('span', { id: 'verdict-count', className: 'muted' }),
        ),
      ),
      el('div', { id: 'verdicts' }),
    ),
  );
}

function renderEvaluation(v) {
  if (page !== v.p) return;
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

function waiting(view) {
  if (view.status === 'failed') return 'The evaluation failed: no result.';
  return view.status === 'running'
    ? 'The models are generating and the judge is comparing; the result appears here when it is done.'
    : 'Queued: waiting for a worker started with --evaluations.';
}

function renderPairs(v) {
  const { view, names } = v;
  if (!view.result) {
    $('pairs').replaceChildren(el('p', { className: 'muted' }, waiting(view)));
    return;
  }
  $('pairs').replaceChildren(
    ...view.result.pairs.map((pair, i) => {
      const [a, b] = [shortModel(pair.a, names), shortModel(pair.b, names)];
      const n = pair.wins + pair.ties + pair.losses;
      const { lower, upper } = pair.interval;
      const level = Math.round((pair.interval.level ?? 0.95) * 100);
      const verdict =
        lower > 0.5
          ? `${a} is better: the whole interval is above ½.`
          : upper < 0.5
            ? `${b} is better: the whole interval is below ½.`
            : 'No clear difference: the interval contains ½.';
      return el(
        'div',
        { className: 'pair', dataset: { pair: i, a: pair.a, b: pair.b } },
        el(
          'h3',
          {},
          el('span', { className: 'side-a' }, `A ${a}`),
          ' vs ',
          el('span', { className: 'side-b' }, `B ${b}`),
        ),
        el(
          'div',
          { className: 'winrate-row' },
          el('span', { className: 'winrate num' }, pct(pair.winRate)),
          el(
            'div',
            { className: 'winrate-scale' },
            intervalBar({
              lo: 0,
              hi: 1,
              lower,
              upper,
              value: pair.winRate,
              refs: [0.5],
              className: 'winrate-bar',
              title: `win rate of A ${pct(pair.winRate)}, ${level} % interval ${pct(lower)} – ${pct(upper)}`,
            }),
            el(
              'div',
              { className: 'ci-axis' },
              el('span', {}, '0'),
              el('span', {}, '½'),
              el('span', {}, '1'),
            ),
          ),
          el('span', { className: 'num winrate-interval' }, `${level} %: ${pct(lower)} – ${pct(upper)}`),
        ),
        el(
          'div',
          { className: 'wtl' },
          el('span', { className: 'badge win' }, `A wins ${pair.wins}`),
          ' ',
          el('span', { className: 'badge tie' }, `ties ${pair.ties}`),
          ' ',
          el('span', { className: 'badge loss' }, `B wins ${pair.losses}`),
          el('span', { className: 'muted' }, ` of ${n} verdicts`),
        ),
        el('p', { className: 'pair-verdict' }, verdict),
        ...(pair.positionBias
          ? [el('p', { className: 'muted pair-position-bias' }, positionBiasText(pair.positionBias))]
          : []),
        ...(pair.groundTruthAgreement
          ? [el('p', { className: 'muted pair-agreement' }, agreementText(pair.groundTruthAgreement))]
          : []),
      );
    }),
  );
}

/** A pairwise judge's position bias (Zheng et al. 2023): verdicts that changed when the answers swapped. */
function positionBiasText(bias) {
  return (
    `${pct(bias.flipRate)} of ${bias.judged} verdicts changed when the answers swapped ` +
    `(${bias.favouredFirst} favoured the answer shown first, ${bias.favouredSecond} the second; ` +
    `mean P(first better) ${fmt(bias.meanFirstPreference)}, ½ = no bias)`
  );
}
/** The judge's verdicts against a task's ground truth on the same responses. */
function agreementText(a) {
  const decided =
    a.decidedAgreement === null ? '' : `, ${pct(a.decidedAgreement)} of the ${a.decided} it decides`;
  return `agrees with the ${a.task} ground truth on ${pct(a.agreement)} of ${a.n} verdicts${decided} (Cohen's κ ${fmt(a.kappa)})`;
}
function workText(work) {
  const part = (done, made, what) => `${done} of ${done + made} ${what}`;
  return (
    `${part(work.generations.reused, work.generations.generated, 'generation batches')} · ` +
    `${part(work.judgments.reused, work.judgments.judged, 'judge answers')} from earlier work`
  );
}

function renderMeanScores(v) {
  const { view, names } = v;
  const scores = view.result?.meanScores;
  if (!view.result) {
    $('mean-scores').replaceChildren(el('p', { className: 'muted' }, '–'));
    return;
  }
  if (!scores) {
    $('mean-scores').replaceChildren(
      el('p', { className: 'muted' }, 'This judge gives verdicts, not scores.'),
    );
    return;
  }
  const rows = Object.entries(scores).sort(([, x], [, y]) => y - x);
  $('mean-scores').replaceChildren(
    table(
      ['model', 'mean score'],
      rows.map(([model, score]) =>
        el(
          'tr',
          { dataset: { model } },
          el('td', {}, modelCell(model, names)),
          el('td', { className: 'num' }, fmt(score)),
        ),
      ),
      { id: 'mean-score-table' },
    ),
  );
}

function renderVerdicts(v) {
  if (page !== v.p) return;
  const pairs = v.view.result?.pairs ?? [];
  const pair = pairs[Number($('verdict-pair').value || 0)] ?? pairs[0];
  if (!pair) {
    $('verdict-count').textContent = '';
    $('verdicts').replaceChildren(el('p', { className: 'muted' }, waiting(v.view)));
    return;
  }
  const needle = $('verdict-filter').value.trim().toLowerCase();
  const outcome = $('verdict-outcome').value;
  const shown = pair.rows.filter(
    (r) =>
      (!outcome || r.outcome === outcome) &&
      (!needle || `${r.prompt}\n${r.responseA}\n${r.responseB}`.toLowerCase().includes(needle)),
  );
  const drawn = shown.slice(0, VERDICT_LIMIT);
  $('verdict-count').textContent =
    (shown.length === pair.rows.length
      ? `${shown.length} verdicts`
      : `${shown.length} of ${pair.rows.length} match`) +
    (drawn.length < shown.length ? ` (first ${drawn.length} shown)` : '');
  const names = v.names;
  $('verdicts').replaceChildren(
    shown.length === 0
      ? el('p', { className: 'muted' }, 'No verdict matches the filter.')
      : table(
          [
            'prompt',
            'seed',
            `response of A (${shortModel(pair.a, names)})`,
            `response of B (${shortModel(pair.b, names)})`,
            pair.positionBias ? 'P(A better), A first' : 'score A',
            pair.positionBias ? 'P(B better), B first' : 'score B',
            'outcome',
          ],
          drawn.map((r) =>
            el(
              'tr',
              { className: 'verdict', dataset: { outcome: r.outcome } },
              el('td', { className: 'text prompt' }, visible(r.prompt)),
              el('td', { className: 'num' }, v.view.spec?.seeds?.[r.seedIndex] ?? r.seedIndex),
              el('td', { className: 'text response' }, visible(r.responseA)),
              el('td', { className: 'text response' }, visible(r.responseB)),
              el('td', { className: 'num' }, fmt(r.scoreA ?? r.pAFirst)),
              el('td', { className: 'num' }, fmt(r.scoreB ?? r.pBFirst)),
              el('td', {}, el('span', { className: `badge ${r.outcome}` }, OUTCOMES[r.outcome] ?? r.outcome)),
            ),
          ),
          { id: 'verdict-table' },
        ),
  );
}

if (key) signedIn();
else signOut(null);
