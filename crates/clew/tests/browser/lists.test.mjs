// Tracked jobs (#/tracked), tags (#/tags, #/tags/TAG), recurring jobs
// (#/recurring) and config (#/config): the data shown exactly, each action
// done through the UI (untrack; search a tag; edit a template's interval
// and priority, remove it; edit, reset and add config values) and checked
// through the API; hostile classes, tags and config values render as text.
import { test, run, api, put, pop, open, assert, shot, waitText, clickConfirm } from './lib.mjs';

const XSS_A = '<img src=x onerror="window.__xss=1">';
const XSS_B = '"><script>window.__xss=2</script>';
const T = Math.floor(Date.now() / 1000);

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
const rowKeys = (page, sel) => page.$$eval(`${sel} tbody tr[data-key]`, (rs) => rs.map((r) => r.dataset.key));
/** The text of the cells of the row `key` of table `sel`. */
const rowCells = (page, sel, key) => page.evaluate(([s, k]) => {
  const row = [...document.querySelectorAll(`${s} tbody tr`)].find((r) => r.dataset.key === k);
  return row ? [...row.querySelectorAll('td')].map((td) => td.textContent) : null;
}, [sel, key]);
/** The text of `[data-col=col]` in the row `key` of table `sel`. */
const col = (page, sel, key, c) => page.evaluate(([s, k, cc]) => {
  const row = [...document.querySelectorAll(`${s} tbody tr`)].find((r) => r.dataset.key === k);
  return row ? row.querySelector(`[data-col="${cc}"]`).textContent : null;
}, [sel, key, c]);
const rowSel = (sel, key) => `${sel} tbody tr[data-key="${key.replace(/["\\]/g, '\\$&')}"]`;
/** GET that answers the status instead of throwing. */
const status = async (path) => (await fetch(process.env.CLEW_URL + path, {
  headers: process.env.CLEW_TOKEN ? { Authorization: `Bearer ${process.env.CLEW_TOKEN}` } : {},
})).status;

// ------------------------------------------------------------------ tracked

test('tracked jobs with their state; untrack; live', async ({ page }) => {
  const waiting = await put('tq', XSS_A, {}, { tags: [XSS_B], priority: 3 }, T - 100);
  const running = await put('tq2', 'Render', {}, {}, T - 90);
  await pop('tq2', 'tw', 1, T - 80);
  await put('tq', 'Untracked', {}, {}, T - 70);
  for (const j of [waiting, running]) await api('PUT', `/v1/jobs/${j}/tracked`);
  await open(page, '#/tracked');
  await page.waitForSelector('table.tracked');
  const tracked = (await api('GET', '/v1/tracked')).jobs.map((j) => j.jid);
  assert.deepEqual((await rowKeys(page, 'table.tracked')), tracked);
  assert.deepEqual(tracked.sort(), [waiting, running].sort());
  assert.deepEqual((await rowCells(page, 'table.tracked', waiting)).slice(0, 8),
    [waiting, 'waiting', XSS_A, 'tq', '—', '3', XSS_B, fmt(T - 100)]);
  assert.deepEqual((await rowCells(page, 'table.tracked', running)).slice(0, 8),
    [running, 'running', 'Render', 'tq2', 'tw', '0', '—', fmt(T - 80)]);
  assert.equal(await page.$eval('[data-stat="Tracked"] .value', (e) => e.textContent), '2');
  assert.equal(await page.$eval('[data-stat="waiting"] .value', (e) => e.textContent), '1');
  assert.equal(await page.$eval('[data-stat="running"] .value', (e) => e.textContent), '1');
  assert.equal(await page.$$eval('table.tracked img, table.tracked script', (x) => x.length), 0);
  await shot(page, 'tracked');
  // Untrack through the UI.
  await page.click(`${rowSel('table.tracked', running)} [data-action="untrack"]`);
  await page.waitForFunction((j) => !document.querySelector(`table.tracked tr[data-key="${j}"]`), running);
  assert.deepEqual((await api('GET', '/v1/tracked')).jobs.map((j) => j.jid), [waiting]);
  assert.equal((await api('GET', `/v1/jobs/${running}`)).tracked, false);
  // A job tracked elsewhere shows up by itself.
  const later = await put('tq', 'Later');
  await api('PUT', `/v1/jobs/${later}/tracked`);
  await page.waitForSelector(rowSel('table.tracked', later));
  assert.equal(await page.$eval('[data-stat="Tracked"] .value', (e) => e.textContent), '2');
});

