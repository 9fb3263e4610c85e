// Page: failed jobs (#/failed: the groups; #/failed/GROUP?offset=N: one
// group's jobs, paged). Retry all / cancel all per group (with an in-page
// confirmation), retry / cancel per job. Refreshes live.
import {
  h, mount, api, enc, stat, table, pager, jobLink, queueLink, workerLink, time, actionButton,
  hashHref, toast,
} from '../core.js';

const PAGE = 25;
/** Jobs read (and retried or cancelled) per request by the bulk actions. */
const BATCH = 100;

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

/** Backtraces the user opened stay open across live refreshes. */
const openTraces = new Set();

const groupHref = (g) => `#/failed/${enc(g)}`;

/** The qless "requeue": the same job (jid, class, data) put back into its queue. */
function requeue(job) {
  return api.post(`/v1/queues/${enc(job.queue)}/jobs`, {
    jid: job.jid, klass: job.klass, data: job.data, must_exist: true,
  });
}

async function jobsOf(jids) {
  if (!jids.length) return [];
  const docs = await api.get('/v1/jobs', { jids: jids.join(',') });
  const by = new Map(docs.map((d) => [d.jid, d]));
  return jids.map((j) => by.get(j)).filter(Boolean);
}

const groupPage = (group, offset, count) => api.get(`/v1/failed/${enc(group)}`, { offset, count });

/**
 * Retries every job of a group, each into its own queue: reads the oldest
 * jobs of the group (the end of its newest-first listing) and unfails the
 * run of oldest jobs that share a queue, until the group is empty.
 */
async function retryAll(group) {
  let done = 0;
  for (;;) {
    const { total } = await groupPage(group, 0, 0);
    if (!total) return done;
    const page = await groupPage(group, Math.max(0, total - BATCH), BATCH);
    const oldest = (await jobsOf(page.jobs)).reverse();
    if (!oldest.length) return done;
    const queue = oldest[0].queue;
    let run = 0;
    while (run < oldest.length && oldest[run].queue === queue) run++;
    const r = await api.post(`/v1/failed/${enc(group)}/unfail`, { queue, count: run });
    if (!r.unfailed) return done;
    done += r.unfailed;
  }
}

/** Cancels every job of a group, a page at a time, until it is empty. */
async function cancelAll(group) {
  let done = 0;
  for (;;) {
    const page = await groupPage(group, 0, BATCH);
    if (!page.jobs.length) return done;
    const res = await api.del(`/v1/jobs?jids=${page.jobs.map(enc).join(',')}`);
    if (!res.cancelled.length) throw new Error(`could not cancel jobs of group ${group}`);
    done += res.cancelled.length;
  }
}

function bulkActions(group, count, ctx, after) {
  return h('div', { class: 'actions' },
    actionButton('Retry all', () => retryAll(group), {
      name: 'retry-all', class: 'primary',
      confirm: `Retry all ${count} failed job${count === 1 ? '' : 's'} of group "${group}"? Each goes back to its queue.`,
      done: (n) => `${n} job${n === 1 ? '' : 's'} of ${group} retried`, after: after || ctx.refresh,
    }),
    actionButton('Cancel all', () => cancelAll(group), {
      name: 'cancel-all', class: 'danger',
      confirm: `Cancel all ${count} failed job${count === 1 ? '' : 's'} of group "${group}"? They are deleted with their history.`,
      done: (n) => `${n} job${n === 1 ? '' : 's'} of ${group} cancelled`, after: after || ctx.refresh,
    }));
}

// ----------------------------------------------------------------- groups

