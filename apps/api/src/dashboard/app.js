// The dashboard: runs, one page per run (/dashboard/runs/:id), the evaluations (/dashboard/evaluations[/:id]),
// the team's leaderboard and the workers, all read from /v1 with the team key the user entered. Routes are
// client-side (the server answers every dashboard path with one shell); each page is a module of its own.
import { $ } from './dom.js';
import { evaluationPage, evaluationsPage } from './evaluations.js';
import { leaderboardPage } from './leaderboard.js';
import { runPage } from './run.js';
import { runsPage } from './runs.js';
import { hasKey, showError, startSession } from './session.js';
import { workersPage } from './workers.js';

function route() {
  if (!hasKey()) return;
  const path = location.pathname.replace(/\/+$/, '');
  for (const link of $('nav').querySelectorAll('a')) {
    link.classList.toggle('current', new URL(link.href).pathname === path);
  }
  const match = /^\/dashboard\/runs\/([^/]+)$/.exec(path);
  const evaluation = /^\/dashboard\/evaluations\/([^/]+)$/.exec(path);
  if (match) runPage(decodeURIComponent(match[1])).catch(showError);
  else if (evaluation) evaluationPage(decodeURIComponent(evaluation[1])).catch(showError);
  else if (path === '/dashboard/evaluations') evaluationsPage().catch(showError);
  else if (path === '/dashboard/leaderboard') leaderboardPage().catch(showError);
  else if (path === '/dashboard/workers') workersPage().catch(showError);
  else runsPage().catch(showError);
}
document.addEventListener('click', (event) => {
  const link = event.target.closest?.('a[data-route]');
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  if (link.href !== location.href) history.pushState(null, '', link.href);
  route();
});
window.addEventListener('popstate', route);
startSession(route);
