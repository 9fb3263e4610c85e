// Page: recurring jobs (#/recurring): every recurring template of every
// queue (one panel per queue, paged when large) with its class, schedule
// (interval, or cron expression + time zone + missed-tick handling),
// priority, retries, tags, children so far and next run; edit the schedule
// and priority (in an in-page dialog), remove after a confirmation.
// Refreshes live.
import {
  h, mount, api, enc, stat, table, pager, queueLink, tagLink, time, fmtDur, fmtAgo, actionButton,
  hashHref, toast,
} from '../core.js';

const PAGE = 25;

// Live refresh, registered once per visit of the page; polls too (a
// template spawning a child has no SSE event of its own). Not while the
// user types in a form or edits in the dialog.
const POLL_MS = 5000;
const live = new WeakSet();
function liveOnce(ctx, fn) {
  if (live.has(ctx)) return;
  live.add(ctx);
  const quiet = () => { if (!document.querySelector('#main form :focus, .modal.recur-edit')) fn(); };
  ctx.onLive(quiet);
  const timer = setInterval(() => { if (!document.hidden) quiet(); }, POLL_MS);
  window.addEventListener('hashchange', () => clearInterval(timer), { once: true });
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
const offsetKey = (queue) => `offset:${queue}`;

/** The interval as "5 min 0 s (300 s)". */
function interval(secs) {
  return h('span', { title: `${secs} seconds` }, fmtDur(secs), h('span', { class: 'muted' }, ` (${secs} s)`));
}

/** A cron template's schedule: the expression, its zone and what it does with missed ticks. */
function cronSchedule(r) {
  return h('span', { title: `cron "${r.cron}" in ${r.timezone}; missed ticks: ${r.missed}` },
    h('code', r.cron), ' ', h('span', { class: 'tz' }, r.timezone),
    h('div', { class: 'muted small' }, r.missed === 'skip' ? 'missed ticks skipped' : 'missed ticks caught up once'));
}

/** The schedule as words, for confirmations. */
const scheduleWords = (r) => (r.cron ? `on cron "${r.cron}" (${r.timezone})` : `every ${fmtDur(r.interval)}`);

/** A text field of the edit dialog. */
function textField(label, name, value, hint) {
  const input = h('input', { name, type: 'text', value, required: true, 'aria-label': label });
  return { input, row: h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input, hint ? h('span', { class: 'muted hint' }, hint) : null) };
}

/** A field of the edit dialog. */
function field(label, name, value, hint) {
  const input = h('input', { name, type: 'number', value, step: 'any', required: true, 'aria-label': label });
  return { input, row: h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input, hint ? h('span', { class: 'muted hint' }, hint) : null) };
}

