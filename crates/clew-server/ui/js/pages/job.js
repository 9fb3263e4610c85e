// Page: one job (#/jobs/JID). Its facts, data, failure, the full history
// as a timeline (with host and process from the lifecycle events), the
// lifecycle events themselves, and "why is this job not running?" in plain
// words. Actions: retry, cancel, move, priority, track / untrack, tag /
// untag; after each the page shows the job's new state.
import {
  h, mount, api, enc, badge, jobLink, queueLink, workerLink, tagLink, time, jsonBlock, table,
  actionButton, inlineForm, toast, fmtDur, ApiError,
} from '../core.js';

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

/** Refreshes unless the user is typing in a form on the page. */
function refreshUnlessTyping(ctx) {
  const a = document.activeElement;
  if (a && a.matches('input, select, textarea')) return;
  ctx.refresh();
}

/**
 * Puts the job (same jid, class, data, priority, tags) into `queue`: the
 * qless "requeue" (must_exist), used for retry and move.
 */
function requeue(job, queue) {
  return api.post(`/v1/queues/${enc(queue)}/jobs`, {
    jid: job.jid, klass: job.klass, data: job.data, must_exist: true,
  });
}

// ---------------------------------------------------------------- why box

const WHY_TITLES = {
  running: 'It is running',
  complete: 'It has completed',
};

function whyBox(why) {
  if (!why) return null;
  const title = WHY_TITLES[why.state] || 'Why is this job not running?';
  const kind = why.state === 'running' || why.state === 'complete' ? 'why ok' : why.state === 'failed' ? 'why bad' : 'why';
  return h('section', { class: kind, 'data-why': why.state },
    h('h2', title),
    h('ul', why.reasons.map((r) => h('li', { 'data-code': r.code },
      // A failure's message may carry a backtrace: its first line here,
      // the rest in the failure panel.
      r.code === 'failed' ? r.text.split('\n')[0] : r.text,
      r.code === 'depends' && r.jids ? h('span', { class: 'links' }, ' (', r.jids.map((j, i) => [i ? ', ' : '', jobLink(j)]), ')') : null,
      r.code === 'running' && r.worker ? h('span', { class: 'links' }, ' (', workerLink(r.worker), ')') : null,
      r.code === 'paused' && r.queue ? h('span', { class: 'links' }, ' (', queueLink(r.queue), ')') : null,
      r.code === 'throttled' && r.throttle ? h('span', { class: 'links' }, ' (', h('a', { href: '#/throttles' }, 'throttles'), ')') : null))));
}

// ------------------------------------------------------------------ facts

const orNone = (x) => (x === null || x === undefined || x === '' ? h('span', { class: 'muted' }, '—') : x);
const jidLinks = (jids) => (jids && jids.length ? h('span', { class: 'jid-list' }, jids.map((j, i) => [i ? ', ' : '', jobLink(j)])) : orNone(null));

function tagEditor(job, ctx) {
  const chips = job.tags.map((t) => h('span', { class: 'tag-chip', 'data-tag': t },
    tagLink(t),
    actionButton('×', () => api.del(`/v1/jobs/${enc(job.jid)}/tags`, { tags: [t] }), {
      name: 'untag', class: 'chip-x', title: `Remove tag ${t}`, done: `Tag ${t} removed`, after: ctx.refresh,
    })));
  const add = inlineForm([{ name: 'tag', placeholder: 'new tag', required: true }], 'Add tag', async (v) => {
    await api.post(`/v1/jobs/${enc(job.jid)}/tags`, { tags: [v.tag.trim()] });
    toast(`Tag ${v.tag.trim()} added`, 'ok');
    await ctx.refresh();
  }, { name: 'tag' });
  return h('div', { class: 'tag-editor' }, chips.length ? chips : h('span', { class: 'muted' }, 'no tags '), add);
}

