// Page: batches (#/batches): every batch, newest first and paged, with a
// progress bar (complete, failed and canceled shares of its total) and a
// link to its callback job once put; and one batch (#/batches/ID): its
// counts, description, metadata, callback and the jobs it still has.
// Refreshes live.
import {
  h, mount, api, enc, stat, table, pager, jobLink, queueLink, time, badge, jsonBlock, hashHref,
  actionButton,
} from '../core.js';

const PAGE = 25;

/** The progress bar of a batch: one segment per finished outcome. */
export function progressBar(b) {
  const total = b.total || 0;
  const pct = (n) => (total ? (100 * n) / total : 0);
  // Widths through the CSSOM: the CSP blocks style attributes.
  const seg = (n, cls) => {
    if (n <= 0) return null;
    const el = h('span', { class: `seg ${cls}`, title: `${n} ${cls}` });
    el.style.width = `${pct(n)}%`;
    return el;
  };
  const done = b.complete + b.failed + b.canceled;
  return h('div', { class: 'batch-progress', 'data-progress': `${done}/${total}` },
    h('div', { class: 'track', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': String(total), 'aria-valuenow': String(done) },
      seg(b.complete, 'complete'), seg(b.failed, 'failed'), seg(b.canceled, 'canceled')),
    h('span', { class: 'muted small' }, `${done}/${total}`));
}

function callbackCell(b) {
  if (b.callback_jid) {
    return h('span', { 'data-col': 'callback' }, jobLink(b.callback_jid), ' ', b.callback_state ? badge(b.callback_state) : h('span', { class: 'muted' }, '(gone)'));
  }
  if (b.callback) return h('span', { class: 'muted', 'data-col': 'callback' }, `${b.callback.klass} in ${b.callback.queue}, when done`);
  return h('span', { class: 'muted', 'data-col': 'callback' }, '—');
}

const batchLink = (id) => h('a', { href: `#/batches/${enc(id)}`, class: 'jid' }, id);

async function list(root, query, ctx) {
  ctx.setTitle('Batches');
  const offset = Math.max(0, parseInt(query.get('offset') || '0', 10) || 0);
  const page = await api.get(`/v1/batches?offset=${offset}&count=${PAGE}`);
  const cols = [
    { title: 'Batch', cell: (b) => h('span', {}, batchLink(b.id), b.description ? h('div', { class: 'muted small' }, b.description) : null) },
    { title: 'Created', cell: (b) => time(b.created) },
    { title: 'Progress', cell: (b) => progressBar(b) },
    { title: 'Pending', class: 'num', cell: (b) => h('span', { 'data-col': 'pending' }, String(b.pending)) },
    { title: 'Complete', class: 'num', cell: (b) => h('span', { 'data-col': 'complete' }, String(b.complete)) },
    { title: 'Failed', class: 'num', cell: (b) => h('span', { 'data-col': 'failed' }, String(b.failed)) },
    { title: 'Canceled', class: 'num', cell: (b) => h('span', { 'data-col': 'canceled' }, String(b.canceled)) },
    { title: 'Callback', cell: callbackCell },
  ];
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Batches')),
    h('div', { class: 'cards' }, stat('Batches', page.total)),
    page.total
      ? h('section', { class: 'panel' },
        table(cols, page.batches, { key: (b) => b.id, class: 'batches' }),
        pager({ offset, limit: PAGE, total: page.total, shown: page.batches.length, href: (o) => hashHref('#/batches', { offset: o || null }) }))
      : h('div', { class: 'panel muted empty-note' }, 'No batches. Create one with ', h('code', 'clew batch create'),
        ' or POST /v1/batches.'));
}

async function one(root, id, query, ctx) {
  ctx.setTitle(`Batch ${id}`);
  const offset = Math.max(0, parseInt(query.get('offset') || '0', 10) || 0);
  const [b, jobs] = await Promise.all([
    api.get(`/v1/batches/${enc(id)}`),
    api.get(`/v1/batches/${enc(id)}/jobs?offset=${offset}&count=${PAGE}`),
  ]);
  const row = (label, value, key) => [h('dt', label), h('dd', { 'data-fact': key }, value)];
  const cb = b.callback;
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Batch ', h('span', { class: 'name' }, b.id)),
      b.pending > 0 ? h('div', { class: 'actions' }, actionButton('Cancel batch', () => api.post(`/v1/batches/${enc(id)}/cancel`, {}), {
        name: 'cancel-batch', class: 'quiet-danger',
        confirm: `Cancel the ${b.pending} unfinished job(s) of batch ${b.id}? Complete jobs stay.`,
        done: `Batch ${b.id} canceled`, after: ctx.refresh,
      })) : null),
    h('div', { class: 'cards' },
      stat('Total', b.total), stat('Pending', b.pending), stat('Complete', b.complete, 'ok'),
      stat('Failed', b.failed, b.failed ? 'bad' : null), stat('Canceled', b.canceled)),
    h('section', { class: 'panel' },
      progressBar(b),
      h('dl', { class: 'facts' },
        row('Description', b.description || h('span', { class: 'muted' }, '—'), 'description'),
        row('Created', time(b.created), 'created'),
        row('Finished', b.finished ? time(b.finished) : h('span', { class: 'muted' }, 'not yet'), 'finished'),
        row('Callback', cb ? h('span', {}, h('span', { class: 'klass' }, cb.klass), ' in ', queueLink(cb.queue)) : h('span', { class: 'muted' }, 'none'), 'callback'),
        row('Callback job', callbackCell(b), 'callback-job')),
      Object.keys(b.metadata || {}).length ? h('div', {}, h('h3', 'Metadata'), jsonBlock(b.metadata)) : null),
    h('section', { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h2', 'Jobs'), h('span', { class: 'muted' }, `${jobs.total} still stored (canceled jobs are deleted, completed ones expire)`)),
      h('ul', { class: 'jid-list' }, jobs.jobs.map((j) => h('li', {}, jobLink(j)))),
      pager({ offset, limit: PAGE, total: jobs.total, shown: jobs.jobs.length, href: (o) => hashHref(`#/batches/${enc(id)}`, { offset: o || null }) })));
}

export default async function render(root, params, query, ctx) {
  ctx.onLive(ctx.refresh);
  if (params.id) return one(root, params.id, query, ctx);
  return list(root, query, ctx);
}
