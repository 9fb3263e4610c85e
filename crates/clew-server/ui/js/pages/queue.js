// Page: one queue (#/queues/NAME?state=waiting&offset=0&date=YYYY-MM-DD).
// Tabs per state (paged listings: only one page of job ids is read, then
// those jobs), pause / resume, and the day's wait / run statistics with
// their histograms. Refreshes live.
import {
  h, mount, api, enc, stat, table, pager, tabs, badge, jobLink, tagLink, workerLink, time,
  actionButton, barChart, fmtDur, hashHref, toast,
} from '../core.js';

const PAGE = 25;
const STATES = ['waiting', 'scheduled', 'running', 'stalled', 'depends', 'throttled', 'recurring'];

// Live refresh, registered once per visit of the page (render runs again
// on each refresh with the same ctx). The SSE stream carries qless's
// events, but not every change has one (a pop of an untracked job, a lock
// expiring, a scheduled job coming due), so the page also polls every
// POLL_MS while it is shown, until the route changes.
const POLL_MS = 5000;
const live = new WeakSet();
function liveOnce(ctx, fn) {
  if (live.has(ctx)) return;
  live.add(ctx);
  ctx.onLive(fn);
  const timer = setInterval(() => { if (!document.hidden) fn(); }, POLL_MS);
  window.addEventListener('hashchange', () => clearInterval(timer), { once: true });
}

/** The last history entry of a kind (`put`, `popped`, ...), or null. */
function lastEntry(job, what) {
  const hist = job.history || [];
  for (let i = hist.length - 1; i >= 0; i--) if (hist[i].what === what) return hist[i];
  return null;
}

const tagList = (tags) => (tags && tags.length ? tags.map(tagLink) : h('span', { class: 'muted' }, '—'));

/** The columns of a job listing for a state. */
function jobColumns(state) {
  const cols = [
    { title: 'Job', cell: (j) => jobLink(j.jid) },
    { title: 'Class', cell: (j) => h('span', { class: 'klass' }, j.klass) },
    { title: 'Priority', class: 'num', cell: (j) => String(j.priority) },
    { title: 'Tags', cell: (j) => tagList(j.tags) },
    { title: 'Put', cell: (j) => { const e = lastEntry(j, 'put'); return e ? time(e.when) : '—'; } },
  ];
  if (state === 'running' || state === 'stalled') {
    cols.push(
      { title: 'Popped', cell: (j) => { const e = lastEntry(j, 'popped'); return e ? time(e.when) : '—'; } },
      { title: 'Worker', cell: (j) => (j.worker ? workerLink(j.worker) : '—') },
      { title: 'Lock expires', cell: (j) => time(j.expires) });
  }
  if (state === 'throttled') {
    cols.push({ title: 'Held back by', cell: (j) => { const e = lastEntry(j, 'throttled'); return e ? h('a', { href: '#/throttles' }, e.throttle) : '—'; } });
  }
  if (state === 'depends') {
    cols.push({ title: 'Waiting on', cell: (j) => j.dependencies.map((d) => [jobLink(d), ' ']) });
  }
  cols.push({ title: 'Retries left', class: 'num', cell: (j) => `${j.remaining} / ${j.retries}` });
  return cols;
}

const recurColumns = [
  { title: 'Template', cell: (r) => jobLink(r.jid) },
  { title: 'Class', cell: (r) => h('span', { class: 'klass' }, r.klass) },
  { title: 'Every', cell: (r) => (r.cron ? `cron ${r.cron} (${r.timezone})` : fmtDur(r.interval)) },
  { title: 'Next run', cell: (r) => time(r.next_run) },
  { title: 'Priority', class: 'num', cell: (r) => String(r.priority) },
  { title: 'Tags', cell: (r) => tagList(r.tags) },
  { title: 'Spawned', class: 'num', cell: (r) => String(r.count) },
];

/** Reads the jobs of one page of ids, in the listing's order. */
async function jobsOf(jids) {
  if (!jids.length) return [];
  const docs = await api.get('/v1/jobs', { jids: jids.join(',') });
  const by = new Map(docs.map((d) => [d.jid, d]));
  return jids.map((j) => by.get(j)).filter(Boolean);
}

async function recurOf(jids) {
  const docs = await Promise.all(jids.map((j) => api.get(`/v1/recurring/${enc(j)}`).catch(() => null)));
  return docs.filter(Boolean);
}

// ------------------------------------------------------------------ stats

/** Histogram bucket labels: 0s–59s, 1m–59m, 1h–23h, 1d–6d. */
function bucketLabel(i) {
  if (i < 60) return `${i}s`;
  if (i < 119) return `${i - 59}m`;
  if (i < 142) return `${i - 118}h`;
  return `${i - 141}d`;
}

