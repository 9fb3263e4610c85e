// clew dashboard: the shared toolkit every page uses.
//
// Safety rule: the DOM is built only with h() / s() below, which turn every
// string into a text node and refuse event-handler attributes and
// non-relative links. No page uses an HTML-parsing sink or string
// evaluation (crates/clew/tests/dashboard.rs lists and greps for them, and
// the CSP forbids inline scripts). Values that came from a
// job (data, tags, class, errors, metadata) therefore always render as text.

export const enc = encodeURIComponent;

const SVG_NS = 'http://www.w3.org/2000/svg';

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      continue;
    }
    if (/^on/i.test(k)) throw new Error(`h(): refusing event attribute ${k}; use on: {...}`);
    if (k === 'style') throw new Error('h(): inline style attributes are blocked by the CSP; use a class');
    if (k === 'href' || k === 'src' || k === 'action') {
      const s = String(v);
      el.setAttribute(k, /^(#|\/(?!\/))/.test(s) ? s : '#');
      continue;
    }
    if (k === 'value' && 'value' in el) { el.value = String(v); continue; }
    if (k === 'checked' || k === 'selected') { el[k] = !!v; continue; }
    el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) { append(el, c); continue; }
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An HTML element: h('a', {href: '#/x', class: 'y', on: {click: f}}, 'text', child). */
export function h(tag, attrs, ...children) {
  if (attrs instanceof Node || typeof attrs !== 'object' || attrs === null || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element, same rules as h(). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (/^on/i.test(k) || k === 'href' || k === 'style') throw new Error(`s(): refusing attribute ${k}`);
    el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---------------------------------------------------------------- session

export const session = { csrf: null, authRequired: false, loggedIn: false };

export async function loadSession() {
  const r = await fetch('/ui/session', { credentials: 'same-origin' });
  const j = await r.json();
  session.csrf = j.csrf;
  session.authRequired = j.auth_required;
  session.loggedIn = j.logged_in;
  return session;
}

// -------------------------------------------------------------------- api

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function query(q) {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x));
    else p.append(k, String(v));
  }
  const t = p.toString();
  return t ? `?${t}` : '';
}

async function call(method, path, body, q) {
  const headers = {};
  if (method !== 'GET') {
    if (session.csrf) headers['X-CSRF-Token'] = session.csrf;
  }
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path + query(q), init);
  const text = await r.text();
  let j = null;
  try { j = text ? JSON.parse(text) : null; } catch { j = text; }
  if (!r.ok) {
    const e = (j && j.error) || {};
    if (r.status === 401 && session.authRequired) location.hash = '#/login';
    throw new ApiError(r.status, e.code || 'http', e.message || `HTTP ${r.status}`);
  }
  return j;
}

/** The JSON API: api.get('/v1/queues'), api.post('/v1/jobs/x/retry', {...}). */
export const api = {
  get: (path, q) => call('GET', path, undefined, q),
  post: (path, body, q) => call('POST', path, body === undefined ? {} : body, q),
  put: (path, body) => call('PUT', path, body === undefined ? {} : body),
  patch: (path, body) => call('PATCH', path, body === undefined ? {} : body),
  del: (path, body) => call('DELETE', path, body),
};

// ------------------------------------------------------------- formatting

const pad = (n) => String(n).padStart(2, '0');