// --------------------------------------------------------------------- tags

test('the most used tags with their counts; search a tag', async ({ page }) => {
  const put3 = async (tags, n, klass = 'Tagged') => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await put('gq', klass, { i }, { tags }, T - 50 + i));
    return out;
  };
  const bulk = await put3(['bulk'], 30);
  await put3(['red', 'blue'], 2);
  await put3(['red'], 1);
  await put3([XSS_A], 2, XSS_B);
  const solo = (await put3(['solo'], 1, 'Lonely'))[0];
  const top = await api('GET', '/v1/tags?offset=0&count=50');
  await open(page, '#/tags');
  await page.waitForSelector('table.tags');
  assert.deepEqual(await rowKeys(page, 'table.tags'), top);
  assert.deepEqual([...top].sort(), ['blue', 'bulk', 'red', XSS_A].sort(), 'tags of one job are not listed');
  assert.equal(await col(page, 'table.tags', 'bulk', 'total'), '30');
  assert.equal(await col(page, 'table.tags', 'red', 'total'), '3');
  assert.equal(await col(page, 'table.tags', 'blue', 'total'), '2');
  assert.equal(await col(page, 'table.tags', XSS_A, 'total'), '2');
  assert.equal((await rowCells(page, 'table.tags', XSS_A))[0], XSS_A);
  await shot(page, 'tags');
  // Search: a tag carried by one job.
  await page.fill('form.tag-search input[name="tag"]', 'solo');
  await page.click('form.tag-search button[type="submit"]');
  await page.waitForFunction(() => location.hash === '#/tags/solo');
  await page.waitForSelector('table.tagged');
  assert.deepEqual(await rowKeys(page, 'table.tagged'), [solo]);
  assert.deepEqual((await rowCells(page, 'table.tagged', solo)).slice(0, 7), [solo, 'waiting', 'Lonely', 'gq', '0', 'solo', fmt(T - 50)]);
  assert.equal(await page.$eval('[data-total]', (e) => e.textContent), '1 job');
  // The hostile tag's page: its jobs, the tag as text.
  await reopen(page, `#/tags/${encodeURIComponent(XSS_A)}`);
  await page.waitForSelector('table.tagged');
  assert.equal(await page.$eval('.page-head h1 .name', (e) => e.textContent), XSS_A);
  assert.equal((await rowKeys(page, 'table.tagged')).length, 2);
  assert.equal((await page.$$eval('table.tagged tbody tr td:nth-child(3)', (t) => t.map((x) => x.textContent))).join('|'), `${XSS_B}|${XSS_B}`);
  // A tag's jobs are paged.
  await reopen(page, '#/tags/bulk');
  await page.waitForSelector('table.tagged');
  const first = await api('GET', '/v1/tags/bulk/jobs?offset=0&count=25');
  assert.equal(first.total, 30);
  assert.deepEqual(await rowKeys(page, 'table.tagged'), first.jobs);
  await waitText(page, '.pager .range', '1–25 of 30');
  await shot(page, 'tag');
  await page.click('.pager a.next');
  await waitText(page, '.pager .range', '26–30 of 30');
  const second = await api('GET', '/v1/tags/bulk/jobs?offset=25&count=25');
  assert.deepEqual(await rowKeys(page, 'table.tagged'), second.jobs);
  assert.deepEqual([...first.jobs, ...second.jobs].sort(), [...bulk].sort());
});

// ---------------------------------------------------------------- recurring

