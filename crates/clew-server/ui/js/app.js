// clew dashboard: the router and the page frame.
//
// Routes are URL fragments (#/queues/NAME?state=failed), so the server
// serves one page and every link works without a round trip. Each page is a
// module in ./pages/ whose default export is
//   async function render(root, params, query, ctx)
// where root is the (emptied) <main>, params the route's named parts,
// query a URLSearchParams of the fragment's query, and ctx
//   { refresh(): re-render this page, onLive(fn): call fn when jobs change
//     (stopped when the page is left), setTitle(text) }.
// A page that wants live updates calls ctx.onLive(ctx.refresh) (or a finer
// function); the frame throttles refreshes.

import { h, mount, api, session, loadSession, startLive, onLive, errorBox, toast } from './core.js';

const ROUTES = [
  ['/', 'overview'],
  ['/queues/:queue', 'queue'],
  ['/jobs/:jid', 'job'],
  ['/failed', 'failed'],
  ['/failed/:group', 'failed'],
  ['/workers', 'workers'],
  ['/workers/:worker', 'workers'],
  ['/tracked', 'tracked'],
  ['/tags', 'tags'],
  ['/tags/:tag', 'tags'],
  ['/recurring', 'recurring'],
  ['/batches', 'batches'],
  ['/batches/:id', 'batches'],
  ['/throttles', 'throttles'],
  ['/config', 'config'],
  ['/events', 'events'],
  ['/login', 'login'],
];

const NAV = [
  ['#/', 'Overview', 'overview'],
  ['#/failed', 'Failed', 'failed'],
  ['#/workers', 'Workers', 'workers'],
  ['#/tracked', 'Tracked', 'tracked'],
  ['#/tags', 'Tags', 'tags'],
  ['#/recurring', 'Recurring', 'recurring'],
  ['#/batches', 'Batches', 'batches'],
  ['#/throttles', 'Throttles', 'throttles'],
  ['#/events', 'Events', 'events'],
  ['#/config', 'Config', 'config'],
];

function match(path) {
  for (const [pattern, page] of ROUTES) {
    const want = pattern.split('/');
    const got = path.split('/');
    if (want.length !== got.length) continue;
    const params = {};
    let ok = true;
    want.forEach((w, i) => {
      if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(got[i]);
      else if (w !== got[i]) ok = false;
    });
    if (ok && want.every((w, i) => !w.startsWith(':') || got[i] !== '')) return { page, params };
  }
  return null;
}

let cleanups = [];
let generation = 0;

function leavePage() {
  for (const c of cleanups) c();
  cleanups = [];
}

async function route() {
  const my = ++generation;
  leavePage();
  const hash = location.hash || '#/';
  const [path, q] = hash.slice(1).split('?');
  const query = new URLSearchParams(q || '');
  const root = document.getElementById('main');
  const found = match(path || '/');
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', !!found && a.dataset.page === found.page);
  }
  if (!found) {
    mount(root, h('h1', 'Not found'), h('p', 'No page at ', h('code', hash), '.'));
    return;
  }
  if (session.authRequired && !session.loggedIn && found.page !== 'login') {
    location.hash = '#/login';
    return;
  }
  const liveFns = new Set();
  // Refreshes are spaced by at least three times the last render's time
  // (and a second), so a busy server is not asked for slow pages (the
  // overview reads the last hour of the event log) back to back.
  let lastTook = 0;
  let lastDone = 0;
  let pending = null;
  const ctx = {
    refresh: () => {
      if (my !== generation || pending) return;
      const wait = Math.max(0, lastDone + Math.max(1000, 3 * lastTook) - Date.now());
      pending = setTimeout(() => { pending = null; if (my === generation) render(); }, wait);
    },
    // Registering the same function again (a page that calls
    // ctx.onLive(ctx.refresh) on every render) adds no second listener.
    onLive: (fn) => {
      if (liveFns.has(fn)) return;
      liveFns.add(fn);
      cleanups.push(onLive(() => { if (my === generation) fn(); }));
    },
    setTitle: (t) => { document.title = `${t} · clew`; },
  };
  let busy = false;
  let again = false;
  async function render() {
    if (busy) { again = true; return; }
    busy = true;
    const started = Date.now();
    try {
      const mod = found.page === 'login' ? { default: loginPage } : await import(`./pages/${found.page}.js`);
      if (my !== generation) return;
      const fresh = h('div', { class: 'page', 'data-page': found.page });
      await mod.default(fresh, found.params, query, ctx);
      if (my !== generation) return;
      mount(root, fresh);
    } catch (e) {
      if (my === generation) mount(root, errorBox(e));
    } finally {
      lastDone = Date.now();
      lastTook = lastDone - started;
      busy = false;
      if (again && my === generation) { again = false; render(); }
    }
  }
  ctx.setTitle(found.page);
  await render();
}

async function loginPage(root) {
  const input = h('input', { type: 'password', name: 'token', placeholder: 'API token', 'aria-label': 'API token', autocomplete: 'current-password' });
  const form = h('form', { class: 'login', 'data-form': 'login' }, h('h1', 'Sign in'),
    h('p', 'This server requires its API token.'), input, h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await fetch('/ui/login', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token: input.value }),
      });
      if (!r.ok) throw new Error((await r.json()).error.message);
      await loadSession();
      frame();
      location.hash = '#/';
    } catch (e) {
      toast(`Sign in: ${e.message}`, 'error');
    }
  });
  mount(root, form);
}

function frame() {
  mount(document.getElementById('nav'), NAV.map(([href, label, page]) => h('a', { href, 'data-page': page }, label)));
  const auth = document.getElementById('auth');
  if (session.authRequired && session.loggedIn) {
    mount(auth, h('button', { class: 'link', 'data-action': 'logout', on: { click: async () => {
      await api.post('/ui/logout');
      session.loggedIn = false;
      session.csrf = null;
      location.hash = '#/login';
    } } }, 'Sign out'));
  } else {
    mount(auth);
  }
  if (!session.authRequired || session.loggedIn) startLive();
}

function jumpBox() {
  const form = document.getElementById('jump');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = document.getElementById('jump-input').value.trim();
    if (!v) return;
    try {
      await api.get(`/v1/jobs/${encodeURIComponent(v)}`);
      location.hash = `#/jobs/${encodeURIComponent(v)}`;
    } catch {
      location.hash = `#/tags/${encodeURIComponent(v)}`;
    }
  });
}

// The namespace this server serves (GET /healthz), beside the brand.
async function showNamespace() {
  try {
    const r = await fetch('/healthz', { credentials: 'same-origin' });
    const { namespace } = await r.json();
    if (namespace) document.getElementById('namespace').textContent = `namespace ${namespace}`;
  } catch {
    // The header simply stays empty.
  }
}

async function start() {
  await loadSession();
  frame();
  showNamespace();
  jumpBox();
  window.addEventListener('hashchange', route);
  await route();
}

start();
