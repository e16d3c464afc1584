// The team key (localStorage, sent only in the Authorization header), requests to /v1, the login form, errors
// shown, and the page showing now (its requests and timers end when another page replaces it).
import { $ } from './dom.js';

const KEY_STORE = 'rlhf.apiKey';

export function showError(error) {
  if (error?.name === 'AbortError' || error instanceof SignedOut) return;
  $('error').hidden = !error;
  $('error').textContent = error ? String(error.message ?? error) : '';
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
/** Thrown after a 401: the login form is showing, callers just stop. */
export class SignedOut extends Error {}

let key = localStorage.getItem(KEY_STORE);
const fragmentKey = new URLSearchParams(location.hash.slice(1)).get('key');
if (fragmentKey) {
  // local testing only: moved to localStorage, then cleared from the address bar
  key = fragmentKey;
  localStorage.setItem(KEY_STORE, key);
  history.replaceState(null, '', location.pathname + location.search);
}

export async function api(path, init = {}) {
  if (!key) throw new SignedOut('no key');
  let response;
  try {
    response = await fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${key}` } });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new Error(`The API is unreachable (${error.message}); retrying.`);
  }
  if (response.ok) return response;
  const body = await response.json().catch(() => null);
  const message = body?.error?.message ?? `HTTP ${response.status}`;
  if (response.status === 401) {
    signOut(
      `This API key was not accepted (${message}). Check that it is complete and not revoked, or ask an admin for a new one.`,
    );
    throw new SignedOut(message);
  }
  if (response.status === 429) {
    const wait = response.headers.get('retry-after');
    throw new ApiError(429, 'rate_limited', `${message}${wait ? ` (try again in ${wait} s)` : ''}`);
  }
  throw new ApiError(response.status, body?.error?.code ?? 'error', message);
}
export const getJson = async (path, init) => (await api(path, init)).json();

export function signOut(message) {
  localStorage.removeItem(KEY_STORE);
  key = null;
  stopPage();
  $('page').hidden = true;
  $('page').replaceChildren();
  $('nav').hidden = true;
  $('forget').hidden = true;
  $('error').hidden = true;
  $('login').hidden = false;
  $('login-message').hidden = !message;
  $('login-message').textContent = message ?? '';
  $('key').focus();
}
$('forget').onclick = () => signOut(null);
$('login').onsubmit = async (event) => {
  event.preventDefault();
  const entered = $('key').value.trim();
  if (!entered) return;
  $('key').value = '';
  key = entered;
  try {
    await getJson('/v1/runs?limit=1'); // a wrong key is told here, before any page is drawn
  } catch (error) {
    if (!(error instanceof SignedOut)) {
      key = null;
      $('login-message').hidden = false;
      $('login-message').textContent = String(error.message);
    }
    return;
  }
  localStorage.setItem(KEY_STORE, key);
  signedIn();
};
function signedIn() {
  $('login').hidden = true;
  $('login-message').hidden = true;
  $('page').hidden = false;
  $('nav').hidden = false;
  $('forget').hidden = false;
  showPage();
}

let showPage = () => {};
/** Shows the login form, or (with a key) the page `show` draws for the address; `show` runs again on sign-in. */
export function startSession(show) {
  showPage = show;
  if (key) signedIn();
  else signOut(null);
}
export const hasKey = () => Boolean(key);

// The page showing now: its requests and timers end when another page replaces it.
let page = null;
function stopPage() {
  if (!page) return;
  page.controller.abort();
  for (const timer of page.timers) clearInterval(timer);
  page = null;
}
export function newPage() {
  stopPage();
  page = { controller: new AbortController(), timers: [] };
  showError(null);
  return page;
}
export const isCurrent = (p) => page === p;
export function every(p, ms, fn) {
  p.timers.push(setInterval(() => isCurrent(p) && Promise.resolve(fn()).catch(showError), ms));
}
