// What every dashboard page draws with: stage names and key metrics, formatting, elements built without
// parsing HTML, tables, run links and stage bars.

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
export const KEY_METRICS = {
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
export const SAMPLE_PAGE = 50;
export const POLL_MS = 2000;

export const $ = (id) => document.getElementById(id);
export const label = (kind) => STAGE_LABELS[kind] ?? kind;
export const finished = (status) => ['succeeded', 'failed', 'cancelled'].includes(status);
// A cancelled run's running stage stops only at its next check: follow the run until no stage runs.
export const settled = (run) => finished(run.status) && !run.stages.some((s) => s.status === 'running');
export const when = (time) => (time ? new Date(time).toLocaleString() : '–');
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function duration(from, to) {
  if (!from) return '–';
  const seconds = Math.max(0, Math.round(((to ? new Date(to) : new Date()) - new Date(from)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}
export function size(bytes) {
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  return bytes < 1024 ** 3
    ? `${(bytes / 1024 ** 2).toFixed(1)} MiB`
    : `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

// Builds an element; strings become text nodes, so nothing from the API is ever parsed as HTML.
export function el(tag, props, ...children) {
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
// A page's card: its heading (in a row with a control beside it, when there is one), then the children.
export function card(title, control, ...children) {
  const heading = el('h2', {}, title);
  return el(
    'section',
    { className: 'card' },
    control ? el('div', { className: 'row' }, heading, control) : heading,
    ...children,
  );
}
export const badge = (status, id) =>
  el('span', { className: `badge ${status}`, ...(id ? { id } : {}) }, status);
// A table in a box of its own that scrolls sideways on a narrow screen, so the page itself never does.
export function table(headings, rows, props = {}) {
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

export const runLink = (run) =>
  el('a', { href: `/dashboard/runs/${run.id}`, dataset: { route: '' } }, run.name ?? run.id);

export function stageBar(stage, labelled = true) {
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

export function notFound(id, message, what = 'run', back = '/dashboard') {
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
