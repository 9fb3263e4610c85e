// Page: workers (#/workers: every known worker with its running and
// stalled job counts and when it was last seen; #/workers/NAME: one
// worker's running and stalled jobs, each list paged). A worker can be
// removed (forgotten; its jobs are not touched) after an in-page
// confirmation. Refreshes live.
import {
  h, mount, api, enc, stat, table, pager, jobLink, queueLink, workerLink, tagLink, time, fmtAgo,
  actionButton, hashHref, badge,
} from '../core.js';

const PAGE = 25;

// Live refresh, registered once per visit of the page (render runs again
// on each refresh with the same ctx). Not every change has an SSE event (a
// pop of an untracked job, a lock expiring), so the page also polls every
// POLL_MS while it is shown, until the route changes.
const POLL_MS = 5000;
const live = new WeakSet();
function liveOnce(ctx, fn) {
  if (live.has(ctx)) return;
  live.add(ctx);
  // Not while the user types in one of the page's forms.
  const quiet = () => { if (!document.querySelector('#main form :focus')) fn(); };
  ctx.onLive(quiet);
  const timer = setInterval(() => { if (!document.hidden) quiet(); }, POLL_MS);
  window.addEventListener('hashchange', () => clearInterval(timer), { once: true });
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
const offsetOf = (query, key) => Math.max(0, parseInt(query.get(key) || '0', 10) || 0);

/** "time (3 min ago)" for a last-seen figure. */
function seen(secs) {
  if (!secs) return h('span', { class: 'muted' }, 'never');
  return h('span', { class: 'seen' }, time(secs), h('span', { class: 'muted ago' }, ` ${fmtAgo(secs)}`));
}

function removeButton(name, after, cls = 'quiet-danger') {
  return actionButton('Remove', () => api.del(`/v1/workers/${enc(name)}`), {
    name: 'remove', class: cls,
    confirm: `Remove worker "${name}"? It is forgotten until it next asks for work; its jobs are not touched.`,
    done: `Worker ${name} removed`, after,
  });
}

// ------------------------------------------------------------ the list

async function listPage(root, ctx) {
  const workers = await api.get('/v1/workers');
  const running = workers.reduce((n, w) => n + w.jobs, 0);
  const stalled = workers.reduce((n, w) => n + w.stalled, 0);
  const cols = [
    { title: 'Worker', cell: (w) => h('span', { class: 'wname' }, workerLink(w.name)) },
    { title: 'Running', class: 'num', cell: (w) => h('span', { 'data-col': 'jobs', class: w.jobs ? null : 'zero' }, String(w.jobs)) },
    { title: 'Stalled', class: 'num', cell: (w) => h('span', { 'data-col': 'stalled', class: w.stalled ? 'bad' : 'zero' }, String(w.stalled)) },
    { title: 'Last seen', cell: (w) => h('span', { 'data-col': 'last_seen' }, seen(w.last_seen)) },
    { title: '', class: 'row-end', cell: (w) => h('div', { class: 'actions row-actions' }, removeButton(w.name, ctx.refresh)) },
  ];
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Workers')),
    h('div', { class: 'cards' },
      stat('Workers', workers.length),
      stat('Running jobs', running, running ? 'ok' : null),
      stat('Stalled jobs', stalled, stalled ? 'bad' : null)),
    table(cols, workers, {
      key: (w) => w.name, class: 'workers',
      empty: 'No workers known. A worker appears here when it first asks for work.',
    }));
}

// ------------------------------------------------------------ one worker

async function jobsOf(jids) {
  if (!jids.length) return [];
  const docs = await api.get('/v1/jobs', { jids: jids.join(',') });
  const by = new Map(docs.map((d) => [d.jid, d]));
  return jids.map((j) => by.get(j) || { jid: j, gone: true });
}

/** The state to show: a running job whose lock expired is stalled. */
const stateOf = (j, stalled) => (stalled && j.state === 'running' ? 'stalled' : j.state);

function jobsTable(jobs, cls, empty) {
  const stalled = cls === 'stalled';
  const cols = [
    { title: 'Job', cell: (j) => jobLink(j.jid) },
    { title: 'Class', cell: (j) => (j.gone ? h('span', { class: 'muted' }, 'gone') : h('span', { class: 'klass' }, j.klass)) },
    { title: 'Queue', cell: (j) => (j.queue ? queueLink(j.queue) : '—') },
    { title: 'State', cell: (j) => (j.state ? badge(stateOf(j, stalled)) : '—') },
    { title: 'Priority', class: 'num', cell: (j) => (j.gone ? '—' : String(j.priority)) },
    { title: stalled ? 'Lock expired' : 'Lock expires', cell: (j) => (j.expires ? h('span', { title: fmtAgo(j.expires) }, time(j.expires)) : '—') },
    { title: 'Tags', cell: (j) => (j.tags && j.tags.length ? j.tags.map(tagLink) : h('span', { class: 'muted' }, '—')) },
  ];
  return table(cols, jobs, { key: (j) => j.jid, class: `jobs ${cls}`, empty });
}

/** One paged list of the worker's jobs (`key` is its offset parameter). */
async function jobsPanel(title, jids, key, name, query, empty) {
  const offset = offsetOf(query, key);
  const shown = jids.slice(offset, offset + PAGE);
  const jobs = await jobsOf(shown);
  const href = (o) => {
    const q = Object.fromEntries(query.entries());
    q[key] = o || null;
    return hashHref(`#/workers/${enc(name)}`, q);
  };
  return h('section', { class: `panel worker-${key}` },
    h('div', { class: 'panel-head' }, h('h2', title), h('span', { class: 'muted', 'data-total': key }, plural(jids.length, 'job'))),
    jobsTable(jobs, key, empty),
    jids.length > PAGE ? pager({ offset, limit: PAGE, total: jids.length, shown: shown.length, href }) : null);
}

async function workerPage(root, name, query, ctx) {
  const w = await api.get(`/v1/workers/${enc(name)}`);
  const known = w.last_seen !== undefined && w.last_seen !== null;
  const [running, stalled] = await Promise.all([
    jobsPanel('Running jobs', w.jobs, 'running', name, query, 'No job is running on this worker.'),
    jobsPanel('Stalled jobs', w.stalled, 'stalled', name, query, 'No stalled jobs: every lock of this worker is live.'),
  ]);
  mount(root,
    h('div', { class: 'page-head' },
      h('h1', h('a', { href: '#/workers' }, 'Workers'), ' / ', h('span', { class: 'name' }, name)),
      known ? h('div', { class: 'actions' }, removeButton(name, () => { location.hash = '#/workers'; }, 'danger')) : null),
    known ? null : h('div', { class: 'why' }, 'This worker is not known (never seen, or removed).'),
    h('div', { class: 'cards' },
      stat('Running', w.jobs.length, w.jobs.length ? 'ok' : null),
      stat('Stalled', w.stalled.length, w.stalled.length ? 'bad' : null),
      h('div', { class: 'stat time-stat', 'data-stat': 'Last seen' },
        h('div', { class: 'value small' }, known ? time(w.last_seen) : '—'),
        h('div', { class: 'label' }, known ? `Last seen · ${fmtAgo(w.last_seen)}` : 'Last seen'))),
    running, stalled);
}

export default async function render(root, params, query, ctx) {
  liveOnce(ctx, ctx.refresh);
  if (params.worker === undefined) {
    ctx.setTitle('Workers');
    return listPage(root, ctx);
  }
  ctx.setTitle(`Worker ${params.worker}`);
  return workerPage(root, params.worker, query, ctx);
}
