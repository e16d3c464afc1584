import { describe, expect, test } from 'vitest';
import type { RunView } from './client.js';
import { progressRenderer, runSummary } from './watch.js';

const stage = (kind: string, status: string, step: number, totalSteps: number) => ({
  id: `${kind}-id`,
  kind,
  status,
  step,
  totalSteps,
  progress: step / totalSteps,
  latestMetrics: kind === 'sft' ? { 'train/loss': 1.25, 'eval/loss': 1.5 } : {},
  attempts: 1,
  startedAt: '2026-12-02T01:00:00.000Z',
  finishedAt: status === 'running' ? null : '2026-12-02T01:00:12.000Z',
  error: null,
});
const runOf = (stages: ReturnType<typeof stage>[], status = 'running') =>
  ({
    id: 'run-1',
    status,
    stages,
    error: null,
    startedAt: '2026-12-02T01:00:00.000Z',
    finishedAt: '2026-12-02T01:00:42.000Z',
  }) as unknown as RunView;

describe('progress lines', () => {
  test('a terminal gets the stage lines redrawn in place, only when they change', () => {
    let out = '';
    const render = progressRenderer({ isTTY: true, write: (text: string) => (out += text) });
    render(runOf([stage('sft', 'running', 5, 10), stage('ppo', 'pending', 0, 4)]));
    render(runOf([stage('sft', 'running', 5, 10), stage('ppo', 'pending', 0, 4)]));
    render(runOf([stage('sft', 'succeeded', 10, 10), stage('ppo', 'running', 1, 4)]));
    const frames = out.split('\x1b[2A\x1b[0J');
    expect(frames).toHaveLength(2);
    expect(frames[0]).toBe(
      'sft          [############------------]  50% 5/10        running   train/loss 1.25  eval/loss 1.5\n' +
        'ppo          [------------------------]   0% 0/4         pending\n',
    );
    expect(frames[1]).toMatch(/^sft +\[#{24}\] 100% 10\/10 +succeeded/);
  });

  test('elsewhere a line per stage when its status or tenth of progress changes', () => {
    let out = '';
    const render = progressRenderer({ write: (text: string) => (out += text) });
    for (const step of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      render(runOf([stage('sft', 'running', step * 10, 100)]));
    render(runOf([stage('sft', 'succeeded', 100, 100)]));
    expect(out.split('\n').filter(Boolean)).toHaveLength(12);
    expect(out).not.toContain('\x1b');
  });

  test('the summary names the run, its status and time, and each stage', () => {
    const summary = runSummary(runOf([stage('sft', 'succeeded', 10, 10)], 'succeeded'));
    expect(summary).toMatch(/^run run-1 succeeded in 42 s\nSTAGE +ID +STATUS/);
    expect(summary).toMatch(
      /\nsft +sft-id +succeeded +10\/10 +100% +12 s +1 +train\/loss 1.25 {2}eval\/loss 1.5\n$/,
    );
  });
});
