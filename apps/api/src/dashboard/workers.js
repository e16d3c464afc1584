// /dashboard/workers: the workers seen and what each runs.
import { $, badge, card, duration, el, label, runLink, table } from './dom.js';
import { every, getJson, isCurrent, newPage } from './session.js';

export async function workersPage() {
  const p = newPage();
  const body = el('div', { id: 'workers' }, el('p', { className: 'muted' }, 'Loading…'));
  $('page').replaceChildren(
    card(
      'Workers',
      null,
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
    if (!isCurrent(p)) return;
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
