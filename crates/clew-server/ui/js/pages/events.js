// Page: the event explorer (#/events?range=1h&queue=...&meta=k%3Dv...).
// Search and analytics over the lifecycle events: filter by time range
// (presets or a custom since/until, UTC), queue, class, event type and
// metadata key=value (repeatable); summary statistics (count, p50, p95,
// p99, max of time in queue and time to perform; the share within an SLA);
// charts of the percentiles over time, broken down by class, queue or a
// metadata key; and the matching events, newest first, paged with
// cursors. Every filter lives in the URL fragment, so a view can be shared.
import {
  h, mount, api, stat, table, jobLink, queueLink, time, fmtDur, fmtTime, lineChart, hashHref,
  errorBox, now,
} from '../core.js';

/** Time range presets: key → [label, seconds back from now]. */
const PRESETS = [
  ['15m', 'Last 15 min', 900],
  ['1h', 'Last hour', 3600],
  ['1d', 'Last day', 86400],
  ['7d', 'Last 7 days', 7 * 86400],
  ['all', 'All time', null],
];
const DEFAULT_RANGE = '1h';
const TYPES = ['enqueued', 'dequeued', 'perform_started', 'perform_finished', 'failed'];
const PAGE = 50;
/** Chart bucket widths (seconds), the smallest giving at most MAX_POINTS points is used. */
const NICE = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
const MAX_POINTS = 60;
/** Most groups drawn in a breakdown chart (the largest). */
const MAX_LINES = 8;

// ------------------------------------------------------------------ state

/** The view, as read from the fragment's query. */
function viewOf(query) {
  const num = (k) => {
    const v = query.get(k);
    return v === null || v === '' || !Number.isFinite(Number(v)) ? null : Number(v);
  };
  const str = (k) => (query.get(k) || '').trim() || null;
  const since = num('since');
  const until = num('until');
  const custom = since !== null || until !== null;
  const range = custom ? 'custom' : (PRESETS.some((p) => p[0] === query.get('range')) ? query.get('range') : DEFAULT_RANGE);
  return {
    range, since, until,
    queue: str('queue'), klass: str('klass'), type: TYPES.includes(query.get('type')) ? query.get('type') : null,
    meta: query.getAll('meta').filter((m) => m.includes('=') && !m.startsWith('=')),
    by: str('by'), sla: num('sla'), pct: ['p50', 'p95', 'p99'].includes(query.get('pct')) ? query.get('pct') : 'p95',
    before: num('before'), after: num('after'),
  };
}

/** The view as fragment query parameters (cursors dropped unless kept). */
function queryOf(v, keepCursor = false) {
  return {
    range: v.range === 'custom' || v.range === DEFAULT_RANGE ? null : v.range,
    since: v.range === 'custom' ? v.since : null,
    until: v.range === 'custom' ? v.until : null,
    queue: v.queue, klass: v.klass, type: v.type, meta: v.meta, by: v.by,
    sla: v.sla, pct: v.by && v.pct !== 'p95' ? v.pct : null,
    before: keepCursor ? v.before : null, after: keepCursor ? v.after : null,
  };
}

const hrefOf = (v, keep) => hashHref('#/events', queryOf(v, keep));

/** The time window in seconds: [since|null, until|null]. */
function windowOf(v) {
  if (v.range === 'custom') return [v.since, v.until];
  const back = PRESETS.find((p) => p[0] === v.range)[2];
  return [back === null ? null : Math.floor(now() - back), null];
}

/** The API's filter parameters. */
function filterOf(v) {
  const [since, until] = windowOf(v);
  return { since, until, queue: v.queue, klass: v.klass, type: v.type, meta: v.meta };
}

// ------------------------------------------------------------ the form

/** "2026-11-23 18:00:01": a time as the since/until inputs show it (UTC). */
function inputTime(secs) {
  if (secs === null) return '';
  return fmtTime(secs).replace('Z', '');
}

/**
 * Reads a since/until input: "YYYY-MM-DD HH:MM[:SS]" (UTC; a "T" or a
 * trailing "Z" are fine too) or seconds since the epoch. Null if empty,
 * NaN if unreadable.
 */
