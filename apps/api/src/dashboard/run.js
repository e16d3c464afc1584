// /dashboard/runs/:id: one run's page, kept current by its event stream (REST when the stream is down).
import { $, card, el, label, notFound, POLL_MS, settled, sleep } from './dom.js';
import { addPoint, chooseCompare, loadCompareChoices, loadMetrics, renderCharts } from './run-metrics.js';
import { loadArtifacts, loadSamples, reloadSamples, renderArtifacts, renderSamples } from './run-samples.js';
import { renderHead, renderHyperparameters, renderStages, renderTimeline } from './run-views.js';
import { ApiError, every, getJson, isCurrent, newPage, showError, SignedOut, signOut } from './session.js';

export async function runPage(id) {
  const p = newPage();
  const signal = p.controller.signal;
  let run;
  try {
    run = await getJson(`/v1/runs/${encodeURIComponent(id)}`, { signal });
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      if (isCurrent(p)) notFound(id, error.message);
      return;
    }
    throw error;
  }
  if (!isCurrent(p)) return;
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
  v.cancel = () => cancelRun(v); // the head's button (run-views.js draws it and does not import this module)
  const alive = () => isCurrent(p);
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
    card('Stages', null, el('div', { id: 'timeline' }), el('div', { id: 'stages' })),
    card(
      'Metrics',
      el(
        'div',
        { className: 'controls' },
        el('label', {}, 'smoothing ', smoothing, ' ', smoothingValue),
        el('label', {}, 'compare with ', compare),
        el('span', { className: 'muted' }, 'drag to zoom, double-click to reset'),
      ),
      el('div', { id: 'legend', className: 'legend', hidden: true }),
      el('div', { id: 'charts' }),
    ),
    card(
      'Samples (newest first)',
      el(
        'div',
        { className: 'controls' },
        filter,
        stageFilter,
        el('span', { id: 'sample-count', className: 'muted' }),
      ),
      el('div', { id: 'samples' }),
      moreSamples,
    ),
    card('Resolved hyperparameters', null, el('div', { id: 'hyperparameters' })),
    card(
      'Artifacts',
      el(
        'label',
        { className: 'controls' },
        checkpoints,
        el('span', { id: 'checkpoint-count' }, 'show checkpoints'),
      ),
      el('div', { id: 'artifacts' }),
    ),
  );
  for (const stage of v.run.stages) stageFilter.append(el('option', { value: stage.id }, label(stage.kind)));
}

function setMode(v, mode) {
  v.mode = mode;
  if (isCurrent(v.p)) renderHead(v);
}
function renderRun(v) {
  if (!isCurrent(v.p)) return;
  renderHead(v);
  renderTimeline(v);
  renderStages(v);
  renderHyperparameters(v);
}

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