test('recurring templates of every queue; edit; remove', async ({ page }) => {
  const recur = (queue, body) => api('POST', `/v1/queues/${queue}/recurring`, body, { now: T });
  await recur('rq1', { jid: 'r-tick', klass: 'Tick', interval: 60, priority: 2, retries: 3, tags: ['t1', 't2'], offset: 600 });
  await recur('rq2', { jid: 'r-xss', klass: XSS_B, interval: 3600, tags: [XSS_A], offset: 1200 });
  for (let i = 0; i < 27; i++) await recur('rq3', { jid: `r-many-${String(i).padStart(2, '0')}`, klass: 'Many', interval: 300 + i, offset: 900 + i });
  assert.equal((await api('GET', '/v1/recurring/r-tick')).next_run, T + 600);
  await open(page, '#/recurring');
  await page.waitForSelector('table.recurring');
  assert.deepEqual(await page.$$eval('section.recur-queue', (s) => s.map((x) => x.dataset.queue)), ['rq1', 'rq2', 'rq3']);
  assert.equal(await page.$eval('[data-stat="Templates"] .value', (e) => e.textContent), '29');
  assert.equal(await page.$eval('[data-stat="Next run"] .value', (e) => e.textContent), fmt(T + 600));
  const tick = await rowCells(page, 'table.recurring', 'r-tick');
  assert.deepEqual([tick[0], tick[1], tick[2], tick[3], tick[4], tick[5], tick[6]],
    ['r-tick', 'Tick', '1 min 0 s (60 s)', '2', '3', 't1t2', '0']);
  assert.ok(tick[7].startsWith(fmt(T + 600)));
  const xss = await rowCells(page, 'table.recurring', 'r-xss');
  assert.deepEqual(xss.slice(0, 6), ['r-xss', XSS_B, '1 h 0 min (3600 s)', '0', '5', XSS_A]);
  assert.ok(xss[7].startsWith(fmt(T + 1200)));
  // rq3 is paged: 25 then 2, by next run.
  const rq3 = (await api('GET', '/v1/queues/rq3/recurring')).map((r) => r.jid);
  assert.deepEqual(await page.$$eval('section[data-queue="rq3"] table.recurring tbody tr', (rs) => rs.map((r) => r.dataset.key)), rq3.slice(0, 25));
  await waitText(page, 'section[data-queue="rq3"] .pager .range', '1–25 of 27');
  await shot(page, 'recurring');
  await page.click('section[data-queue="rq3"] .pager a.next');
  await waitText(page, 'section[data-queue="rq3"] .pager .range', '26–27 of 27');
  assert.deepEqual(await page.$$eval('section[data-queue="rq3"] table.recurring tbody tr', (rs) => rs.map((r) => r.dataset.key)), rq3.slice(25));
  // Edit interval and priority.
  await page.click(`${rowSel('table.recurring', 'r-tick')} [data-action="edit"]`);
  await page.waitForSelector('form.recur-edit');
  assert.equal(await page.inputValue('form.recur-edit input[name="interval"]'), '60');
  assert.equal(await page.inputValue('form.recur-edit input[name="priority"]'), '2');
  // A bad interval is refused and changes nothing.
  await page.fill('form.recur-edit input[name="interval"]', '0');
  await page.click('form.recur-edit button[type="submit"]');
  await waitText(page, '.toast.error', 'Interval: expected a number of seconds greater than 0');
  assert.equal((await api('GET', '/v1/recurring/r-tick')).interval, 60);
  await page.fill('form.recur-edit input[name="interval"]', '90');
  await page.fill('form.recur-edit input[name="priority"]', '7');
  await page.click('form.recur-edit button[type="submit"]');
  await page.waitForSelector('form.recur-edit', { state: 'detached' });
  await page.waitForFunction(() => document.querySelector('tr[data-key="r-tick"] [data-col="priority"]')?.textContent === '7');
  assert.equal(await col(page, 'table.recurring', 'r-tick', 'interval'), '1 min 30 s (90 s)');
  const after = await api('GET', '/v1/recurring/r-tick');
  assert.equal(after.interval, 90);
  assert.equal(after.priority, 7);
  assert.equal(after.retries, 3);
  // Remove, after confirming.
  await clickConfirm(page, `${rowSel('table.recurring', 'r-xss')} [data-action="remove"]`);
  await page.waitForFunction(() => !document.querySelector('tr[data-key="r-xss"]'));
  assert.equal(await status('/v1/recurring/r-xss'), 404);
  assert.deepEqual(await page.$$eval('section.recur-queue', (s) => s.map((x) => x.dataset.queue)), ['rq1', 'rq3']);
  assert.equal(await page.$$eval('table.recurring img, table.recurring script', (x) => x.length), 0);
});

