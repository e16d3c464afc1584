// One run's head, timeline, stage table and hyperparameters.
import { $, badge, duration, el, finished, label, stageBar, table, when } from './dom.js';
import { isCurrent } from './session.js';

export function renderHead(v) {
  const { run } = v;
  const cancel = finished(run.status)
    ? null
    : el(
        'button',
        { className: 'danger', id: 'cancel-run', type: 'button', onclick: () => v.cancel() },
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

export function renderTimeline(v) {
  if (!isCurrent(v.p)) return;
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

export function renderStages(v) {
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
export function renderHyperparameters(v) {
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