function readTime(value) {
  const v = value.trim();
  if (!v) return null;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const m = /^(\d{4}-\d\d-\d\d)(?:[ T](\d\d:\d\d(?::\d\d(?:\.\d+)?)?))?Z?$/.exec(v);
  if (!m) return NaN;
  const t = Date.parse(`${m[1]}T${m[2] || '00:00'}Z`);
  return Number.isNaN(t) ? NaN : t / 1000;
}

function metaRow(list, kv) {
  const i = kv ? kv.indexOf('=') : -1;
  const key = h('input', { name: 'meta-key', placeholder: 'metadata key', 'aria-label': 'Metadata key', value: i >= 0 ? kv.slice(0, i) : '' });
  const value = h('input', { name: 'meta-value', placeholder: 'value', 'aria-label': 'Metadata value', value: i >= 0 ? kv.slice(i + 1) : '' });
  const row = h('div', { class: 'meta-row' }, key, h('span', { class: 'muted' }, '='), value,
    h('button', { type: 'button', class: 'chip-x', title: 'Remove this filter', 'data-action': 'remove-meta', on: { click: () => row.remove() } }, '×'));
  list.appendChild(row);
  return row;
}

function labelled(label, control) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control);
}

function filterForm(v, facets) {
  const [since, until] = windowOf(v);
  const presets = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Time range' },
    PRESETS.map(([key, label]) => h('a', {
      href: hrefOf({ ...v, range: key }), class: v.range === key ? 'active' : null, 'data-range': key,
    }, label)),
    h('a', {
      href: hrefOf({ ...v, range: 'custom', since: since === null ? Math.floor(now() - 3600) : since, until: until === null ? Math.ceil(now()) : until }),
      class: v.range === 'custom' ? 'active' : null, 'data-range': 'custom',
    }, 'Custom'));
  const sinceIn = h('input', { name: 'since', value: inputTime(since), placeholder: 'YYYY-MM-DD HH:MM:SS', 'aria-label': 'Since (UTC)', class: 'time-input' });
  const untilIn = h('input', { name: 'until', value: inputTime(until), placeholder: until === null && v.range !== 'custom' ? 'now' : 'YYYY-MM-DD HH:MM:SS', 'aria-label': 'Until (UTC)', class: 'time-input' });
  const queueIn = h('input', { name: 'queue', placeholder: 'any queue', value: v.queue || '', list: 'ev-queues', 'aria-label': 'Queue' });
  const klassIn = h('input', { name: 'klass', placeholder: 'any class', value: v.klass || '', list: 'ev-classes', 'aria-label': 'Class' });
  const typeIn = h('select', { name: 'type', 'aria-label': 'Event type' },
    h('option', { value: '' }, 'any event'), TYPES.map((t) => h('option', { value: t, selected: v.type === t }, t)));
  const byMeta = v.by && v.by.startsWith('meta:') ? v.by.slice(5) : '';
  const byIn = h('select', { name: 'by', 'aria-label': 'Break down by' },
    h('option', { value: '' }, 'nothing'),
    h('option', { value: 'class', selected: v.by === 'class' }, 'class'),
    h('option', { value: 'queue', selected: v.by === 'queue' }, 'queue'),
    h('option', { value: 'meta', selected: !!byMeta }, 'metadata key…'));
  const byKeyIn = h('input', { name: 'by-key', placeholder: 'e.g. pdf_generation_strategy', value: byMeta, list: 'ev-meta-keys', 'aria-label': 'Metadata key to break down by' });
  const showKey = () => { byKeyIn.hidden = byIn.value !== 'meta'; };
  byIn.addEventListener('change', () => { showKey(); if (byIn.value === 'meta') byKeyIn.focus(); });
  showKey();
  const slaIn = h('input', { name: 'sla', type: 'number', min: '0', step: 'any', placeholder: 'seconds', value: v.sla === null ? '' : v.sla, 'aria-label': 'SLA seconds', class: 'num-input' });
  const metaList = h('div', { class: 'meta-list' });
  v.meta.forEach((m) => metaRow(metaList, m));
  const form = h('form', { class: 'panel explorer-form', 'data-form': 'events' },
    h('div', { class: 'form-line' }, presets,
      h('span', { class: 'custom-range' }, labelled('Since (UTC)', sinceIn), labelled('Until (UTC)', untilIn))),
    h('div', { class: 'form-line' },
      labelled('Queue', queueIn), labelled('Class', klassIn), labelled('Event', typeIn),
      labelled('Break down by', h('span', { class: 'by' }, byIn, byKeyIn)),
      labelled('SLA (s)', slaIn)),
    h('div', { class: 'form-line' },
      h('span', { class: 'field-label' }, 'Metadata'), metaList,
      h('button', { type: 'button', 'data-action': 'add-meta', on: { click: () => metaRow(metaList, null).querySelector('input').focus() } }, '+ key = value'),
      h('span', { class: 'spacer' }),
      h('a', { href: '#/events', class: 'reset' }, 'Clear filters'),
      h('button', { type: 'submit', class: 'primary' }, 'Apply')),
    h('datalist', { id: 'ev-queues' }, facets.queues.map((q) => h('option', { value: q }))),
    h('datalist', { id: 'ev-classes' }, facets.classes.map((c) => h('option', { value: c }))),
    h('datalist', { id: 'ev-meta-keys' }, facets.metaKeys.map((k) => h('option', { value: k }))));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = { ...v, queue: queueIn.value.trim() || null, klass: klassIn.value.trim() || null, type: typeIn.value || null };
    if (v.range === 'custom' || sinceIn.value !== inputTime(since) || untilIn.value !== inputTime(until)) {
      next.range = 'custom';
      next.since = readTime(sinceIn.value);
      next.until = readTime(untilIn.value);
      if (Number.isNaN(next.since)) { formError(form, 'Since: expected a UTC time as YYYY-MM-DD HH:MM:SS'); return; }
      if (Number.isNaN(next.until)) { formError(form, 'Until: expected a UTC time as YYYY-MM-DD HH:MM:SS'); return; }
      if (next.since !== null && next.until !== null && next.until <= next.since) { formError(form, 'Until: expected a time after since'); return; }
    }
    next.meta = [...metaList.querySelectorAll('.meta-row')].map((r) => {
      const [k, val] = r.querySelectorAll('input');
      return k.value.trim() ? `${k.value.trim()}=${val.value}` : null;
    }).filter(Boolean);
    if (byIn.value === 'meta') {
      if (!byKeyIn.value.trim()) { formError(form, 'Break down by: expected a metadata key'); return; }
      next.by = `meta:${byKeyIn.value.trim()}`;
    } else {
      next.by = byIn.value || null;
    }
    const sla = slaIn.value.trim();
    if (sla !== '' && !(Number(sla) >= 0)) { formError(form, 'SLA: expected a number of seconds >= 0'); return; }
    next.sla = sla === '' ? null : Number(sla);
    location.hash = hrefOf(next);
  });
  return form;
}