/** Seconds since the epoch as "2026-11-23 18:00:01Z" (UTC). */
export function fmtTime(secs) {
  if (secs === null || secs === undefined || secs === 0) return '—';
  const d = new Date(secs * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}Z`;
}

/** A duration in seconds as "850 ms", "12.3 s", "4 min 2 s", "3 h 5 min". */
export function fmtDur(secs) {
  if (secs === null || secs === undefined || Number.isNaN(secs)) return '—';
  const a = Math.abs(secs);
  const sign = secs < 0 ? '-' : '';
  if (a < 1) return `${sign}${Math.round(a * 1000)} ms`;
  if (a < 60) return `${sign}${a.toFixed(a < 10 ? 2 : 1)} s`;
  if (a < 3600) return `${sign}${Math.floor(a / 60)} min ${Math.round(a % 60)} s`;
  if (a < 86400) return `${sign}${Math.floor(a / 3600)} h ${Math.round((a % 3600) / 60)} min`;
  return `${sign}${Math.floor(a / 86400)} d ${Math.round((a % 86400) / 3600)} h`;
}

/** Seconds now (the browser's clock). */
export const now = () => Date.now() / 1000;

/** "3 min ago" / "in 5 s" relative to now. */
export function fmtAgo(secs) {
  if (!secs) return '—';
  const d = now() - secs;
  return d >= 0 ? `${fmtDur(d)} ago` : `in ${fmtDur(-d)}`;
}

/** A time element: absolute time, relative in the tooltip. */
export function time(secs) {
  return h('time', { title: fmtAgo(secs), datetime: secs ? new Date(secs * 1000).toISOString() : null }, fmtTime(secs));
}

/** Pretty-printed JSON as a <pre> (text, never markup). */
export function jsonBlock(value) {
  let text;
  if (typeof value === 'string') {
    try { text = JSON.stringify(JSON.parse(value), null, 2); } catch { text = value; }
  } else {
    text = JSON.stringify(value, null, 2);
  }
  return h('pre', { class: 'json' }, text);
}

/** A state badge. */
export function badge(state) {
  return h('span', { class: `badge state-${String(state).replace(/[^a-z_-]/gi, '')}` }, String(state));
}

export const jobLink = (jid) => h('a', { href: `#/jobs/${enc(jid)}`, class: 'jid' }, jid);
export const queueLink = (q) => h('a', { href: `#/queues/${enc(q)}` }, q);
export const workerLink = (w) => h('a', { href: `#/workers/${enc(w)}` }, w);
export const tagLink = (t) => h('a', { href: `#/tags/${enc(t)}`, class: 'tag' }, t);

// ------------------------------------------------------------- components

/**
 * A table: columns = [{title, cell: (row) => Node|string, class?}].
 * Rows are arbitrary objects; `opts.empty` is the text when there are none.
 */
export function table(columns, rows, opts = {}) {
  const head = h('thead', h('tr', columns.map((c) => h('th', { class: c.class }, c.title))));
  const body = h('tbody');
  if (!rows.length) {
    body.appendChild(h('tr', h('td', { colspan: columns.length, class: 'empty' }, opts.empty || 'Nothing here.')));
  }
  for (const r of rows) {
    body.appendChild(h('tr', { 'data-key': opts.key ? opts.key(r) : null },
      columns.map((c) => h('td', { class: c.class }, c.cell(r)))));
  }
  return h('table', { class: `grid ${opts.class || ''}` }, head, body);
}

/**
 * Pager links for an offset/limit listing: total may be unknown (null),
 * then "next" shows when a full page came back.
 */
export function pager({ offset, limit, total, shown, href }) {
  const prev = offset > 0 ? h('a', { href: href(Math.max(0, offset - limit)), class: 'prev' }, '← previous') : null;
  const more = total === null || total === undefined ? shown >= limit : offset + shown < total;
  const next = more ? h('a', { href: href(offset + limit), class: 'next' }, 'next →') : null;
  const range = shown ? `${offset + 1}–${offset + shown}${total !== null && total !== undefined ? ` of ${total}` : ''}` : '';
  return h('div', { class: 'pager' }, prev, h('span', { class: 'range' }, range), next);
}

/** Tabs: items = [{key, label, href}]. */
export function tabs(items, active) {
  return h('nav', { class: 'tabs' }, items.map((t) =>
    h('a', { href: t.href, class: t.key === active ? 'active' : null, 'data-tab': t.key }, t.label)));
}

/** A transient message at the corner of the page. */
export function toast(text, kind = 'info') {
  const box = document.getElementById('toasts');
  const t = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  box.appendChild(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 3000);
}

/** An in-page confirmation (never a browser dialog): resolves true or false. */
export function confirmModal(text, okLabel = 'Confirm') {
  return new Promise((resolve) => {
    const done = (v) => { overlay.remove(); resolve(v); };
    const ok = h('button', { class: 'danger', 'data-confirm': 'ok', on: { click: () => done(true) } }, okLabel);
    const overlay = h('div', { class: 'modal-overlay', role: 'dialog', 'aria-modal': 'true' },
      h('div', { class: 'modal' },
        h('p', text),
        h('div', { class: 'actions' },
          h('button', { 'data-confirm': 'cancel', on: { click: () => done(false) } }, 'Cancel'), ok)));
    document.body.appendChild(overlay);
    ok.focus();
  });
}

/**
 * A button that runs an async action, disables itself meanwhile, shows a
 * toast with the result or the error, then calls opts.after (e.g. refresh).
 */
export function actionButton(label, action, opts = {}) {
  const b = h('button', { class: opts.class, 'data-action': opts.name || null, title: opts.title }, label);
  b.addEventListener('click', async () => {
    if (opts.confirm && !(await confirmModal(opts.confirm, label))) return;
    b.disabled = true;
    try {
      const r = await action();
      if (opts.done) toast(typeof opts.done === 'function' ? opts.done(r) : opts.done, 'ok');
      if (opts.after) await opts.after(r);
    } catch (e) {
      toast(`${label}: ${e.message}`, 'error');
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/** A small inline form: fields = [{name, placeholder, type, value}]. */
export function inlineForm(fields, submitLabel, onSubmit, opts = {}) {
  const inputs = fields.map((f) => h('input', {
    name: f.name, placeholder: f.placeholder || f.name, type: f.type || 'text',
    value: f.value, required: f.required, list: f.list, step: f.step, 'aria-label': f.label || f.placeholder || f.name,
  }));
  const form = h('form', { class: `inline ${opts.class || ''}`, 'data-form': opts.name || null }, inputs,
    h('button', { type: 'submit' }, submitLabel));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const values = Object.fromEntries(inputs.map((i) => [i.name, i.value]));
    const btn = form.querySelector('button');
    btn.disabled = true;
    try {
      await onSubmit(values);
    } catch (e) {
      toast(`${submitLabel}: ${e.message}`, 'error');
    } finally {
      btn.disabled = false;
    }
  });
  return form;
}

/** A labelled figure for summary cards. */
export function stat(label, value, cls) {
  return h('div', { class: `stat ${cls || ''}`, 'data-stat': label }, h('div', { class: 'value' }, String(value)), h('div', { class: 'label' }, label));
}

/** An error box for a failed page load. */
export function errorBox(e) {
  return h('div', { class: 'error-box', role: 'alert' }, `Could not load: ${e.message}`);
}

// ------------------------------------------------------------------ charts

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];

/**
 * A line chart: series = [{name, points: [[x, y], ...]}] (y null = gap).
 * opts: {height, yFormat, xFormat, title}.
 */
export function lineChart(series, opts = {}) {
  const W = 640, H = opts.height || 200, L = 60, R = 10, T = 10, B = 28;
  const pts = series.flatMap((sr) => sr.points.filter((p) => p[1] !== null && p[1] !== undefined));
  const wrap = h('figure', { class: 'chart' }, opts.title ? h('figcaption', opts.title) : null);
  if (!pts.length) { wrap.appendChild(h('p', { class: 'muted' }, 'No data in this range.')); return wrap; }
  // Gaps (y null) still span the x axis: a range with few data shows as such.
  const xs = series.flatMap((sr) => sr.points.map((p) => p[0])), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1;
  const y1 = Math.max(...ys, 0) || 1;
  const X = (x) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const Y = (y) => T + (1 - y / y1) * (H - T - B);
  const yf = opts.yFormat || ((v) => String(Math.round(v * 100) / 100));
  const xf = opts.xFormat || ((v) => fmtTime(v).slice(11, 16));
  const svgEl = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img' });
  for (let i = 0; i <= 4; i++) {
    const v = (y1 * i) / 4;
    svgEl.appendChild(s('line', { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: 'grid-line' }));
    svgEl.appendChild(s('text', { x: L - 4, y: Y(v) + 4, 'text-anchor': 'end', class: 'axis' }, yf(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const v = x0 + ((x1 - x0) * i) / 4;
    const anchor = i === 0 ? 'start' : i === 4 ? 'end' : 'middle';
    svgEl.appendChild(s('text', { x: X(v), y: H - 8, 'text-anchor': anchor, class: 'axis' }, xf(v)));
  }
  series.forEach((sr, i) => {
    const color = PALETTE[i % PALETTE.length];
    let d = '';
    let pen = false;
    for (const [x, y] of sr.points) {
      if (y === null || y === undefined) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
      pen = true;
    }
    svgEl.appendChild(s('path', { d, fill: 'none', stroke: color, 'stroke-width': 2, 'data-series': sr.name }));
    for (const [x, y] of sr.points) {
      if (y === null || y === undefined) continue;
      svgEl.appendChild(s('circle', { cx: X(x), cy: Y(y), r: 2.5, fill: color },
        s('title', {}, `${sr.name}: ${yf(y)} at ${fmtTime(x)}`)));
    }
  });
  wrap.appendChild(svgEl);
  wrap.appendChild(h('div', { class: 'legend' }, series.map((sr, i) =>
    h('span', { class: `key key-${i % PALETTE.length}` }, sr.name))));
  return wrap;
}

/** A bar chart: bars = [{label, value}]. */
export function barChart(bars, opts = {}) {
  const W = 640, H = opts.height || 160, L = 50, B = 28, T = 10;
  const wrap = h('figure', { class: 'chart' }, opts.title ? h('figcaption', opts.title) : null);
  if (!bars.length || bars.every((b) => !b.value)) { wrap.appendChild(h('p', { class: 'muted' }, 'No data.')); return wrap; }
  const max = Math.max(...bars.map((b) => b.value)) || 1;
  const bw = (W - L) / bars.length;
  const svgEl = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img' });
  svgEl.appendChild(s('text', { x: L - 4, y: T + 8, 'text-anchor': 'end', class: 'axis' }, String(max)));
  bars.forEach((b, i) => {
    const bh = ((H - B - T) * b.value) / max;
    svgEl.appendChild(s('rect', { x: L + i * bw + 1, y: H - B - bh, width: Math.max(1, bw - 2), height: bh, class: 'bar' },
      s('title', {}, `${b.label}: ${b.value}`)));
    if (bars.length <= 24 || i % Math.ceil(bars.length / 12) === 0) {
      svgEl.appendChild(s('text', { x: L + i * bw + bw / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis' }, b.label));
    }
  });
  wrap.appendChild(svgEl);
  return wrap;
}

// -------------------------------------------------------------------- live

const liveListeners = new Set();
let source = null;
let liveTimer = null;

/** Starts the SSE stream (once); listeners are called at most every 500 ms. */
export function startLive() {
  if (source) return;
  const dot = document.getElementById('live');
  // ql:log carries one event per job change (put, completed, failed,
  // canceled, ...); a pop of an untracked job writes none, so the stream
  // also carries the lifecycle events (dequeued, perform_started, ...).
  source = new EventSource('/v1/events?lifecycle=true', { withCredentials: true });
  source.onopen = () => { dot.className = 'live on'; dot.title = 'Live: updates arrive as jobs change'; };
  source.onerror = () => { dot.className = 'live off'; dot.title = 'Live updates disconnected; retrying'; };
  source.addEventListener('ql:log', (ev) => fire(ev));
  source.addEventListener('clew:lifecycle', (ev) => fire(ev));
}

function fire(ev) {
  if (liveTimer) return;
  liveTimer = setTimeout(() => {
    liveTimer = null;
    for (const fn of liveListeners) {
      try { fn(ev); } catch (e) { console.error(e); }
    }
  }, 500);
}

/** Calls fn when jobs change; returns the function that stops it. */
export function onLive(fn) {
  liveListeners.add(fn);
  return () => liveListeners.delete(fn);
}

/** Reads the current hash route's query parameters. */
export function hashQuery() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i >= 0 ? location.hash.slice(i + 1) : '');
}

/** A hash link with query parameters: hashHref('#/queues/x', {state: 'failed'}). */
export function hashHref(base, q) {
  return base + query(q);
}