async function groupsPage(root, ctx) {
  const groups = Object.entries(await api.get('/v1/failed')).map(([group, count]) => ({ group, count }))
    .sort((a, b) => b.count - a.count || a.group.localeCompare(b.group));
  const total = groups.reduce((n, g) => n + g.count, 0);
  const max = Math.max(1, ...groups.map((g) => g.count));
  const cols = [
    { title: 'Group', cell: (g) => h('a', { href: groupHref(g.group), class: 'group' }, g.group) },
    { title: 'Jobs', class: 'num', cell: (g) => h('span', { 'data-col': 'count' }, String(g.count)) },
    { title: '', class: 'bar-cell', cell: (g) => { const b = h('span', { class: 'bar-inline' }); b.style.width = `${Math.max(2, (g.count / max) * 100)}%`; return b; } },
    { title: 'Actions', cell: (g) => bulkActions(g.group, g.count, ctx) },
  ];
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Failed jobs')),
    h('div', { class: 'cards' },
      stat('Failed jobs', total, total ? 'bad' : 'ok'),
      stat('Groups', groups.length)),
    table(cols, groups, { key: (g) => g.group, class: 'groups', empty: 'No failed jobs. All good.' }));
}

// ------------------------------------------------------------- one group

function messageCell(job) {
  const text = String((job.failure && job.failure.message) || '');
  const i = text.indexOf('\n');
  const line = i < 0 ? text : text.slice(0, i);
  const rest = i < 0 ? '' : text.slice(i + 1);
  return h('div', { class: 'message-cell' },
    h('div', { class: 'message' }, line || '—'),
    rest ? h('details', {
      open: openTraces.has(job.jid),
      on: { toggle: (ev) => { if (ev.target.open) openTraces.add(job.jid); else openTraces.delete(job.jid); } },
    }, h('summary', 'backtrace'), h('pre', { class: 'backtrace' }, rest)) : null);
}

async function onePage(root, group, query, ctx) {
  const offset = Math.max(0, parseInt(query.get('offset') || '0', 10) || 0);
  const page = await groupPage(group, offset, PAGE);
  const jobs = await jobsOf(page.jobs);
  const cols = [
    { title: 'Job', cell: (j) => jobLink(j.jid) },
    { title: 'Class', cell: (j) => h('span', { class: 'klass' }, j.klass) },
    { title: 'Queue', cell: (j) => queueLink(j.queue) },
    { title: 'Failed at', cell: (j) => time(j.failure && j.failure.when) },
    { title: 'Worker', cell: (j) => (j.failure && j.failure.worker ? workerLink(j.failure.worker) : '—') },
    { title: 'Message', class: 'wide', cell: messageCell },
    { title: '', cell: (j) => h('div', { class: 'actions row-actions' },
      actionButton('Retry', () => requeue(j), { name: 'retry', done: `Job ${j.jid} retried`, after: ctx.refresh }),
      actionButton('Cancel', () => api.del(`/v1/jobs/${enc(j.jid)}`), {
        name: 'cancel', confirm: `Cancel job ${j.jid}?`, done: `Job ${j.jid} cancelled`, after: ctx.refresh,
      })) },
  ];
  mount(root,
    h('div', { class: 'page-head' },
      h('h1', h('a', { href: '#/failed' }, 'Failed'), ' / ', h('span', { class: 'name' }, group)),
      h('span', { class: 'muted', 'data-total': page.total }, `${page.total} job${page.total === 1 ? '' : 's'}`),
      page.total ? bulkActions(group, page.total, ctx) : null),
    table(cols, jobs, { key: (j) => j.jid, class: 'jobs failed-jobs', empty: 'No failed jobs in this group.' }),
    pager({ offset, limit: PAGE, total: page.total, shown: page.jobs.length, href: (o) => hashHref(groupHref(group), { offset: o }) }));
  if (!page.jobs.length && offset > 0) toast('This page is past the end of the group.', 'info');
}

export default async function render(root, params, query, ctx) {
  liveOnce(ctx, ctx.refresh);
  if (params.group === undefined) {
    ctx.setTitle('Failed');
    return groupsPage(root, ctx);
  }
  ctx.setTitle(`Failed: ${params.group}`);
  return onePage(root, params.group, query, ctx);
}