function formError(form, text) {
  let box = form.querySelector('.form-error');
  if (!box) { box = h('div', { class: 'form-error', role: 'alert' }); form.appendChild(box); }
  box.textContent = text;
}

// ------------------------------------------------------------ summary

const dur = (secs) => (secs === null || secs === undefined ? '—' : fmtDur(secs));
const exact = (secs) => (secs === null || secs === undefined ? null : `${secs} s`);

function figure(label, secs, key) {
  return h('div', { class: 'figure', 'data-fig': key, title: exact(secs) }, h('span', { class: 'fig-label' }, label), h('span', { class: 'fig-value' }, dur(secs)));
}

function summaryBlock(title, s, key, note) {
  return h('div', { class: `summary-block ${key}`, 'data-summary': key },
    h('div', { class: 'summary-head' }, h('h3', title), h('span', { class: 'muted', 'data-fig': 'count' }, `${s.count} ${note}`)),
    h('div', { class: 'figures' },
      figure('p50', s.p50, 'p50'), figure('p95', s.p95, 'p95'), figure('p99', s.p99, 'p99'),
      figure('max', s.max, 'max'), figure('mean', s.mean, 'mean')));
}

const share = (sla) => (sla.share === null || sla.share === undefined ? '—' : `${(sla.share * 100).toFixed(sla.share === 1 || sla.share === 0 ? 0 : 1)}%`);

