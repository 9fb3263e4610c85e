// The event explorer (#/events): lifecycle events seeded at known times
// (X-Clew-Now, near the browser's clock so the presets apply), so every
// figure shown is hand-computed: counts, p50/p95/p99/max/mean of time in
// queue and time to perform (nearest rank), the SLA share, per group and
// per time bucket; filters through the form and through shared URLs,
// presets, metadata filters, breakdown by a metadata key, cursor paging;
// hostile classes, metadata and error messages render as text.
import { test, run, api, put, open, assert, shot, waitText } from './lib.mjs';

const XSS_A = '<img src=x onerror="window.__xss=1">';
const XSS_B = '"><script>window.__xss=2</script>';
/** T0: a whole minute, ten minutes ago (in the last 15 min and hour). */
const T0 = Math.floor(Date.now() / 60000) * 60 - 600;

/**
 * Opens `hash` with a fresh document load: going from one dashboard hash
 * to another is a same-document navigation, after which the previous
 * page's content would satisfy the waits.
 */
async function reopen(page, hash) {
  await page.goto('about:blank');
  return open(page, hash);
}
const fmt = (secs) => new Date(secs * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
const W = 'ew';

/** A job put at `at`, popped `wait` s later, then completed (or failed) `run` s after that. */
async function lifecycle(queue, klass, metadata, at, wait, runFor, failWith) {
  const jid = await put(queue, klass, { at }, { metadata }, at);
  const popped = await api('POST', `/v1/queues/${queue}/pop`, { worker: W, count: 1 }, { now: at + wait });
  assert.equal(popped[0].jid, jid);
  if (failWith) {
    await api('POST', `/v1/jobs/${jid}/fail`, { worker: W, group: 'boom', message: failWith }, { now: at + wait + runFor });
  } else {
    await api('POST', `/v1/jobs/${jid}/complete`, { worker: W }, { now: at + wait + runFor });
  }
  return jid;
}

const jobs = {};

/**
 * In the last hour (T0 = 10 min ago), 16 events:
 *   A Pdf   eq  strategy=fast   wait 2  run 3
 *   B Pdf   eq  strategy=slow   wait 4  run 10
 *   C Pdf   eq  strategy=fast   wait 1  run 2 (fails: XSS_A)
 *   D XSS_A eq2 strategy=XSS_B  wait 6  run 8
 * Two hours before: E Old eq (no metadata) wait 100 run 50.
 * Three hours before: 60 jobs put in bq (enqueued only).
 */
async function seed() {
  for (let i = 0; i < 60; i++) await put('bq', 'Bulk', { i }, {}, T0 - 3 * 3600 + i);
  jobs.E = await lifecycle('eq', 'Old', undefined, T0 - 7200, 100, 50);
  jobs.A = await lifecycle('eq', 'Pdf', { strategy: 'fast' }, T0, 2, 3);
  jobs.B = await lifecycle('eq', 'Pdf', { strategy: 'slow' }, T0 + 10, 4, 10);
  jobs.C = await lifecycle('eq', 'Pdf', { strategy: 'fast' }, T0 + 20, 1, 2, XSS_A);
  jobs.D = await lifecycle('eq2', XSS_A, { strategy: XSS_B }, T0 + 30, 6, 8);
}

/** Waits until the Events figure reads exactly `n`. */
const waitCount = (page, n) => page.waitForFunction((want) =>
  document.querySelector('[data-stat="Events"] .value')?.textContent === want, n);
const text = (page, sel) => page.$eval(sel, (e) => e.textContent);
/** The five figures of a summary block: p50, p95, p99, max, mean. */
const figures = (page, block) => page.$$eval(`[data-summary="${block}"] .figure .fig-value`, (f) => f.map((x) => x.textContent));
const groupRow = (page, group) => page.evaluate((g) => {
  const row = [...document.querySelectorAll('table.by-group tbody tr')].find((r) => r.dataset.key === g);
  return row ? Object.fromEntries([...row.querySelectorAll('[data-col]')].map((c) => [c.dataset.col, c.textContent])) : null;
}, group);
const rowKeys = (page) => page.$$eval('table.explorer tbody tr[data-key]', (rs) => rs.map((r) => r.dataset.key));

test('the last hour: figures, charts and events exactly', async ({ page }) => {
  await seed();
  await open(page, '#/events');
  await page.waitForSelector('table.explorer');
  // Events: 4 jobs x (enqueued, dequeued, perform_started, perform_finished | failed).
  assert.equal(await text(page, '[data-stat="Events"] .value'), '16');
  // Waits 2, 4, 1, 6 → sorted 1 2 4 6: p50 = rank 2 = 2, p95 = p99 = max = 6, mean 3.25.
  assert.deepEqual(await figures(page, 'time_in_queue'), ['2.00 s', '6.00 s', '6.00 s', '6.00 s', '3.25 s']);
  assert.equal(await text(page, '[data-summary="time_in_queue"] [data-fig="count"]'), '4 dequeues');
  // Runs 3, 10, 2, 8 → sorted 2 3 8 10: p50 = 3, p95 = p99 = max = 10, mean 5.75.
  assert.deepEqual(await figures(page, 'time_to_perform'), ['3.00 s', '10.0 s', '10.0 s', '10.0 s', '5.75 s']);
  assert.equal(await text(page, '[data-summary="time_to_perform"] [data-fig="count"]'), '4 performs');
  // The table: newest first, as the API pages them.
  const since = Math.floor(Date.now() / 1000) - 3600;
  const api16 = await api('GET', `/v1/events/search?since=${since - 5}&order=desc&limit=50`);
  assert.equal(api16.events.length, 16);
  assert.deepEqual(await rowKeys(page), api16.events.map((e) => String(e.seq)));
  // D's dequeue: class, metadata and timings as text.
  const dq = api16.events.find((e) => e.jid === jobs.D && e.event_type === 'dequeued');
  const cells = await page.$$eval(`table.explorer tr[data-key="${dq.seq}"] td`, (t) => t.map((x) => x.textContent));
  assert.deepEqual(cells.slice(0, 7), ['dequeued', fmt(T0 + 36), 'eq2', XSS_A, jobs.D, '6.00 s', '—']);
  assert.equal(cells[8], `strategy=${XSS_B}`);
  assert.match(cells[7], / #\d+$/, 'host and process');
  // C's failure with its (hostile) message.
  const failed = api16.events.find((e) => e.jid === jobs.C && e.event_type === 'failed');
  const fcells = await page.$$eval(`table.explorer tr[data-key="${failed.seq}"] td`, (t) => t.map((x) => x.textContent));
  assert.deepEqual(fcells.slice(0, 7), ['failed', fmt(T0 + 23), 'eq', 'Pdf', jobs.C, '—', '2.00 s']);
  assert.equal(fcells[9], `boom: ${XSS_A}`);
  // Charts: one-minute buckets; all four waits fall in T0's minute.
  const dots = await page.$$eval('figure.chart', (fs) => fs.map((f) => [f.querySelector('figcaption').textContent,
    [...f.querySelectorAll('circle title')].map((t) => t.textContent)]));
  assert.equal(dots[0][0], 'Time in queue');
  assert.deepEqual(dots[0][1], [`p50: 2.00 s at ${fmt(T0)}`, `p95: 6.00 s at ${fmt(T0)}`, `p99: 6.00 s at ${fmt(T0)}`]);
  assert.equal(dots[1][0], 'Time to perform');
  assert.deepEqual(dots[1][1], [`p50: 3.00 s at ${fmt(T0)}`, `p95: 10.0 s at ${fmt(T0)}`, `p99: 10.0 s at ${fmt(T0)}`]);
  assert.equal(await page.$$eval('table.explorer img, table.explorer script', (x) => x.length), 0);
  await shot(page, 'events');
});

test('filters through the form land in the URL; breakdown by a metadata key; SLA', async ({ page }) => {
  await open(page, '#/events');
  await page.waitForSelector('form.explorer-form');
  await page.fill('form.explorer-form input[name="queue"]', 'eq');
  await page.click('[data-action="add-meta"]');
  await page.fill('.meta-row input[name="meta-key"]', 'strategy');
  await page.fill('.meta-row input[name="meta-value"]', 'fast');
  await page.selectOption('form.explorer-form select[name="by"]', 'meta');
  await page.fill('form.explorer-form input[name="by-key"]', 'strategy');
  await page.fill('form.explorer-form input[name="sla"]', '1.5');
  await page.click('form.explorer-form button[type="submit"]');
  await page.waitForFunction(() => location.hash.includes('meta=strategy%3Dfast'));
  const hash = await page.evaluate(() => location.hash);
  const q = new URLSearchParams(hash.split('?')[1]);
  assert.deepEqual([q.get('queue'), q.getAll('meta'), q.get('by'), q.get('sla')], ['eq', ['strategy=fast'], 'meta:strategy', '1.5']);
  await waitCount(page, '8');
  // A and C: waits 2, 1 → p50 1, p95 2; runs 3, 2 → p50 2, p95 3; within 1.5 s: 1 of 2.
  assert.deepEqual(await figures(page, 'time_in_queue'), ['1.00 s', '2.00 s', '2.00 s', '2.00 s', '1.50 s']);
  assert.deepEqual(await figures(page, 'time_to_perform'), ['2.00 s', '3.00 s', '3.00 s', '3.00 s', '2.50 s']);
  assert.equal(await text(page, '[data-stat="SLA"] .value'), '50.0%');
  assert.equal(await text(page, '[data-stat="SLA"] .label'), 'within 1.5 s · 1 of 2');
  const fast = await groupRow(page, 'fast');
  assert.equal(fast.count, '8');
  assert.equal(fast['time_in_queue.p50'], '1.00 s');
  assert.equal(fast['time_to_perform.max'], '3.00 s');
  assert.equal(fast.sla, '50.0%');
  // The same URL, opened afresh (shared): the same view, the form filled in.
  await reopen(page, hash);
  await page.waitForSelector('table.by-group');
  assert.equal(await text(page, '[data-stat="Events"] .value'), '8');
  assert.equal(await page.inputValue('form.explorer-form input[name="queue"]'), 'eq');
  assert.equal(await page.inputValue('.meta-row input[name="meta-value"]'), 'fast');
  assert.equal(await page.inputValue('form.explorer-form input[name="by-key"]'), 'strategy');
  // Removing the metadata filter: every strategy of eq, one row per group.
  await page.click('.meta-row [data-action="remove-meta"]');
  await page.click('form.explorer-form button[type="submit"]');
  await waitCount(page, '12');
  assert.deepEqual(await page.$$eval('table.by-group tbody tr', (rs) => rs.map((r) => r.dataset.key)), ['fast', 'slow']);
  const slow = await groupRow(page, 'slow');
  assert.deepEqual([slow.count, slow['time_in_queue.p50'], slow['time_to_perform.p99'], slow.sla], ['4', '4.00 s', '10.0 s', '0%']);
});

test('breakdown with a hostile group; custom range in the URL; chart per group', async ({ page }) => {
  // D's and B's dequeues only: [T0+14, T0+37).
  const hash = `#/events?since=${T0 + 14}&until=${T0 + 37}&type=dequeued&by=meta%3Astrategy&pct=p50`;
  await open(page, hash);
  await page.waitForSelector('table.by-group');
  assert.equal(await text(page, '[data-stat="Events"] .value'), '3');
  assert.deepEqual(await page.$$eval('table.by-group tbody tr', (rs) => rs.map((r) => r.dataset.key)), [XSS_B, 'fast', 'slow']);
  assert.equal(await page.$eval('table.by-group tbody tr:first-child .group-name', (e) => e.textContent), XSS_B);
  assert.equal((await groupRow(page, XSS_B))['time_in_queue.max'], '6.00 s');
  assert.equal((await groupRow(page, 'fast'))['time_in_queue.max'], '1.00 s');
  assert.equal(await page.inputValue('form.explorer-form input[name="since"]'), fmt(T0 + 14).replace('Z', ''));
  assert.ok((await text(page, '[data-window]')).startsWith(`${fmt(T0 + 14)} to ${fmt(T0 + 37)}`));
  // One line per group in the breakdown charts (p50 chosen), names as text.
  const legend = await page.$$eval('figure.chart:first-of-type .legend .key', (k) => k.map((x) => x.textContent));
  assert.deepEqual(legend.sort(), [XSS_B, 'fast', 'slow'].sort());
  assert.equal(await text(page, 'figure.chart figcaption'), 'Time in queue, p50');
  const dots = await page.$$eval('figure.chart:first-of-type circle title', (t) => t.map((x) => x.textContent));
  assert.deepEqual(dots.sort(), [`${XSS_B}: 6.00 s at ${fmt(T0 + 36)}`, `fast: 1.00 s at ${fmt(T0 + 21)}`, `slow: 4.00 s at ${fmt(T0 + 14)}`].sort());
  assert.equal(await page.$$eval('#main img, #main script', (x) => x.length), 0);
  await shot(page, 'events-breakdown');
});

test('presets, a metadata value as a filter link, a class filter', async ({ page }) => {
  await open(page, '#/events?range=1d');
  await page.waitForSelector('table.explorer');
  // The day: the hour's 16, E's 4 and the 60 bulk puts; waits 1 2 4 6 100: p50 = rank 3 = 4.
  assert.equal(await text(page, '[data-stat="Events"] .value'), '80');
  assert.deepEqual(await figures(page, 'time_in_queue'), ['4.00 s', '1 min 40 s', '1 min 40 s', '1 min 40 s', '22.6 s']);
  await page.click('.segmented a[data-range="15m"]');
  await page.waitForFunction(() => location.hash.includes('range=15m'));
  await waitCount(page, '16');
  assert.equal(await page.$eval('.segmented a.active', (a) => a.dataset.range), '15m');
  // Clicking a metadata value filters on it.
  await page.click('table.explorer a.kv:text("strategy=slow")');
  await page.waitForFunction(() => location.hash.includes('meta=strategy%3Dslow'));
  await waitCount(page, '4');
  assert.deepEqual(await figures(page, 'time_in_queue'), ['4.00 s', '4.00 s', '4.00 s', '4.00 s', '4.00 s']);
  assert.ok((await page.$$eval('table.explorer tbody tr td:nth-child(5)', (t) => t.map((x) => x.textContent))).every((j) => j === jobs.B));
  // The hostile class as a filter, through the form.
  await reopen(page, '#/events');
  await page.waitForSelector('form.explorer-form');
  await page.fill('form.explorer-form input[name="klass"]', XSS_A);
  await page.selectOption('form.explorer-form select[name="type"]', 'perform_finished');
  await page.click('form.explorer-form button[type="submit"]');
  await page.waitForFunction(() => location.hash.includes('type=perform_finished'));
  await waitCount(page, '1');
  assert.deepEqual(await figures(page, 'time_to_perform'), ['8.00 s', '8.00 s', '8.00 s', '8.00 s', '8.00 s']);
  assert.equal(await page.$$eval('table.explorer tbody tr[data-key]', (r) => r.length), 1);
});

test('events are paged with cursors, newest first', async ({ page }) => {
  await open(page, '#/events?range=1d&queue=bq');
  await page.waitForSelector('table.explorer');
  assert.equal(await text(page, '[data-stat="Events"] .value'), '60');
  const all = (await api('GET', `/v1/events/search?queue=bq&order=desc&limit=100`)).events.map((e) => String(e.seq));
  assert.equal(all.length, 60);
  assert.deepEqual(await rowKeys(page), all.slice(0, 50));
  assert.equal(await page.$('.pager a.prev'), null);
  await page.click('.pager a.next');
  await page.waitForFunction(() => document.querySelectorAll('table.explorer tbody tr[data-key]').length === 10);
  assert.deepEqual(await rowKeys(page), all.slice(50));
  assert.ok((await text(page, '.pager .range')).startsWith(`10 events, ${fmt(T0 - 3 * 3600)}`));
  assert.equal(await page.$('.pager a.next'), null);
  await page.click('.pager a.prev');
  await page.waitForFunction(() => document.querySelectorAll('table.explorer tbody tr[data-key]').length === 50);
  assert.deepEqual(await rowKeys(page), all.slice(0, 50));
  assert.equal(await page.$('.pager a.prev'), null, 'no newer page');
});

test('bad input is refused in the form', async ({ page }) => {
  await open(page, `#/events?since=${T0}&until=${T0 + 60}`);
  await page.waitForSelector('form.explorer-form');
  await page.fill('form.explorer-form input[name="until"]', fmt(T0 - 60).replace('Z', ''));
  await page.click('form.explorer-form button[type="submit"]');
  await waitText(page, '.form-error', 'Until: expected a time after since');
  await page.fill('form.explorer-form input[name="until"]', 'yesterday');
  await page.click('form.explorer-form button[type="submit"]');
  await waitText(page, '.form-error', 'Until: expected a UTC time as YYYY-MM-DD HH:MM:SS');
  await page.fill('form.explorer-form input[name="until"]', fmt(T0 + 60).replace('Z', ''));
  await page.selectOption('form.explorer-form select[name="by"]', 'meta');
  await page.click('form.explorer-form button[type="submit"]');
  await waitText(page, '.form-error', 'Break down by: expected a metadata key');
});

await run();