test('a cron template shows its expression, zone and next run; edit its schedule', async ({ page }) => {
  await api('POST', '/v1/queues/rq-cron/recurring',
    { jid: 'r-cron', klass: 'Report', cron: '*/5 * * * *', timezone: 'Europe/Paris', missed: 'skip' }, { now: T });
  const doc = await api('GET', '/v1/recurring/r-cron');
  assert.ok(doc.next_run > T && doc.next_run <= T + 300 && doc.next_run % 300 === 0, `next_run ${doc.next_run}`);
  await reopen(page, '#/recurring');
  await page.waitForSelector('section[data-queue="rq-cron"] table.recurring');
  const cells = await rowCells(page, 'table.recurring', 'r-cron');
  assert.equal(cells[2], '*/5 * * * * Europe/Parismissed ticks skipped');
  assert.ok(cells[7].startsWith(fmt(doc.next_run)), cells[7]);
  await shot(page, 'recurring-cron');
  // Edit: a bad expression is refused by the server and changes nothing.
  await page.click(`${rowSel('table.recurring', 'r-cron')} [data-action="edit"]`);
  await page.waitForSelector('form.recur-edit');
  assert.equal(await page.inputValue('form.recur-edit input[name="cron"]'), '*/5 * * * *');
  assert.equal(await page.inputValue('form.recur-edit input[name="timezone"]'), 'Europe/Paris');
  assert.equal(await page.inputValue('form.recur-edit select[name="missed"]'), 'skip');
  await page.fill('form.recur-edit input[name="cron"]', '* * *');
  await page.click('form.recur-edit button[type="submit"]');
  await waitText(page, '.toast.error', '5 fields');
  assert.equal((await api('GET', '/v1/recurring/r-cron')).cron, '*/5 * * * *');
  await page.fill('form.recur-edit input[name="cron"]', '0 9 * * MON-FRI');
  await page.fill('form.recur-edit input[name="timezone"]', 'UTC');
  await page.selectOption('form.recur-edit select[name="missed"]', 'catch-up');
  await page.click('form.recur-edit button[type="submit"]');
  await page.waitForSelector('form.recur-edit', { state: 'detached' });
  await page.waitForFunction(() => document.querySelector('tr[data-key="r-cron"] [data-col="cron"]')?.textContent.startsWith('0 9 * * MON-FRI UTC'));
  const after = await api('GET', '/v1/recurring/r-cron');
  assert.deepEqual([after.cron, after.timezone, after.missed], ['0 9 * * MON-FRI', 'UTC', 'catch-up']);
});

// ------------------------------------------------------------------- config