function summary(all, v) {
  const g = all.groups[0] || { count: 0, time_in_queue: { count: 0 }, time_to_perform: { count: 0 }, sla: null };
  return h('section', { class: 'summary' },
    h('div', { class: 'cards' },
      stat('Events', g.count),
      g.sla ? h('div', { class: `stat sla ${g.sla.share === null ? '' : g.sla.share >= 0.99 ? 'ok' : g.sla.share >= 0.9 ? 'warn' : 'bad'}`, 'data-stat': 'SLA' },
        h('div', { class: 'value' }, share(g.sla)),
        h('div', { class: 'label' }, `within ${v.sla} s · ${g.sla.within} of ${g.sla.total}`)) : null),
    h('div', { class: 'grid2 summaries' },
      summaryBlock('Time in queue', g.time_in_queue, 'time_in_queue', 'dequeues'),
      summaryBlock('Time to perform', g.time_to_perform, 'time_to_perform', 'performs')));
}

function groupLabel(g) {
  return g === null || g === undefined ? h('span', { class: 'muted' }, '(none)') : g;
}

function groupTable(stats, v) {
  const cell = (m, k) => (r) => h('span', { 'data-col': `${m}.${k}`, title: exact(r[m][k]) }, k === 'count' ? String(r[m].count) : dur(r[m][k]));
  const cols = [
    { title: v.by.startsWith('meta:') ? v.by.slice(5) : v.by, cell: (r) => h('span', { class: 'group-name' }, groupLabel(r.group)) },
    { title: 'Events', class: 'num', cell: (r) => h('span', { 'data-col': 'count' }, String(r.count)) },
    ...['count', 'p50', 'p95', 'p99', 'max'].map((k) => ({ title: k === 'count' ? 'dequeues' : `wait ${k}`, class: 'num', cell: cell('time_in_queue', k) })),
    ...['count', 'p50', 'p95', 'p99', 'max'].map((k) => ({ title: k === 'count' ? 'performs' : `run ${k}`, class: 'num', cell: cell('time_to_perform', k) })),
  ];
  if (v.sla !== null) cols.push({ title: `≤ ${v.sla} s`, class: 'num', cell: (r) => h('span', { 'data-col': 'sla', title: `${r.sla.within} of ${r.sla.total}` }, share(r.sla)) });
  return h('section', { class: 'panel' },
    h('h2', 'By ', v.by.startsWith('meta:') ? h('code', v.by.slice(5)) : v.by),
    table(cols, stats.groups, { key: (r) => (r.group === null ? '' : r.group), class: 'by-group', empty: 'No events match.' }));
}

// ------------------------------------------------------------ charts

/** A bucket width in words: "10 s", "5 min", "1 h", "1 d". */
function bucketText(secs) {
  if (secs % 86400 === 0) return `${secs / 86400} d`;
  if (secs % 3600 === 0) return `${secs / 3600} h`;
  if (secs % 60 === 0) return `${secs / 60} min`;
  return `${secs} s`;
}

function intervalFor(since, until) {
  if (since === null) return null;
  const span = Math.floor((until === null ? now() : until) - since);
  return NICE.find((i) => span / i <= MAX_POINTS) || 86400 * Math.ceil(span / MAX_POINTS / 86400);
}

function xFormatFor(series) {
  const ts = series.flatMap((s) => s.points.map((p) => p.t));
  const span = ts.length ? Math.max(...ts) - Math.min(...ts) : 0;
  if (span > 2 * 86400) return (t) => fmtTime(t).slice(5, 16);
  if (span < 600) return (t) => fmtTime(t).slice(11, 19);
  return (t) => fmtTime(t).slice(11, 16);
}

