// Batches (#/batches, #/batches/ID): every batch newest first with its
// progress bar and counts, the link to its callback job once put; one
// batch's facts and jobs; canceling a batch after an in-page confirmation
// (checked through the API); the job page shows the job's batch; hostile
// descriptions and classes render as text.
import { test, run, api, pop, open, assert, shot, waitText, clickConfirm, URL_ } from './lib.mjs';

const XSS = '<img src=x onerror="window.__xss=1">';
const T = Math.floor(Date.now() / 1000);

const create = (body, now) => api('POST', '/v1/batches', body, { now });
const cell = (page, key, col) => page.evaluate(([k, c]) => {
  const row = [...document.querySelectorAll('table.batches tbody tr')].find((r) => r.dataset.key === k);
  return row ? row.querySelector(`[data-col="${c}"]`).textContent : null;
}, [key, col]);
const progress = (page, key) => page.evaluate((k) => {
  const row = [...document.querySelectorAll('table.batches tbody tr')].find((r) => r.dataset.key === k);
  return row ? row.querySelector('.batch-progress').dataset.progress : null;
}, key);

test('batches with progress bars and the callback link', async ({ page }) => {
  await create({
    id: 'nightly', description: XSS,
    callback: { queue: 'cb', klass: XSS, jid: 'nightly-cb' },
    jobs: [0, 1, 2].map((i) => ({ queue: 'bq', klass: 'K', jid: `n${i}` })),
  }, T - 100);
  await create({ id: 'later', jobs: [{ queue: 'lq', klass: 'K', jid: 'l0' }] }, T - 50);
  await pop('bq', 'w1', 3, T - 90);
  await api('POST', '/v1/jobs/n0/complete', { worker: 'w1' }, { now: T - 80 });
  await api('POST', '/v1/jobs/n1/fail', { worker: 'w1', group: 'G', message: 'm' }, { now: T - 80 });

  await open(page, '#/batches');
  await page.waitForSelector('table.batches');
  const keys = await page.$$eval('table.batches tbody tr[data-key]', (rs) => rs.map((r) => r.dataset.key));
  assert.deepEqual(keys, ['later', 'nightly']);
  assert.equal(await progress(page, 'nightly'), '2/3');
  assert.equal(await cell(page, 'nightly', 'pending'), '1');
  assert.equal(await cell(page, 'nightly', 'failed'), '1');
  assert.ok((await cell(page, 'nightly', 'callback')).includes('when done'));
  assert.equal(await page.$eval('[data-stat="Batches"] .value', (e) => e.textContent), '2');

  // The last job finishes: the page refreshes live and links the callback.
  await api('POST', '/v1/jobs/n2/complete', { worker: 'w1' }, { now: T - 70 });
  await page.waitForFunction(() => {
    const a = document.querySelector('table.batches tr[data-key="nightly"] [data-col="callback"] a');
    return a && a.textContent === 'nightly-cb';
  }, null, { timeout: 10000 });
  assert.equal(await progress(page, 'nightly'), '3/3');
  await shot(page, 'batches');
  await page.click('table.batches tr[data-key="nightly"] [data-col="callback"] a');
  await page.waitForSelector('#main .page[data-page="job"]');
  await waitText(page, '[data-fact="queue"]', 'cb');
});

test('one batch, its jobs, cancel, and the job page link', async ({ page }) => {
  await create({
    id: 'big', description: 'import', metadata: { owner: 'ops' },
    jobs: Array.from({ length: 30 }, (_, i) => ({ queue: 'iq', klass: 'K', jid: `j${String(i).padStart(2, '0')}` })),
  }, T - 10);
  await open(page, '#/jobs/j03');
  await waitText(page, '[data-fact="batch"]', 'big');
  await page.click('[data-fact="batch"] a');
  await page.waitForSelector('#main .page[data-page="batches"] .batch-progress');
  await waitText(page, '[data-fact="description"]', 'import');
  assert.equal(await page.$$eval('ul.jid-list li', (ls) => ls.length), 25);
  await waitText(page, '.pager .range', '1–25 of 30');
  await page.click('.pager a.next');
  await page.waitForFunction(() => document.querySelectorAll('ul.jid-list li').length === 5);

  await clickConfirm(page, '[data-action="cancel-batch"]');
  await waitText(page, '[data-stat="Canceled"] .value', '30');
  const b = await api('GET', '/v1/batches/big');
  assert.equal(b.canceled, 30);
  assert.equal(b.pending, 0);
  assert.equal(await page.$('[data-action="cancel-batch"]'), null);
  await shot(page, 'batch');
});

test('an unknown batch is an error on the page, not a crash', async ({ page }) => {
  await page.goto(`${URL_}/#/batches/nope`);
  await waitText(page, '#main .error-box', 'batch nope does not exist');
});

run();
