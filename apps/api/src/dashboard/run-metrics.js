// One run's metric charts per stage, and another run's curves to compare with.
import { LineChart } from './chart.js';
import { $, el, KEY_METRICS, label } from './dom.js';
import { getJson, isCurrent } from './session.js';

export function addPoint(v, stageId, step, name, value) {
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
export async function loadMetrics(v, stage) {
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
export function renderCharts(v) {
  if (!isCurrent(v.p)) return;
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

export async function loadCompareChoices(v) {
  const runs = await getJson('/v1/runs?limit=100', { signal: v.p.controller.signal });
  const select = $('compare');
  if (!select) return;
  for (const run of runs.items.filter((r) => r.id !== v.run.id)) {
    select.append(
      el('option', { value: run.id }, `${run.name ?? 'unnamed'} · ${run.id.slice(0, 8)} · ${run.status}`),
    );
  }
}
export async function chooseCompare(v, runId) {
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
