// One run's sample tables and artifacts (downloads carry the key's header).
import { fmt } from './chart.js';
import { $, el, label, SAMPLE_PAGE, size, table } from './dom.js';
import { api, getJson, isCurrent, showError } from './session.js';

const sampleKey = (s) => `${s.stageId} ${s.step} ${s.prompt} ${s.response}`;
export async function loadSamples(v, older) {
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
export async function reloadSamples(v) {
  v.samples = [];
  v.samplesCursor = null;
  await loadSamples(v, false);
}
export function renderSamples(v) {
  if (!isCurrent(v.p)) return;
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

export async function loadArtifacts(v) {
  v.artifacts = (await getJson(`/v1/runs/${v.run.id}/artifacts`, { signal: v.p.controller.signal })).items;
  renderArtifacts(v);
}
export function renderArtifacts(v) {
  if (!isCurrent(v.p)) return;
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
