// Page: config (#/config): every config value with its default and what
// it does; edit a value (PUT), reset it to its default (DELETE, after a
// confirmation), or set another key (such as QUEUE-heartbeat).
import { h, mount, api, enc, table, actionButton, toast, stat } from '../core.js';

// Live refresh (config changes have no SSE event: polls), not while the
// user types in a form.
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

// The keys clew knows, from GET /v1/config-keys (clew_core::config): the
// default, the unit and what it does. `reported` keys are listed by
// GET /v1/config even when unset. Loaded once per page load.
let KNOWN = null;
let QUEUE_KEYS = [];

async function loadKnown() {
  if (KNOWN) return;
  const meta = await api.get('/v1/config-keys');
  KNOWN = Object.fromEntries(meta.keys.map((k) => [k.key, { def: k.default, reported: k.reported, unit: k.unit, text: k.description }]));
  QUEUE_KEYS = meta.queue_keys;
}

/** What a key not in KNOWN does (per-queue keys), or null. */
function patternText(key) {
  const q = QUEUE_KEYS.find((k) => key.endsWith(k.suffix) && key.length > k.suffix.length);
  return q ? `${q.description.replace('the queue', `queue ${key.slice(0, -q.suffix.length)}`)}` : null;
}

const isNumeric = (key) => (KNOWN[key] ? typeof KNOWN[key].def === 'number' : patternText(key) !== null);

/**
 * The rows: every reported key, every other known key, every stored key.
 * GET /v1/config reports defaults as JSON numbers and stored values as
 * strings, so a string value of a numeric key is a stored one.
 */
function rowsOf(cfg) {
  const keys = [...new Set([...Object.keys(KNOWN), ...Object.keys(cfg)])];
  return keys.map((key) => {
    const known = KNOWN[key];
    const present = Object.prototype.hasOwnProperty.call(cfg, key);
    const value = present ? cfg[key] : known.def;
    let set;
    if (!known) set = true;
    else if (!present) set = false;
    else if (typeof known.def === 'number') set = typeof value === 'string';
    else set = String(value) !== String(known.def);
    return { key, value, def: known ? known.def : null, set, text: known ? known.text : patternText(key) };
  }).sort((a, b) => Number(!!KNOWN[b.key]) - Number(!!KNOWN[a.key]) || a.key.localeCompare(b.key));
}

/** Checks a value for a key; returns the error text or null. */
function invalid(key, value) {
  if (value === '') return `${key}: expected a value`;
  if (isNumeric(key) && !Number.isFinite(Number(value))) return `${key}: expected a number, got "${value}"`;
  return null;
}

async function save(key, value, after) {
  const bad = invalid(key, value);
  if (bad) { toast(bad, 'error'); return; }
  const r = await api.put(`/v1/config/${enc(key)}`, { value });
  toast(`${key} set to ${r.value}`, 'ok');
  await after();
}

/** The inline editor of one value. */
function editor(row, after) {
  const input = h('input', { name: 'value', value: String(row.value), 'aria-label': `Value of ${row.key}`, class: isNumeric(row.key) ? 'num-input' : 'text-input' });
  const form = h('form', { class: 'inline config-edit', 'data-form': 'config-edit' }, input, h('button', { type: 'submit' }, 'Save'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = form.querySelector('button');
    btn.disabled = true;
    try { await save(row.key, input.value.trim(), after); } catch (e) { toast(`Save ${row.key}: ${e.message}`, 'error'); } finally { btn.disabled = false; }
  });
  return form;
}

function defaultCell(row) {
  if (row.def === null) return h('span', { class: 'muted' }, 'none');
  const unit = KNOWN[row.key] && KNOWN[row.key].unit;
  return h('span', { class: 'default' }, h('code', String(row.def)), unit ? h('span', { class: 'muted' }, ` ${unit}`) : null);
}

/** The form that sets any key (per-queue keys, or keys clew does not list). */
function addForm(after) {
  const key = h('input', { name: 'key', placeholder: 'key, e.g. reports-heartbeat', 'aria-label': 'Key', required: true });
  const value = h('input', { name: 'value', placeholder: 'value', 'aria-label': 'Value', required: true });
  const form = h('form', { class: 'inline config-add', 'data-form': 'config-add' }, key, value, h('button', { type: 'submit', class: 'primary' }, 'Set'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const k = key.value.trim();
    if (!k) { toast('Key: expected a name', 'error'); return; }
    // Cleared once saved, before the page is drawn again (which keeps
    // what is typed here: see render).
    const cleared = async () => { key.value = ''; value.value = ''; await after(); };
    try { await save(k, value.value.trim(), cleared); } catch (e) { toast(`Set ${k}: ${e.message}`, 'error'); }
  });
  return form;
}

export default async function render(root, params, query, ctx) {
  ctx.setTitle('Config');
  liveOnce(ctx, ctx.refresh);
  await loadKnown();
  const rows = rowsOf(await api.get('/v1/config'));
  const cols = [
    { title: 'Key', cell: (r) => h('div', h('code', { class: 'config-key' }, r.key), r.text ? h('div', { class: 'muted small' }, r.text) : null) },
    { title: 'Value', cell: (r) => h('span', { 'data-col': 'value', class: r.set ? 'value set' : 'value' }, String(r.value)) },
    { title: 'Default', cell: defaultCell },
    { title: 'Status', cell: (r) => h('span', { 'data-col': 'status', class: `badge ${r.set ? 'config-set' : 'config-default'}` }, r.set ? 'set' : 'default') },
    { title: 'Edit', cell: (r) => h('div', { class: 'actions row-actions' }, editor(r, ctx.refresh),
      r.set ? actionButton(r.def === null ? 'Delete' : 'Reset', () => api.del(`/v1/config/${enc(r.key)}`), {
        name: 'reset',
        confirm: r.def === null ? `Delete config key ${r.key}?` : `Reset ${r.key} to its default (${r.def})?`,
        done: r.def === null ? `${r.key} deleted` : `${r.key} reset to ${r.def}`, after: ctx.refresh,
      }) : null) },
  ];
  const changed = rows.filter((r) => r.set).length;
  // A refresh may have started before the user began typing in the form
  // below (a live refresh skips only while a form has focus): what is
  // typed there carries over to the new form instead of being lost.
  // (`root` is the new page, drawn off screen; the form on screen is in #main.)
  const typed = document.querySelector('#main form.config-add');
  const add = addForm(ctx.refresh);
  const focused = typed && typed.contains(document.activeElement) ? document.activeElement.name : null;
  if (typed) {
    for (const name of ['key', 'value']) add.elements[name].value = typed.elements[name].value;
  }
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Config')),
    h('div', { class: 'cards' }, stat('Keys', rows.length), stat('Changed from default', changed)),
    table(cols, rows, { key: (r) => r.key, class: 'config' }),
    h('section', { class: 'panel config-more' },
      h('h2', 'Set another key'),
      h('p', { class: 'muted' }, 'Per-queue keys: ', h('code', 'QUEUE-heartbeat'), ', ', h('code', 'QUEUE-max-concurrency'), '.'),
      add));
  // The page goes on screen when this returns; then the focus goes back.
  if (focused && add.elements[focused]) setTimeout(() => add.elements[focused].focus(), 0);
}
