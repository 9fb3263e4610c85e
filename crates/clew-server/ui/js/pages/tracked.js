// Page: tracked jobs (#/tracked): every tracked job with its state, class,
// queue, worker and tags, counts by state, and tracked ids whose job is
// gone; untrack per job. Refreshes live.
import {
  h, mount, api, enc, stat, table, jobLink, queueLink, workerLink, tagLink, badge, time, actionButton,
} from '../core.js';

// Live refresh, registered once per visit of the page; polls too (not
// every change has an SSE event).
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

const STATES = ['waiting', 'scheduled', 'throttled', 'running', 'stalled', 'depends', 'failed', 'complete'];

/** When the job last changed: its newest history entry. */
const lastChange = (j) => (j.history && j.history.length ? j.history[j.history.length - 1].when : null);

function untrackButton(jid, after) {
  return actionButton('Untrack', () => api.del(`/v1/jobs/${enc(jid)}/tracked`), {
    name: 'untrack', done: `Job ${jid} is no longer tracked`, after,
  });
}

export default async function render(root, params, query, ctx) {
  ctx.setTitle('Tracked');
  liveOnce(ctx, ctx.refresh);
  const { jobs, expired } = await api.get('/v1/tracked');
  const byState = new Map();
  for (const j of jobs) byState.set(j.state, (byState.get(j.state) || 0) + 1);
  const cols = [
    { title: 'Job', cell: (j) => jobLink(j.jid) },
    { title: 'State', cell: (j) => badge(j.state) },
    { title: 'Class', cell: (j) => h('span', { class: 'klass' }, j.klass) },
    { title: 'Queue', cell: (j) => (j.queue ? queueLink(j.queue) : '—') },
    { title: 'Worker', cell: (j) => (j.worker ? workerLink(j.worker) : h('span', { class: 'muted' }, '—')) },
    { title: 'Priority', class: 'num', cell: (j) => String(j.priority) },
    { title: 'Tags', cell: (j) => (j.tags.length ? j.tags.map(tagLink) : h('span', { class: 'muted' }, '—')) },
    { title: 'Last change', cell: (j) => time(lastChange(j)) },
    { title: '', class: 'row-end', cell: (j) => h('div', { class: 'actions row-actions' }, untrackButton(j.jid, ctx.refresh)) },
  ];
  const states = [...STATES.filter((s) => byState.has(s)), ...[...byState.keys()].filter((s) => !STATES.includes(s))];
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Tracked jobs')),
    h('p', { class: 'muted lead' }, 'Tracked jobs publish every change to the ', h('code', 'ql:track'),
      ' channel. Track a job from its page.'),
    h('div', { class: 'cards' },
      stat('Tracked', jobs.length),
      states.map((s) => stat(s, byState.get(s), s === 'failed' || s === 'stalled' ? 'bad' : null))),
    table(cols, jobs, { key: (j) => j.jid, class: 'jobs tracked', empty: 'No tracked jobs.' }),
    expired.length ? h('section', { class: 'panel expired' },
      h('h2', 'Tracked but gone'),
      h('p', { class: 'muted' }, 'These ids are tracked but their jobs no longer exist (cancelled or expired).'),
      table([
        { title: 'Job id', cell: (jid) => h('span', { class: 'jid' }, jid) },
        { title: '', class: 'row-end', cell: (jid) => h('div', { class: 'actions row-actions' }, untrackButton(jid, ctx.refresh)) },
      ], expired, { key: (jid) => jid, class: 'expired' })) : null);
}
