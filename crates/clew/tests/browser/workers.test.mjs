// Workers (#/workers, #/workers/NAME): every worker with its running and
// stalled counts and last seen (exact, against times set with X-Clew-Now);
// a worker's running and stalled jobs (paged); live refresh; removing a
// worker after an in-page confirmation, checked through the API; hostile
// worker names and classes render as text.
import { test, run, api, put, open, assert, shot, waitText, clickConfirm } from './lib.mjs';

const XSS_WORKER = '<img src=x onerror="window.__xss=1">';
const XSS_CLASS = '"><script>window.__xss=2</script>';
const T = Math.floor(Date.now() / 1000);

const fmt = (secs) => new Date(secs * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
const popAs = async (queue, worker, count, now) =>
  (await api('POST', `/v1/queues/${encodeURIComponent(queue)}/pop`, { worker, count }, { now })).map((j) => j.jid);
const rowKeys = (page, sel) => page.$$eval(`${sel} tbody tr[data-key]`, (rs) => rs.map((r) => r.dataset.key));
const cell = (page, key, col) => page.evaluate(([k, c]) => {
  const row = [...document.querySelectorAll('table.workers tbody tr')].find((r) => r.dataset.key === k);
  return row ? row.querySelector(`[data-col="${c}"]`).textContent : null;
}, [key, col]);

const seeded = {};

/**
 * alpha: one job popped at T-300 (its lock expired: stalled), two at T-10
 * (running). The hostile worker: one job at T-20. bulk: 30 jobs at T-30.
 * idle: asked for work at T-40, got none.
 */
async function seed() {
  // (In a queue of its own: a pop from its queue would take the expired lock back.)
  const stale = await put('sq', 'Stale', {}, {}, T - 310);
  assert.deepEqual(await popAs('sq', 'alpha', 1, T - 300), [stale]);
  const a = await put('wq', 'Resize', {}, { tags: ['img'] }, T - 20);
  const b = await put('wq', 'Resize', {}, {}, T - 19);
  assert.deepEqual(await popAs('wq', 'alpha', 2, T - 10), [a, b]);
  const x = await put('xq', XSS_CLASS, {}, { tags: [XSS_WORKER] }, T - 25);
  assert.deepEqual(await popAs('xq', XSS_WORKER, 1, T - 20), [x]);
  const bulk = [];
  for (let i = 0; i < 30; i++) bulk.push(await put('bq', 'Bulk', { i }, {}, T - 60));
  assert.equal((await popAs('bq', 'bulk', 30, T - 30)).length, 30);
  await popAs('empty', 'idle', 1, T - 40);
  Object.assign(seeded, { stale, a, b, x, bulk });
}

test('every worker with its counts and last seen', async ({ page }) => {
  await seed();
  const workers = await api('GET', '/v1/workers');
  const byName = Object.fromEntries(workers.map((w) => [w.name, w]));
  assert.deepEqual(byName.alpha, { name: 'alpha', jobs: 2, stalled: 1, last_seen: T - 10 });
  await open(page, '#/workers');
  await page.waitForSelector('table.workers');
  assert.deepEqual(await rowKeys(page, 'table.workers'), workers.map((w) => w.name));
  assert.equal(await cell(page, 'alpha', 'jobs'), '2');
  assert.equal(await cell(page, 'alpha', 'stalled'), '1');
  assert.ok((await cell(page, 'alpha', 'last_seen')).startsWith(fmt(T - 10)));
  assert.equal(await cell(page, 'bulk', 'jobs'), '30');
  assert.equal(await cell(page, 'bulk', 'stalled'), '0');
  assert.equal(await cell(page, 'idle', 'jobs'), '0');
  assert.ok((await cell(page, 'idle', 'last_seen')).startsWith(fmt(T - 40)));
  assert.equal(await cell(page, XSS_WORKER, 'jobs'), '1');
  assert.equal(await page.$eval('[data-stat="Workers"] .value', (e) => e.textContent), '4');
  assert.equal(await page.$eval('[data-stat="Running jobs"] .value', (e) => e.textContent), '33');
  assert.equal(await page.$eval('[data-stat="Stalled jobs"] .value', (e) => e.textContent), '1');
  // The hostile name is text, and its link leads to its page.
  const link = await page.evaluate((n) => [...document.querySelectorAll('table.workers .wname a')].find((a) => a.textContent === n)?.getAttribute('href'), XSS_WORKER);
  assert.equal(link, `#/workers/${encodeURIComponent(XSS_WORKER)}`);
  await shot(page, 'workers');
});

test('the list refreshes live', async ({ page }) => {
  await open(page, '#/workers');
  await page.waitForSelector('table.workers');
  assert.equal(await cell(page, 'alpha', 'jobs'), '2');
  const c = await put('wq', 'Resize');
  assert.deepEqual(await popAs('wq', 'alpha', 1), [c]);
  await page.waitForFunction(() => [...document.querySelectorAll('table.workers tbody tr')]
    .find((r) => r.dataset.key === 'alpha')?.querySelector('[data-col="jobs"]').textContent === '3');
  await api('POST', `/v1/jobs/${c}/complete`, { worker: 'alpha' });
  await page.waitForFunction(() => [...document.querySelectorAll('table.workers tbody tr')]
    .find((r) => r.dataset.key === 'alpha')?.querySelector('[data-col="jobs"]').textContent === '2');
});

test('a worker\'s running and stalled jobs', async ({ page }) => {
  await open(page, '#/workers/alpha');
  await page.waitForSelector('table.running');
  assert.equal(await page.$eval('.page-head h1 .name', (e) => e.textContent), 'alpha');
  assert.deepEqual((await rowKeys(page, 'table.running')).sort(), [seeded.a, seeded.b].sort());
  assert.deepEqual(await rowKeys(page, 'table.stalled'), [seeded.stale]);
  const row = await page.$$eval(`table.running tr[data-key="${seeded.a}"] td`, (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(row.slice(0, 5), [seeded.a, 'Resize', 'wq', 'running', '0']);
  assert.equal(row[5], fmt(T - 10 + 60), 'lock expires a heartbeat (60 s) after the pop');
  assert.equal(row[6], 'img');
  const stale = await page.$$eval('table.stalled tbody tr td', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(stale.slice(0, 4), [seeded.stale, 'Stale', 'sq', 'stalled']);
  assert.equal(await page.$eval('[data-stat="Running"] .value', (e) => e.textContent), '2');
  assert.equal(await page.$eval('[data-stat="Stalled"] .value', (e) => e.textContent), '1');
  // Last seen: the pop of the live test, just now.
  const { last_seen: seen } = await api('GET', '/v1/workers/alpha');
  assert.ok(seen >= T);
  assert.equal(await page.$eval('[data-stat="Last seen"] .value', (e) => e.textContent), fmt(seen));
  await shot(page, 'worker');
  // A job link leads to the job.
  await page.click(`table.running tr[data-key="${seeded.a}"] a.jid`);
  await page.waitForFunction((j) => location.hash === `#/jobs/${j}`, seeded.a);
});

test('a worker\'s jobs are paged', async ({ page }) => {
  await open(page, '#/workers/bulk');
  await page.waitForSelector('table.running');
  const w = await api('GET', '/v1/workers/bulk');
  assert.equal(w.jobs.length, 30);
  assert.deepEqual(await rowKeys(page, 'table.running'), w.jobs.slice(0, 25));
  await waitText(page, '.worker-running .pager .range', '1–25 of 30');
  await page.click('.worker-running .pager a.next');
  await waitText(page, '.worker-running .pager .range', '26–30 of 30');
  assert.deepEqual(await rowKeys(page, 'table.running'), w.jobs.slice(25));
  assert.equal(await page.$eval('[data-total="running"]', (e) => e.textContent), '30 jobs');
});

test('hostile names as text; remove a worker from its page', async ({ page }) => {
  await open(page, `#/workers/${encodeURIComponent(XSS_WORKER)}`);
  await page.waitForSelector('table.running');
  assert.equal(await page.$eval('.page-head h1 .name', (e) => e.textContent), XSS_WORKER);
  assert.deepEqual(await rowKeys(page, 'table.running'), [seeded.x]);
  const row = await page.$$eval('table.running tbody tr td', (tds) => tds.map((td) => td.textContent));
  assert.equal(row[1], XSS_CLASS);
  assert.equal(row[6], XSS_WORKER);
  assert.equal(await page.$$eval('table.running img, table.running script, .page-head img', (x) => x.length), 0);
  // Declining changes nothing.
  await page.click('.page-head [data-action="remove"]');
  await page.waitForSelector('.modal');
  assert.ok((await page.$eval('.modal p', (e) => e.textContent)).includes(`Remove worker "${XSS_WORKER}"?`));
  await page.click('.modal [data-confirm="cancel"]');
  assert.ok((await api('GET', '/v1/workers')).some((w) => w.name === XSS_WORKER));
  await clickConfirm(page, '.page-head [data-action="remove"]');
  await page.waitForFunction(() => location.hash === '#/workers');
  await page.waitForSelector('table.workers');
  assert.ok(!(await api('GET', '/v1/workers')).some((w) => w.name === XSS_WORKER));
  assert.ok(!(await rowKeys(page, 'table.workers')).includes(XSS_WORKER));
  // Its job is not touched.
  assert.equal((await api('GET', `/v1/jobs/${seeded.x}`)).state, 'running');
});

test('remove a worker from the list', async ({ page }) => {
  await open(page, '#/workers');
  await page.waitForSelector('table.workers tbody tr[data-key="idle"]');
  await clickConfirm(page, 'table.workers tbody tr[data-key="idle"] [data-action="remove"]');
  await page.waitForFunction(() => !document.querySelector('table.workers tr[data-key="idle"]'));
  await waitText(page, '.toast.ok', 'Worker idle removed');
  assert.deepEqual((await api('GET', '/v1/workers')).map((w) => w.name).sort(), ['alpha', 'bulk']);
  assert.equal(await page.$eval('[data-stat="Workers"] .value', (e) => e.textContent), '2');
});

await run();