function facts(job, ctx) {
  const row = (label, value, key) => [h('dt', label), h('dd', { 'data-fact': key }, value)];
  return h('dl', { class: 'facts' },
    row('Class', h('span', { class: 'klass' }, job.klass), 'klass'),
    row('Queue', job.queue ? queueLink(job.queue) : orNone(null), 'queue'),
    row('State', badge(job.state), 'state'),
    row('Priority', String(job.priority), 'priority'),
    row('Retries left', `${job.remaining} of ${job.retries}`, 'retries'),
    row('Worker', job.worker ? workerLink(job.worker) : orNone(null), 'worker'),
    row('Lock expires', job.expires ? time(job.expires) : orNone(null), 'expires'),
    row('Tracked', job.tracked ? 'yes' : 'no', 'tracked'),
    row('Tags', tagEditor(job, ctx), 'tags'),
    job.throttles && job.throttles.length
      ? row('Throttles', h('span', { class: 'throttle-list' }, job.throttles.map((t, i) => [i ? ', ' : '', h('a', { href: '#/throttles' }, t)])), 'throttles')
      : null,
    row('Depends on', jidLinks(job.dependencies), 'dependencies'),
    row('Dependents', jidLinks(job.dependents), 'dependents'),
    job.spawned_from_jid ? row('Spawned from', jobLink(job.spawned_from_jid), 'spawned') : null,
    job.unique_key ? row('Unique key', uniqueKey(job), 'unique_key') : null,
    job.batch ? row('Batch', h('a', { href: `#/batches/${encodeURIComponent(job.batch)}`, class: 'jid' }, job.batch), 'batch') : null);
}

/** The job's uniqueness key, and whether it holds it (only while live). */
function uniqueKey(job) {
  const held = job.state !== 'failed' && job.state !== 'complete';
  return h('span', {},
    h('code', job.unique_key),
    h('span', { class: 'muted' }, held ? ' (held)' : ' (not held while ' + job.state + ')'));
}

// ---------------------------------------------------------------- actions

function actions(job, queues, ctx) {
  const path = `/v1/jobs/${enc(job.jid)}`;
  const list = h('datalist', { id: 'queue-names' }, queues.map((q) => h('option', { value: q })));
  const move = inlineForm([{ name: 'queue', placeholder: 'queue', required: true, list: 'queue-names', label: 'Move to queue' }], 'Move', async (v) => {
    const q = v.queue.trim();
    await requeue(job, q);
    toast(`Moved to queue ${q}`, 'ok');
    await ctx.refresh();
  }, { name: 'move' });
  const prio = inlineForm([{ name: 'priority', type: 'number', value: job.priority, required: true, step: 1, label: 'Priority' }], 'Set priority', async (v) => {
    await api.put(`${path}/priority`, { priority: parseInt(v.priority, 10) });
    toast(`Priority set to ${parseInt(v.priority, 10)}`, 'ok');
    await ctx.refresh();
  }, { name: 'priority' });
  return h('div', { class: 'job-actions' },
    h('div', { class: 'actions' },
      job.state === 'failed'
        ? actionButton('Retry', () => requeue(job, job.queue), { name: 'retry', class: 'primary', done: `Retried in queue ${job.queue}`, after: ctx.refresh })
        : null,
      job.tracked
        ? actionButton('Untrack', () => api.del(`${path}/tracked`), { name: 'untrack', done: 'No longer tracked', after: ctx.refresh })
        : actionButton('Track', () => api.put(`${path}/tracked`), { name: 'track', done: 'Tracked', after: ctx.refresh }),
      actionButton('Cancel job', () => api.del(path), {
        name: 'cancel', class: 'danger', confirm: `Cancel job ${job.jid}? It is deleted with its history.`,
        done: 'Job cancelled', after: ctx.refresh,
      })),
    list, move, prio);
}

// ---------------------------------------------------------------- history

const HISTORY_EVENT = { put: 'enqueued', popped: 'dequeued', done: 'perform_finished', failed: 'failed' };

/** Pairs each history entry with its lifecycle event (same kind, same second). */
function pairEvents(history, events) {
  const used = new Set();
  return history.map((e) => {
    const want = HISTORY_EVENT[e.what];
    if (!want) return null;
    const ev = events.find((x) => !used.has(x.seq) && x.event_type === want &&
      x.timestamp >= e.when - 0.001 && x.timestamp < e.when + 1.001);
    if (ev) used.add(ev.seq);
    return ev || null;
  });
}