test('config values with defaults; edit, reset, add', async ({ page }) => {
  await api('PUT', '/v1/config/application', { value: XSS_A });
  await api('PUT', '/v1/config/rq1-heartbeat', { value: 30 });
  await open(page, '#/config');
  await page.waitForSelector('table.config');
  const cfg = await api('GET', '/v1/config');
  const keys = await rowKeys(page, 'table.config');
  for (const k of Object.keys(cfg)) assert.ok(keys.includes(k), `${k} listed`);
  assert.ok(keys.includes('max-job-history') && keys.includes('max-worker-age'));
  const hb = await rowCells(page, 'table.config', 'heartbeat');
  assert.equal(hb[1], '60');
  assert.equal(hb[2], '60 s');
  assert.equal(hb[3], 'default');
  assert.deepEqual((await rowCells(page, 'table.config', 'application')).slice(1, 4), [XSS_A, 'qless', 'set']);
  assert.deepEqual((await rowCells(page, 'table.config', 'rq1-heartbeat')).slice(1, 4), ['30', 'none', 'set']);
  assert.deepEqual((await rowCells(page, 'table.config', 'max-job-history')).slice(1, 4), ['100', '100', 'default']);
  assert.equal(await page.inputValue(`${rowSel('table.config', 'application')} input[name="value"]`), XSS_A);
  assert.equal(await page.$$eval('table.config img, table.config script', (x) => x.length), 0);
  await shot(page, 'config');
  // Edit heartbeat.
  await page.fill(`${rowSel('table.config', 'heartbeat')} input[name="value"]`, '45');
  await page.click(`${rowSel('table.config', 'heartbeat')} form button[type="submit"]`);
  await page.waitForFunction(() => document.querySelector('tr[data-key="heartbeat"] [data-col="status"]')?.textContent === 'set');
  assert.deepEqual(await api('GET', '/v1/config/heartbeat'), { key: 'heartbeat', value: '45' });
  assert.equal(await col(page, 'table.config', 'heartbeat', 'value'), '45');
  // Not a number: refused, nothing changes.
  await page.fill(`${rowSel('table.config', 'grace-period')} input[name="value"]`, 'soon');
  await page.click(`${rowSel('table.config', 'grace-period')} form button[type="submit"]`);
  await waitText(page, '.toast.error', 'grace-period: expected a number, got "soon"');
  assert.equal((await api('GET', '/v1/config/grace-period')).value, 10);
  // Reset heartbeat to its default, after confirming.
  await page.click(`${rowSel('table.config', 'heartbeat')} [data-action="reset"]`);
  await waitText(page, '.modal p', 'Reset heartbeat to its default (60)?');
  await page.click('.modal [data-confirm="ok"]');
  await page.waitForFunction(() => document.querySelector('tr[data-key="heartbeat"] [data-col="status"]')?.textContent === 'default');
  assert.deepEqual(await api('GET', '/v1/config/heartbeat'), { key: 'heartbeat', value: 60 });
  // Set another key. What is typed survives a live refresh that redraws
  // the page (one that started before the typing, or, as here, one while
  // no form has focus).
  await page.fill('form.config-add input[name="key"]', 'rq2-max-concurrency');
  await page.fill('form.config-add input[name="value"]', '2');
  await page.click('h1');
  const drawn = await page.$('form.config-add');
  await api('POST', '/v1/queues/cfg-live/jobs', { klass: 'K', data: {} });
  await page.waitForFunction((form) => !form.isConnected, drawn);
  assert.equal(await page.inputValue('form.config-add input[name="key"]'), 'rq2-max-concurrency');
  assert.equal(await page.inputValue('form.config-add input[name="value"]'), '2');
  await page.click('form.config-add button[type="submit"]');
  await page.waitForSelector(rowSel('table.config', 'rq2-max-concurrency'));
  assert.equal((await api('GET', '/v1/config/rq2-max-concurrency')).value, '2');
  assert.deepEqual((await rowCells(page, 'table.config', 'rq2-max-concurrency')).slice(1, 4), ['2', 'none', 'set']);
  // Delete the per-queue key and reset the application name.
  await clickConfirm(page, `${rowSel('table.config', 'rq1-heartbeat')} [data-action="reset"]`);
  await page.waitForFunction(() => !document.querySelector('tr[data-key="rq1-heartbeat"]'));
  assert.equal(await status('/v1/config/rq1-heartbeat'), 404);
  await clickConfirm(page, `${rowSel('table.config', 'application')} [data-action="reset"]`);
  await page.waitForFunction(() => document.querySelector('tr[data-key="application"] [data-col="value"]')?.textContent === 'qless');
  assert.equal((await api('GET', '/v1/config')).application, 'qless');
});

await run();