/** The in-page dialog that edits a template's schedule and priority. */
function editDialog(r, after) {
  if (r.cron) return cronDialog(r, after);
  const iv = field('Interval (seconds)', 'interval', r.interval, 'time between two children, > 0');
  const pr = field('Priority', 'priority', r.priority, 'higher runs first');
  pr.input.step = '1';
  const close = () => overlay.remove();
  const form = h('form', { class: 'modal recur-edit', 'data-form': 'recur-edit' },
    h('h2', 'Edit recurring job'),
    h('p', { class: 'muted' }, h('span', { class: 'klass' }, r.klass), ' in ', r.queue),
    iv.row, pr.row,
    h('div', { class: 'actions' },
      h('button', { type: 'button', 'data-confirm': 'cancel', on: { click: close } }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary', 'data-confirm': 'ok' }, 'Save')));
  const overlay = h('div', { class: 'modal-overlay', role: 'dialog', 'aria-modal': 'true' }, form);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const interval = Number(iv.input.value);
    const priority = Number(pr.input.value);
    if (!(interval > 0)) { toast('Interval: expected a number of seconds greater than 0', 'error'); return; }
    if (!Number.isInteger(priority)) { toast('Priority: expected a whole number', 'error'); return; }
    try {
      await api.patch(`/v1/recurring/${enc(r.jid)}`, { interval, priority });
      close();
      toast(`Recurring job ${r.jid} updated`, 'ok');
      await after();
    } catch (e) {
      toast(`Save: ${e.message}`, 'error');
    }
  });
  document.body.appendChild(overlay);
  iv.input.focus();
}

/** The dialog of a cron template: expression, zone, missed ticks, priority (the server checks them). */
function cronDialog(r, after) {
  const cr = textField('Cron expression', 'cron', r.cron, 'minute hour day-of-month month day-of-week, e.g. */5 * * * *');
  const tz = textField('Time zone', 'timezone', r.timezone, 'IANA name, e.g. Europe/Paris');
  const missed = h('select', { name: 'missed', 'aria-label': 'Missed ticks' },
    h('option', { value: 'catch-up', selected: r.missed !== 'skip' }, 'catch up once'),
    h('option', { value: 'skip', selected: r.missed === 'skip' }, 'skip'));
  const pr = field('Priority', 'priority', r.priority, 'higher runs first');
  pr.input.step = '1';
  const close = () => overlay.remove();
  const form = h('form', { class: 'modal recur-edit', 'data-form': 'recur-edit' },
    h('h2', 'Edit recurring job'),
    h('p', { class: 'muted' }, h('span', { class: 'klass' }, r.klass), ' in ', r.queue),
    cr.row, tz.row,
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Missed ticks'), missed,
      h('span', { class: 'muted hint' }, 'after downtime: one child for all of them, or none')),
    pr.row,
    h('div', { class: 'actions' },
      h('button', { type: 'button', 'data-confirm': 'cancel', on: { click: close } }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary', 'data-confirm': 'ok' }, 'Save')));
  const overlay = h('div', { class: 'modal-overlay', role: 'dialog', 'aria-modal': 'true' }, form);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const priority = Number(pr.input.value);
    if (!Number.isInteger(priority)) { toast('Priority: expected a whole number', 'error'); return; }
    try {
      await api.patch(`/v1/recurring/${enc(r.jid)}`, {
        cron: cr.input.value.trim(), timezone: tz.input.value.trim(), missed: missed.value, priority,
      });
      close();
      toast(`Recurring job ${r.jid} updated`, 'ok');
      await after();
    } catch (e) {
      toast(`Save: ${e.message}`, 'error');
    }
  });
  document.body.appendChild(overlay);
  cr.input.focus();
}

function templateTable(rows, ctx) {
  const cols = [
    { title: 'Template', cell: (r) => h('span', { class: 'jid' }, r.jid) },
    { title: 'Class', cell: (r) => h('span', { class: 'klass' }, r.klass) },
    { title: 'Schedule', cell: (r) => (r.cron ? h('span', { 'data-col': 'cron' }, cronSchedule(r)) : h('span', { 'data-col': 'interval' }, interval(r.interval))) },
    { title: 'Priority', class: 'num', cell: (r) => h('span', { 'data-col': 'priority' }, String(r.priority)) },
    { title: 'Retries', class: 'num', cell: (r) => h('span', { 'data-col': 'retries' }, String(r.retries)) },
    { title: 'Tags', cell: (r) => (r.tags.length ? r.tags.map(tagLink) : h('span', { class: 'muted' }, '—')) },
    { title: 'Spawned', class: 'num', cell: (r) => h('span', { 'data-col': 'count' }, String(r.count)) },
    { title: 'Next run', cell: (r) => h('span', { 'data-col': 'next_run' }, time(r.next_run), h('div', { class: 'muted small' }, fmtAgo(r.next_run))) },
    { title: '', class: 'row-end', cell: (r) => h('div', { class: 'actions row-actions' },
      h('button', { 'data-action': 'edit', on: { click: () => editDialog(r, ctx.refresh) } }, 'Edit'),
      actionButton('Remove', () => api.del(`/v1/recurring/${enc(r.jid)}`), {
        name: 'remove', class: 'quiet-danger',
        confirm: `Remove recurring job ${r.jid} (${r.klass} ${scheduleWords(r)} in ${r.queue})? Children already spawned stay.`,
        done: `Recurring job ${r.jid} removed`, after: ctx.refresh,
      })) },
  ];
  return table(cols, rows, { key: (r) => r.jid, class: 'recurring' });
}

function queuePanel(queue, all, query, ctx) {
  const key = offsetKey(queue);
  const offset = Math.min(Math.max(0, parseInt(query.get(key) || '0', 10) || 0), Math.max(0, all.length - 1));
  const rows = all.slice(offset, offset + PAGE);
  const href = (o) => {
    const q = Object.fromEntries(query.entries());
    q[key] = o || null;
    return hashHref('#/recurring', q);
  };
  return h('section', { class: 'panel recur-queue', 'data-queue': queue },
    h('div', { class: 'panel-head' }, h('h2', 'Queue ', queueLink(queue)), h('span', { class: 'muted' }, plural(all.length, 'template'))),
    templateTable(rows, ctx),
    all.length > PAGE ? pager({ offset, limit: PAGE, total: all.length, shown: rows.length, href }) : null);
}

export default async function render(root, params, query, ctx) {
  ctx.setTitle('Recurring');
  liveOnce(ctx, ctx.refresh);
  const queues = (await api.get('/v1/queues')).filter((q) => q.recurring > 0);
  const lists = await Promise.all(queues.map((q) => api.get(`/v1/queues/${enc(q.name)}/recurring`)));
  const total = lists.reduce((n, l) => n + l.length, 0);
  const next = lists.flat().reduce((m, r) => (m === null || r.next_run < m ? r.next_run : m), null);
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Recurring jobs')),
    h('div', { class: 'cards' },
      stat('Templates', total),
      stat('Queues', queues.length),
      h('div', { class: 'stat time-stat', 'data-stat': 'Next run' },
        h('div', { class: 'value small' }, next === null ? '—' : time(next)),
        h('div', { class: 'label' }, next === null ? 'Next run' : `Next run · ${fmtAgo(next)}`))),
    total ? queues.map((q, i) => queuePanel(q.name, lists[i], query, ctx))
      : h('div', { class: 'panel muted empty-note' }, 'No recurring jobs. Create one with ', h('code', 'clew recur'),
        ' or POST /v1/queues/{queue}/recurring.'));
}