const hostOf = (ev) => (ev && ((ev.metadata && ev.metadata._hostname) || (ev.origin && ev.origin.hostname))) || null;
const pidOf = (ev) => (ev && ((ev.metadata && ev.metadata._process) || (ev.origin && ev.origin.process))) || null;

/** The failure text split into the message line and the rest (backtrace). */
function splitMessage(text) {
  const s = String(text || '');
  const i = s.indexOf('\n');
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

function backtraceOf(error) {
  if (!error || !error.backtrace) return '';
  return Array.isArray(error.backtrace) ? error.backtrace.join('\n') : String(error.backtrace);
}

function entryTitle(e) {
  switch (e.what) {
    case 'put': return ['Put in queue ', e.q ? queueLink(e.q) : '?'];
    case 'popped': return ['Popped by ', e.worker ? workerLink(e.worker) : '?'];
    case 'done': return 'Completed';
    case 'failed': return ['Failed', e.group ? [' in group ', h('a', { href: `#/failed/${enc(e.group)}` }, e.group)] : ''];
    case 'timed-out': return 'Lock timed out';
    case 'released': return ['Released by ', e.worker ? workerLink(e.worker) : '?'];
    case 'replaced': return ['Data replaced by a put with unique key ', h('code', String(e.unique_key || '?'))];
    case 'unique-dropped': return ['Unique key ', h('code', String(e.unique_key || '?')), ' dropped: held by ', e.holder ? jobLink(e.holder) : '?'];
    default: return ['Log: ', e.what];
  }
}

const STANDARD = new Set(['what', 'when', 'q', 'worker', 'group']);

function timeline(job, events) {
  const hist = job.history || [];
  if (!hist.length) return h('p', { class: 'muted' }, 'No history.');
  const paired = pairEvents(hist, events);
  const lastFailed = hist.map((e) => e.what).lastIndexOf('failed');
  // History times are whole seconds; the paired event's time is exact.
  const at = hist.map((e, i) => (paired[i] ? paired[i].timestamp : e.when));
  return h('ol', { class: 'timeline' }, hist.map((e, i) => {
    const ev = paired[i];
    const host = hostOf(ev);
    const pid = pidOf(ev);
    const extra = Object.fromEntries(Object.entries(e).filter(([k]) => !STANDARD.has(k)));
    let failure = null;
    if (e.what === 'failed') {
      const err = ev && ev.error;
      const msg = err && err.message ? err.message : i === lastFailed && job.failure ? job.failure.message : '';
      const [line, rest] = splitMessage(msg);
      const bt = backtraceOf(err) || rest;
      failure = h('div', { class: 'failure' },
        err && err.class && err.class !== e.group ? h('div', h('strong', 'Error: '), h('code', err.class)) : null,
        line ? h('div', { class: 'message' }, line) : null,
        bt ? h('pre', { class: 'backtrace' }, bt) : null);
    }
    return h('li', { class: e.what, 'data-what': e.what },
      h('div', { class: 'entry-head' },
        h('strong', entryTitle(e)), ' ', time(at[i]),
        i > 0 ? h('span', { class: 'muted delta', title: 'since the previous step' }, `+${fmtDur(Math.max(0, at[i] - at[i - 1]))}`) : null),
      host || pid || (e.worker && e.what !== 'popped' && e.what !== 'released')
        ? h('div', { class: 'entry-meta muted' },
          e.worker && e.what !== 'popped' && e.what !== 'released' ? ['worker ', workerLink(e.worker), ' '] : null,
          host ? [' host ', h('code', String(host))] : null,
          pid ? [' pid ', h('code', String(pid))] : null)
        : null,
      Object.keys(extra).length ? jsonBlock(extra) : null,
      failure);
  }));
}

function failurePanel(job) {
  const f = job.failure;
  if (!f || !f.group) return null;
  const [line, rest] = splitMessage(f.message);
  return h('section', { class: 'panel failure-panel', 'data-failure': f.group },
    h('h2', 'Failure'),
    h('dl', { class: 'facts' },
      h('dt', 'Group'), h('dd', h('a', { href: `#/failed/${enc(f.group)}` }, f.group)),
      h('dt', 'When'), h('dd', time(f.when)),
      h('dt', 'Worker'), h('dd', f.worker ? workerLink(f.worker) : orNone(null)),
      h('dt', 'Message'), h('dd', { class: 'message' }, line)),
    rest ? h('pre', { class: 'backtrace' }, rest) : null);
}

// ------------------------------------------------------------ events table

function metaText(m) {
  const entries = Object.entries(m || {});
  if (!entries.length) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'meta' }, entries.map(([k, v]) =>
    h('span', { class: 'kv' }, h('span', { class: 'k' }, k), '=', typeof v === 'string' ? v : JSON.stringify(v))));
}