function charts(series, v) {
  const xFormat = xFormatFor(series.series);
  const opts = { yFormat: (y) => fmtDur(y), xFormat, height: 220 };
  const metrics = [['time_in_queue', 'Time in queue'], ['time_to_perform', 'Time to perform']];
  let blocks;
  let note = null;
  if (!v.by) {
    const pts = (series.series[0] || { points: [] }).points;
    blocks = metrics.map(([m, title]) => lineChart(['p50', 'p95', 'p99'].map((p) => ({
      name: p, points: pts.map((pt) => [pt.t, pt[m][p]]),
    })), { ...opts, title }));
  } else {
    const total = (s) => s.points.reduce((n, p) => n + p.count, 0);
    const groups = [...series.series].sort((a, b) => total(b) - total(a)).slice(0, MAX_LINES);
    if (series.series.length > MAX_LINES) note = `The ${MAX_LINES} largest of ${series.series.length} groups are drawn.`;
    blocks = metrics.map(([m, title]) => lineChart(groups.map((s) => ({
      name: s.group === null ? '(none)' : s.group, points: s.points.map((pt) => [pt.t, pt[m][v.pct]]),
    })), { ...opts, title: `${title}, ${v.pct}` }));
  }
  const pctTabs = v.by ? h('div', { class: 'segmented small' }, ['p50', 'p95', 'p99'].map((p) =>
    h('a', { href: hrefOf({ ...v, pct: p }, true), class: v.pct === p ? 'active' : null, 'data-pct': p }, p))) : null;
  return h('section', { class: 'panel charts' },
    h('div', { class: 'panel-head' },
      h('h2', 'Over time', v.by ? [' by ', v.by.startsWith('meta:') ? h('code', v.by.slice(5)) : v.by] : null),
      h('span', { class: 'muted' }, `${bucketText(series.interval)} buckets`), pctTabs),
    note ? h('p', { class: 'muted' }, note) : null,
    h('div', { class: 'grid2' }, blocks));
}

// ------------------------------------------------------------ events

function metaCell(e, v) {
  const entries = Object.entries(e.metadata || {});
  if (!entries.length) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'meta' }, entries.map(([k, val]) => {
    const text = typeof val === 'string' ? val : JSON.stringify(val);
    const kv = `${k}=${text}`;
    return h('a', {
      class: 'kv', href: hrefOf({ ...v, meta: [...v.meta.filter((m) => m !== kv), kv] }), title: `Filter on ${kv}`,
    }, h('span', { class: 'k' }, k), '=', text);
  }));
}

function eventsTable(events, v) {
  const cols = [
    { title: 'Event', cell: (e) => h('span', { class: `event-type ev-${e.event_type}` }, e.event_type) },
    { title: 'Time', cell: (e) => time(e.timestamp) },
    { title: 'Queue', cell: (e) => (e.queue ? queueLink(e.queue) : '—') },
    { title: 'Class', cell: (e) => h('a', { class: 'klass', href: hrefOf({ ...v, klass: e.klass }), title: 'Filter on this class' }, e.klass) },
    { title: 'Job', cell: (e) => jobLink(e.jid) },
    { title: 'In queue', class: 'num', cell: (e) => h('span', { 'data-col': 'time_in_queue' }, dur(e.time_in_queue)) },
    { title: 'Perform', class: 'num', cell: (e) => h('span', { 'data-col': 'time_to_perform' }, dur(e.time_to_perform)) },
    { title: 'Host / process', cell: (e) => (e.origin && e.origin.hostname ? h('span', { class: 'origin' }, e.origin.hostname, h('span', { class: 'muted' }, ` #${e.origin.process}`)) : '—') },
    { title: 'Metadata', cell: (e) => metaCell(e, v) },
    { title: 'Error', cell: (e) => (e.error ? h('span', { class: 'bad' }, [e.error.class, e.error.message].filter(Boolean).join(': ')) : '') },
  ];
  return h('div', { class: 'table-scroll' },
    table(cols, events, { key: (e) => String(e.seq), class: 'events explorer', empty: 'No events match these filters.' }));
}

