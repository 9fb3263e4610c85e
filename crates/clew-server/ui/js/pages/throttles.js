// Page: throttles (#/throttles): every throttle with its maximum, the jobs
// holding a slot (running) and the jobs waiting for one (pending); set a
// throttle's maximum (new or existing) with an optional rate limit
// (N starts per PERIOD seconds) and delete one after a confirmation. A throttle caps how many jobs naming it run at once,
// across queues. Refreshes live.
import { h, mount, api, enc, stat, table, actionButton, inlineForm, toast } from '../core.js';

// Live refresh, registered once per visit of the page; polls too (a slot
// freeing has no SSE event of its own). Not while the user types.
const POLL_MS = 5000;
const live = new WeakSet();
function liveOnce(ctx, fn) {
  if (live.has(ctx)) return;
  live.add(ctx);
  const quiet = () => { if (!document.querySelector('#main form :focus')) fn(); };
  ctx.onLive(quiet);
  const timer = setInterval(() => { if (!document.hidden) quiet(); }, POLL_MS);
  window.addEventListener('hashchange', () => clearInterval(timer), { once: true });
}

/** "running / max" with the share used, or "unlimited". */
function usage(t) {
  if (!t.max) return h('span', { class: 'muted' }, `${t.running} (unlimited)`);
  const full = t.running >= t.max;
  return h('span', { class: full ? 'warn' : null, 'data-col': 'usage' }, `${t.running} / ${t.max}`);
}

/** The rate limit, "N / Ps" with the starts in the window, or "—". */
function rate(t) {
  if (!t.rate) return h('span', { class: 'muted', 'data-col': 'rate' }, '—');
  const full = t.started >= t.rate.limit;
  return h('span', { class: full ? 'warn' : null, 'data-col': 'rate' },
    `${t.started} / ${t.rate.limit} per ${t.rate.period}s`);
}

/** Parses the form's "N/PERIOD" (seconds); null when empty, undefined when bad. */
function parseRate(text) {
  const v = (text || '').trim();
  if (!v) return null;
  const m = /^(\d+)\s*\/\s*(\d+)\s*s?$/.exec(v);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) return undefined;
  return { limit: Number(m[1]), period: Number(m[2]) };
}

export default async function render(root, params, query, ctx) {
  ctx.setTitle('Throttles');
  liveOnce(ctx, ctx.refresh);
  const throttles = await api.get('/v1/throttles');
  const setForm = inlineForm([
    { name: 'name', placeholder: 'throttle name', required: true, label: 'Throttle name' },
    { name: 'max', placeholder: 'max', type: 'number', step: '1', required: true, label: 'Maximum (0: unlimited)' },
    { name: 'rate', placeholder: 'rate N/seconds', label: 'Rate limit: N starts per PERIOD seconds (empty: none)' },
  ], 'Set', async (v) => {
    const name = v.name.trim();
    const max = Number(v.max);
    const r = parseRate(v.rate);
    if (!name) { toast('Name: expected a throttle name', 'error'); return; }
    if (!Number.isInteger(max) || max < 0) { toast('Max: expected a whole number >= 0', 'error'); return; }
    if (r === undefined) { toast('Rate: expected N/PERIOD such as 10/60 (both >= 1)', 'error'); return; }
    await api.put(`/v1/throttles/${enc(name)}`, r ? { max, rate: r } : { max });
    toast(`Throttle ${name}: at most ${max || 'unlimited'}${r ? `, ${r.limit} starts per ${r.period}s` : ''}`, 'ok');
    await ctx.refresh();
  }, { name: 'throttle-set' });
  const cols = [
    { title: 'Throttle', cell: (t) => h('span', { class: 'name', 'data-col': 'name' }, t.name) },
    { title: 'Running / max', class: 'num', cell: usage },
    { title: 'Pending', class: 'num', cell: (t) => h('span', { 'data-col': 'pending', class: t.pending ? 'warn' : null }, String(t.pending)) },
    { title: 'Started / rate', class: 'num', cell: rate },
    { title: '', class: 'row-end', cell: (t) => h('div', { class: 'actions row-actions' },
      actionButton('Delete', () => api.del(`/v1/throttles/${enc(t.name)}`), {
        name: 'delete', class: 'danger', confirm: `Delete throttle ${t.name}? Its waiting jobs go back to their queues.`,
        done: `Throttle ${t.name} deleted`, after: ctx.refresh,
      })) },
  ];
  const running = throttles.reduce((n, t) => n + t.running, 0);
  const pending = throttles.reduce((n, t) => n + t.pending, 0);
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Throttles')),
    h('p', { class: 'muted lead' }, 'At most ', h('em', 'max'), ' jobs naming a throttle (put with ',
      h('code', 'throttles'), ') run at once, across queues. The others wait in the ',
      h('code', 'throttled'), ' state and go back to their queue, in order, as slots free. ',
      'A rate limit also allows at most N starts in any PERIOD seconds; jobs over it wait until the window has room.'),
    h('div', { class: 'cards' },
      stat('Throttles', throttles.length),
      stat('Running', running, 'ok'),
      stat('Pending', pending, pending ? 'warn' : '')),
    setForm,
    table(cols, throttles, { key: (t) => t.name, class: 'throttles', empty: 'No throttles yet.' }));
}