function eventsTable(events) {
  const cols = [
    { title: 'Event', cell: (e) => h('span', { class: `event-type ev-${e.event_type}` }, e.event_type) },
    { title: 'Time', cell: (e) => time(e.timestamp) },
    { title: 'Queue', cell: (e) => (e.queue ? queueLink(e.queue) : '—') },
    { title: 'In queue', class: 'num', cell: (e) => (e.time_in_queue === null ? '—' : fmtDur(e.time_in_queue)) },
    { title: 'Perform', class: 'num', cell: (e) => (e.time_to_perform === null ? '—' : fmtDur(e.time_to_perform)) },
    { title: 'Host', cell: (e) => orNone(hostOf(e)) },
    { title: 'Process', cell: (e) => orNone(pidOf(e) === null ? null : String(pidOf(e))) },
    { title: 'Metadata', cell: (e) => metaText(e.metadata) },
    { title: 'Error', cell: (e) => (e.error ? h('span', { class: 'bad' }, [e.error.class, e.error.message].filter(Boolean).join(': ')) : '—') },
  ];
  return table(cols, events, { key: (e) => String(e.seq), class: 'events', empty: 'No lifecycle events kept for this job.' });
}

// ------------------------------------------------------------------- page

async function loadEvents(jid) {
  try {
    return (await api.get('/v1/events/search', { jid, limit: 500 })).events;
  } catch (e) {
    toast(`Lifecycle events: ${e.message}`, 'error');
    return [];
  }
}

async function gone(root, jid, events) {
  let why = null;
  try { why = await api.get(`/v1/jobs/${enc(jid)}/why`); } catch { why = null; }
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Job ', h('code', jid))),
    why ? whyBox(why) : h('section', { class: 'why bad', 'data-why': 'gone' },
      h('h2', 'This job does not exist'),
      h('p', 'No job has this id now: it was cancelled, or it completed and its record expired.')),
    why && why.state === 'recur' ? h('p', h('a', { href: '#/recurring' }, 'See the recurring jobs')) : null,
    h('section', { class: 'panel' }, h('h2', 'Lifecycle events'), eventsTable(events)));
}

export default async function render(root, params, query, ctx) {
  const jid = params.jid;
  ctx.setTitle(`Job ${jid}`);
  liveOnce(ctx, () => refreshUnlessTyping(ctx));
  let job;
  try {
    job = await api.get(`/v1/jobs/${enc(jid)}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return gone(root, jid, await loadEvents(jid));
    throw e;
  }
  const [why, events, queues] = await Promise.all([
    api.get(`/v1/jobs/${enc(jid)}/why`).catch(() => null),
    loadEvents(jid),
    api.get('/v1/queues').then((qs) => qs.map((q) => q.name)).catch(() => []),
  ]);
  mount(root,
    h('div', { class: 'page-head' },
      h('h1', 'Job ', h('code', { class: 'jid' }, job.jid)),
      badge(job.state),
      job.tracked ? h('span', { class: 'badge tracked' }, 'tracked') : null,
      h('span', { class: 'muted' }, h('span', { class: 'klass' }, job.klass), job.queue ? [' in ', queueLink(job.queue)] : null)),
    whyBox(why),
    failurePanel(job),
    h('div', { class: 'grid2' },
      h('section', { class: 'panel' }, h('h2', 'Details'), facts(job, ctx)),
      h('section', { class: 'panel' }, h('h2', 'Actions'), actions(job, queues, ctx),
        h('h3', 'Data'), jsonBlock(job.data))),
    h('section', { class: 'panel' }, h('h2', 'History'), timeline(job, events)),
    h('section', { class: 'panel' }, h('h2', 'Lifecycle events'), eventsTable(events)));
}