/** A page of events, newest first: by default the newest, `before` = older, `after` = newer. */
async function eventsPage(v) {
  const f = filterOf(v);
  if (v.after !== null) {
    const r = await api.get('/v1/events/search', { ...f, after: v.after, limit: PAGE, order: 'asc' });
    return { events: r.events.reverse(), newer: r.next !== null, older: true };
  }
  const r = await api.get('/v1/events/search', { ...f, before: v.before, limit: PAGE, order: 'desc' });
  return { events: r.events, newer: v.before !== null, older: r.next !== null };
}

function eventsPager(page, v) {
  const first = page.events[0];
  const last = page.events[page.events.length - 1];
  const at = (cursor) => hrefOf({ ...v, ...cursor }, true);
  return h('div', { class: 'pager' },
    v.before !== null || v.after !== null ? h('a', { href: hrefOf(v), class: 'newest' }, '⇤ newest') : null,
    page.newer && first ? h('a', { href: at({ after: first.seq, before: null }), class: 'prev' }, '← newer') : null,
    h('span', { class: 'range' }, page.events.length ? `${page.events.length} events, ${fmtTime(last.timestamp)} – ${fmtTime(first.timestamp)}` : ''),
    page.older && last ? h('a', { href: at({ before: last.seq, after: null }), class: 'next' }, 'older →') : null);
}

// ------------------------------------------------------------ page

/** Queues, classes and metadata keys to suggest in the form. */
function facetsOf(queues, events) {
  const classes = new Set();
  const metaKeys = new Set();
  for (const e of events) {
    classes.add(e.klass);
    Object.keys(e.metadata || {}).forEach((k) => metaKeys.add(k));
  }
  return { queues: queues.map((q) => q.name), classes: [...classes].sort(), metaKeys: [...metaKeys].sort() };
}

const settled = (p) => p.then((value) => ({ value }), (error) => ({ error }));

// Live refresh: only for a view that follows now (a preset range, no
// cursor), and not while the user edits the form.
const live = new WeakMap();
function liveOnce(ctx, follows) {
  const known = live.has(ctx);
  live.set(ctx, follows);
  if (known) return;
  const quiet = () => {
    if (live.get(ctx) && !document.querySelector('#main form :focus') && !document.querySelector('#main form.dirty')) ctx.refresh();
  };
  ctx.onLive(quiet);
  const timer = setInterval(() => { if (!document.hidden) quiet(); }, 15000);
  window.addEventListener('hashchange', () => clearInterval(timer), { once: true });
}

export default async function render(root, params, query, ctx) {
  ctx.setTitle('Events');
  const v = viewOf(query);
  liveOnce(ctx, v.range !== 'custom' && v.before === null && v.after === null);
  const f = filterOf(v);
  const [since, until] = windowOf(v);
  const [queues, overall, groups, series, page] = await Promise.all([
    settled(api.get('/v1/queues')),
    settled(api.get('/v1/events/stats', { ...f, sla: v.sla })),
    v.by ? settled(api.get('/v1/events/stats', { ...f, sla: v.sla, by: v.by })) : null,
    settled(api.get('/v1/events/series', { ...f, by: v.by, interval: intervalFor(since, until) })),
    settled(eventsPage(v)),
  ]);
  const form = filterForm(v, facetsOf(queues.value || [], (page.value && page.value.events) || []));
  form.addEventListener('input', () => form.classList.add('dirty'));
  const rangeText = since === null && until === null ? 'all events kept'
    : `${since === null ? 'the oldest event' : fmtTime(since)} to ${until === null ? 'now' : fmtTime(until)}`;
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Event explorer'),
      h('span', { class: 'muted', 'data-window': '' }, rangeText)),
    form,
    overall.error ? errorBox(overall.error) : summary(overall.value, v),
    groups ? (groups.error ? errorBox(groups.error) : groupTable(groups.value, v)) : null,
    series.error ? errorBox(series.error) : charts(series.value, v),
    h('section', { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h2', 'Events'),
        overall.value ? h('span', { class: 'muted', 'data-total': '' }, `${(overall.value.groups[0] || { count: 0 }).count} matching, newest first`) : null),
      page.error ? errorBox(page.error) : [eventsTable(page.value.events, v), eventsPager(page.value, v)]));
}

