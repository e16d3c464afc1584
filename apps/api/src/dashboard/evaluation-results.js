// One evaluation's results: pairs, position bias, agreement, mean scores and verdicts.
import { fmt } from './chart.js';
import { $, el, table } from './dom.js';
import {
  intervalBar,
  modelCell,
  OUTCOMES,
  pct,
  shortModel,
  VERDICT_LIMIT,
  visible,
} from './evaluation-views.js';
import { isCurrent } from './session.js';

function waiting(view) {
  if (view.status === 'failed') return 'The evaluation failed: no result.';
  return view.status === 'running'
    ? 'The models are generating and the judge is comparing; the result appears here when it is done.'
    : 'Queued: waiting for a worker started with --evaluations.';
}

export function renderPairs(v) {
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
export function positionBiasText(bias) {
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
export function workText(work) {
  const part = (done, made, what) => `${done} of ${done + made} ${what}`;
  return (
    `${part(work.generations.reused, work.generations.generated, 'generation batches')} · ` +
    `${part(work.judgments.reused, work.judgments.judged, 'judge answers')} from earlier work`
  );
}

export function renderMeanScores(v) {
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

export function renderVerdicts(v) {
  if (!isCurrent(v.p)) return;
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