function histogram(hist, title) {
  let last = 0;
  hist.forEach((v, i) => { if (v) last = i; });
  const upto = Math.max(last + 1, Math.min(hist.length, 10));
  return barChart(hist.slice(0, upto).map((v, i) => ({ label: bucketLabel(i), value: v })), { title, height: 140 });
}

function timing(name, t) {
  return h('div', { class: 'timing', 'data-timing': name },
    h('div', { class: 'cards' },
      stat(`${name} count`, t.count),
      stat(`${name} mean`, t.count ? fmtDur(t.mean) : '—'),
      stat(`${name} std-dev`, t.count ? fmtDur(t.std) : '—')),
    histogram(t.histogram, `${name} time histogram`));
}

/** "YYYY-MM-DD" of a time in seconds (UTC). */
const dayOf = (secs) => new Date(secs * 1000).toISOString().slice(0, 10);

async function statsPanel(queue, day, go) {
  const noon = Date.parse(`${day}T12:00:00Z`) / 1000;
  const st = await api.get(`/v1/queues/${enc(queue)}/stats`, { date: noon });
  const picker = h('input', { type: 'date', name: 'date', value: day, 'aria-label': 'Day' });
  picker.addEventListener('change', () => { if (picker.value) go({ date: picker.value }); });
  return h('section', { class: 'panel stats', 'data-day': day },
    h('div', { class: 'panel-head' },
      h('h2', 'Statistics for ', day, ' (UTC)'),
      h('label', { class: 'toolbar' }, 'Day ', picker)),
    h('div', { class: 'cards' },
      stat('Failed', st.failed, st.failed ? 'bad' : ''),
      stat('Failures', st.failures, st.failures ? 'bad' : ''),
      stat('Retries', st.retries, st.retries ? 'warn' : '')),
    h('div', { class: 'grid2' }, timing('Wait', st.wait), timing('Run', st.run)));
}

// ------------------------------------------------------------------- page

export default async function render(root, params, query, ctx) {
  const queue = params.queue;
  ctx.setTitle(`Queue ${queue}`);
  liveOnce(ctx, () => {
    const a = document.activeElement;
    if (a && a.matches('input, select, textarea')) return;
    ctx.refresh();
  });
  const state = STATES.includes(query.get('state')) ? query.get('state') : 'waiting';
  const offset = Math.max(0, parseInt(query.get('offset') || '0', 10) || 0);
  const day = /^\d{4}-\d{2}-\d{2}$/.test(query.get('date') || '') ? query.get('date') : null;
  const base = `#/queues/${enc(queue)}`;
  const href = (q) => hashHref(base, { state, date: day, ...q });
  const go = (q) => { location.hash = href(q); };

  const counts = await api.get(`/v1/queues/${enc(queue)}`);
  const jids = await api.get(`/v1/queues/${enc(queue)}/jobs`, { state, offset, count: PAGE });
  const rows = state === 'recurring' ? await recurOf(jids) : await jobsOf(jids);
  // `throttled` is left out of the counts when there are none.
  for (const s of STATES) counts[s] = counts[s] || 0;
  const total = counts[state];

  const toggle = counts.paused
    ? actionButton('Resume', () => api.post(`/v1/queues/${enc(queue)}/unpause`), {
      name: 'resume', class: 'primary', done: `Queue ${queue} resumed`, after: ctx.refresh,
    })
    : actionButton('Pause', () => api.post(`/v1/queues/${enc(queue)}/pause`), {
      name: 'pause', done: `Queue ${queue} paused`, after: ctx.refresh,
    });

  mount(root,
    h('div', { class: 'page-head' },
      h('h1', 'Queue ', h('span', { class: 'name' }, queue)),
      counts.paused ? badge('paused') : h('span', { class: 'badge state-running' }, 'active'),
      h('div', { class: 'actions' }, toggle)),
    counts.paused ? h('p', { class: 'why' }, 'This queue is paused: workers get no jobs from it until it is resumed.') : null,
    h('div', { class: 'cards' }, STATES.map((s) => h('a', { href: hashHref(base, { state: s, date: day }), class: 'card-link' },
      stat(s, counts[s], s === 'stalled' && counts[s] ? 'warn' : '')))),
    tabs(STATES.map((s) => ({ key: s, label: `${s} (${counts[s]})`, href: hashHref(base, { state: s, date: day }) })), state),
    state === 'recurring'
      ? table(recurColumns, rows, { key: (r) => r.jid, class: 'jobs', empty: 'No recurring jobs in this queue.' })
      : table(jobColumns(state), rows, { key: (j) => j.jid, class: 'jobs', empty: `No ${state} jobs.` }),
    pager({ offset, limit: PAGE, total, shown: jids.length, href: (o) => href({ offset: o }) }),
    await statsPanel(queue, day || dayOf(Date.now() / 1000), go).catch((e) => {
      toast(`Statistics: ${e.message}`, 'error');
      return null;
    }));
}
