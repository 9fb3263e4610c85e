// Page: tags (#/tags?offset=N: a search form and the most used tags,
// paged, each with its job count; #/tags/TAG?offset=N: the jobs carrying
// a tag, paged, with their state, class and queue). Refreshes live.
import {
  h, mount, api, enc, table, pager, jobLink, queueLink, tagLink, badge, time, hashHref, stat,
} from '../core.js';

const TAGS_PAGE = 50;
const JOBS_PAGE = 25;

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

const offsetOf = (query) => Math.max(0, parseInt(query.get('offset') || '0', 10) || 0);
const tagHref = (t) => `#/tags/${enc(t)}`;
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The search form: goes to the tag's page. */
function searchForm(value) {
  const input = h('input', {
    name: 'tag', type: 'search', placeholder: 'Find jobs by tag', 'aria-label': 'Tag', value, required: true,
  });
  const form = h('form', { class: 'inline tag-search', 'data-form': 'tag-search' }, input,
    h('button', { type: 'submit', class: 'primary' }, 'Search'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (t) location.hash = tagHref(t);
  });
  return form;
}

// ------------------------------------------------------------ the list

async function listPage(root, query) {
  const offset = offsetOf(query);
  const tags = await api.get('/v1/tags', { offset, count: TAGS_PAGE });
  const totals = await Promise.all(tags.map((t) => api.get(`/v1/tags/${enc(t)}/jobs`, { offset: 0, count: 0 })));
  const rows = tags.map((tag, i) => ({ tag, total: totals[i].total }));
  const cols = [
    { title: 'Tag', cell: (r) => tagLink(r.tag) },
    { title: 'Jobs', class: 'num', cell: (r) => h('a', { href: tagHref(r.tag), 'data-col': 'total' }, String(r.total)) },
  ];
  mount(root,
    h('div', { class: 'page-head' }, h('h1', 'Tags'), searchForm('')),
    h('section', { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h2', 'Most used tags'),
        h('span', { class: 'muted' }, 'Tags carried by at least two jobs, most used first.')),
      table(cols, rows, { key: (r) => r.tag, class: 'tags', empty: 'No tag is carried by two jobs or more. Search a tag above.' }),
      pager({ offset, limit: TAGS_PAGE, total: null, shown: tags.length, href: (o) => hashHref('#/tags', { offset: o || null }) })));
}

// ------------------------------------------------------------ one tag

async function jobsOf(jids) {
  if (!jids.length) return [];
  const docs = await api.get('/v1/jobs', { jids: jids.join(',') });
  const by = new Map(docs.map((d) => [d.jid, d]));
  return jids.map((j) => by.get(j) || { jid: j, gone: true });
}

const lastChange = (j) => (j.history && j.history.length ? j.history[j.history.length - 1].when : null);

async function tagPage(root, tag, query) {
  const offset = offsetOf(query);
  const page = await api.get(`/v1/tags/${enc(tag)}/jobs`, { offset, count: JOBS_PAGE });
  const jobs = await jobsOf(page.jobs);
  const cols = [
    { title: 'Job', cell: (j) => jobLink(j.jid) },
    { title: 'State', cell: (j) => (j.gone ? h('span', { class: 'muted' }, 'gone') : badge(j.state)) },
    { title: 'Class', cell: (j) => h('span', { class: 'klass' }, j.klass || '—') },
    { title: 'Queue', cell: (j) => (j.queue ? queueLink(j.queue) : '—') },
    { title: 'Priority', class: 'num', cell: (j) => (j.gone ? '—' : String(j.priority)) },
    { title: 'Tags', cell: (j) => (j.tags || []).map((t) => (t === tag ? h('span', { class: 'tag current' }, t) : tagLink(t))) },
    { title: 'Last change', cell: (j) => time(lastChange(j)) },
  ];
  mount(root,
    h('div', { class: 'page-head' },
      h('h1', h('a', { href: '#/tags' }, 'Tags'), ' / ', h('span', { class: 'name' }, tag)),
      h('span', { class: 'muted', 'data-total': page.total }, plural(page.total, 'job')),
      searchForm(tag)),
    h('div', { class: 'cards' }, stat('Jobs tagged', page.total)),
    table(cols, jobs, { key: (j) => j.jid, class: 'jobs tagged', empty: 'No job carries this tag.' }),
    pager({ offset, limit: JOBS_PAGE, total: page.total, shown: page.jobs.length, href: (o) => hashHref(tagHref(tag), { offset: o || null }) }));
}

export default async function render(root, params, query, ctx) {
  liveOnce(ctx, ctx.refresh);
  if (params.tag === undefined) {
    ctx.setTitle('Tags');
    return listPage(root, query);
  }
  ctx.setTitle(`Tag ${params.tag}`);
  return tagPage(root, params.tag, query);
}
