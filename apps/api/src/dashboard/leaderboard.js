// /dashboard/leaderboard: the team's models ranked by their evaluations.
import { $, card, el, table } from './dom.js';
import { intervalBar, modelCell, runNames } from './evaluation-views.js';
import { every, getJson, isCurrent, newPage, showError } from './session.js';

export async function leaderboardPage() {
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
    card(
      'Leaderboard',
      el('label', { className: 'controls' }, 'comparisons by ', judge),
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
    if (isCurrent(p)) renderLeaderboard(body, board, names);
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
