// Human-readable output: aligned tables, numbers, durations, progress bars, and the metrics that tell how
// each kind of stage is doing.
import type { RunView, StageView } from './client.js';

/** Columns padded to their widest cell; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** A number in few characters: 4 significant digits, integers as they are. */
export function num(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e9) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
  return String(Number(value.toPrecision(4)));
}

/** Seconds as "42 s", "3 m 05 s", "2 h 01 m". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} m`;
}

/** How long a run or stage ran (until now when it has not finished). */
export function elapsed(from: string | null, to: string | null, now = Date.now()): string {
  if (!from) return '-';
  return duration((to ? Date.parse(to) : now) - Date.parse(from));
}

/** A timestamp as "2026-12-02 01:36:21" in UTC. */
export const time = (iso: string | null): string =>
  iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '-';

/** One line at most `max` characters, newlines shown as ⏎. */
export function clip(text: string, max: number): string {
  const flat = text.replace(/\r?\n/g, '⏎');
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1))}…`;
}

export function bar(progress: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, progress)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** The metrics users watch first, per stage kind (as the trainers name them). */
export const KEY_METRICS: Readonly<Record<string, readonly string[]>> = {
  sft: ['train/loss', 'eval/loss'],
  reward_model: ['train/loss', 'eval/accuracy'],
  dpo: ['train/loss', 'rewards/accuracies', 'eval/rewards/accuracies'],
  pro: ['train/loss', 'eval/loss'],
  raft: ['reward/kept_mean', 'objective/ground_truth', 'objective/kl'],
  grpo: ['reward', 'kl'],
  ppo: ['objective/scores', 'objective/ground_truth', 'objective/kl'],
};

/** "train/loss 0.412  eval/loss 0.398" from what the stage reported so far. */
export function keyMetrics(kind: string, latest: Readonly<Record<string, number>>): string {
  return (KEY_METRICS[kind] ?? [])
    .filter((name) => latest[name] !== undefined)
    .map((name) => `${name} ${num(latest[name])}`)
    .join('  ');
}

export const steps = (stage: Pick<StageView, 'step' | 'totalSteps'>): string =>
  stage.totalSteps ? `${stage.step}/${stage.totalSteps}` : String(stage.step);

/** One line per stage: kind, bar, percent, steps, status, key metrics. */
export function stageLine(stage: StageView): string {
  const percent = `${String(Math.round(stage.progress * 100)).padStart(3)}%`;
  const metrics = keyMetrics(stage.kind, stage.latestMetrics);
  return `${stage.kind.padEnd(12)} ${bar(stage.progress)} ${percent} ${steps(stage).padEnd(11)} ${stage.status.padEnd(9)}${
    metrics ? ` ${metrics}` : ''
  }`.trimEnd();
}

/** The stages of a run as a table. */
export function stageTable(run: RunView, now = Date.now()): string {
  return table(
    ['STAGE', 'ID', 'STATUS', 'STEP', 'PROGRESS', 'TIME', 'ATTEMPTS', 'KEY METRICS'],
    run.stages.map((s) => [
      s.kind,
      s.id,
      s.status,
      steps(s),
      `${Math.round(s.progress * 100)}%`,
      elapsed(s.startedAt, s.finishedAt, now),
      String(s.attempts),
      keyMetrics(s.kind, s.latestMetrics),
    ]),
  );
}
