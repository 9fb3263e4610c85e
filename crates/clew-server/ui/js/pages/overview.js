// Page: overview (#/). Every queue with its counts by state, the last
// hour's throughput and failure rate, workers online, and charts of wait
// and run time over the last hour. Refreshes live.
import { h, mount, api, enc, stat, table, queueLink, badge, lineChart, fmtDur, hashHref } from '../core.js';

/** The charts' bucket width (seconds; the window is the server's last hour). */
const INTERVAL = 120;

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

const pct = (r) => (r === null || r === undefined ? '—' : `${(r * 100).toFixed(r > 0 && r < 0.1 ? 1 : 0)}%`);

/** A count cell that links to the queue's tab for that state (muted when 0). */
function countCell(q, state) {
  const n = q[state];
  return h('a', {
    href: hashHref(`#/queues/${enc(q.name)}`, { state }),
    class: n ? 'count' : 'count zero',
    'data-col': state,
  }, String(n));
}

/** Failed jobs now (the server leaves it null when there are too many to count per queue). */
function failedCell(q) {
  if (q.failed === null || q.failed === undefined) {
    return h('a', { href: '#/failed', class: 'count', 'data-col': 'failed', title: 'too many failed jobs to count per queue' }, '—');
  }
  return h('a', { href: '#/failed', class: q.failed ? 'count bad' : 'count zero', 'data-col': 'failed' }, String(q.failed));
}

function queueTable(queues) {
  const cols = [
    { title: 'Queue', cell: (q) => h('span', { class: 'qname' }, queueLink(q.name), q.paused ? [' ', badge('paused')] : null) },
    ...['waiting', 'scheduled', 'running', 'stalled', 'depends', 'recurring'].map((s) => ({
      title: s, class: 'num', cell: (q) => countCell(q, s),
    })),
    { title: 'failed', class: 'num', cell: failedCell },
    { title: 'Done (1 h)', class: 'num', cell: (q) => h('span', { 'data-col': 'completed' }, String(q.last_hour.completed)) },
    { title: 'Failed (1 h)', class: 'num', cell: (q) => h('span', { 'data-col': 'failed_1h', class: q.last_hour.failed ? 'bad' : null }, String(q.last_hour.failed)) },
    { title: 'Failure rate', class: 'num', cell: (q) => h('span', { 'data-col': 'failure_rate' }, pct(q.last_hour.failure_rate)) },
  ];
  return table(cols, queues, { key: (q) => q.name, class: 'queues', empty: 'No queues yet: put a job to create one.' });
}

function cards(ov) {
  const t = ov.totals;
  const lh = t.last_hour;
  const perHour = (lh.completed + lh.failed) / (ov.window / 3600);
  const rate = perHour < 120 ? `${Math.round(perHour)}/h` : `${Math.round(perHour / 60)}/min`;
  return h('div', { class: 'cards' },
    stat('Queues', t.queues),
    stat('Waiting', t.waiting),
    stat('Scheduled', t.scheduled),
    stat('Running', t.running, 'ok'),
    stat('Stalled', t.stalled, t.stalled ? 'warn' : ''),
    stat('Depends', t.depends),
    stat('Recurring', t.recurring),
    h('a', { href: '#/failed', class: 'card-link' }, stat('Failed', t.failed, t.failed ? 'bad' : '')),
    h('a', { href: '#/workers', class: 'card-link' }, stat('Workers online', ov.workers.count)),
    stat('Completed (1 h)', lh.completed, 'ok'),
    stat('Failed (1 h)', lh.failed, lh.failed ? 'bad' : ''),
    stat('Failure rate (1 h)', pct(lh.failure_rate), lh.failure_rate ? 'bad' : ''),
    stat('Throughput (1 h)', rate));
}

/** Wait and run time charts (p50 / p95 per bucket) from /v1/events/series. */
function charts(series) {
  const points = (series.series[0] && series.series[0].points) || [];
  const line = (field, q) => points.map((p) => [p.t, p[field] ? p[field][q] : null]);
  const opts = (title) => ({ title, yFormat: fmtDur, height: 180 });
  return h('div', { class: 'grid2' },
    lineChart([
      { name: 'p50', points: line('time_in_queue', 'p50') },
      { name: 'p95', points: line('time_in_queue', 'p95') },
    ], opts('Wait time (time in queue), last hour')),
    lineChart([
      { name: 'p50', points: line('time_to_perform', 'p50') },
      { name: 'p95', points: line('time_to_perform', 'p95') },
    ], opts('Run time (time to perform), last hour')));
}

export default async function render(root, params, query, ctx) {
  ctx.setTitle('Overview');
  liveOnce(ctx, ctx.refresh);
  // One request, one pass over the last hour of the log: counts, outcomes
  // and the wait/run series together.
  const ov = await api.get('/v1/overview', { interval: INTERVAL });
  const series = ov.series;
  const paused = ov.queues.filter((q) => q.paused).length;
  mount(root,
    h('div', { class: 'page-head' },
      h('h1', 'Overview'),
      h('span', { class: 'muted' }, `${ov.queues.length} queue${ov.queues.length === 1 ? '' : 's'}`,
        paused ? `, ${paused} paused` : '', ` · ${ov.workers.count} worker${ov.workers.count === 1 ? '' : 's'} online`)),
    cards(ov),
    h('h2', 'Queues'),
    queueTable(ov.queues),
    h('h2', 'Wait and run times'),
    charts(series));
}
