// Failed jobs (#/failed, #/failed/GROUP): groups with counts, each group
// paged with its messages, retry / cancel per job and retry all / cancel
// all per group after an in-page confirmation, checked through the API;
// values from jobs render as text.
import { test, run, api, put, open, assert, shot, waitText, clickConfirm } from './lib.mjs';

const XSS_GROUP = '<img src=x onerror="window.__xss=1">';
const XSS_MESSAGE = '"><script>window.__xss=2</script>';
const XSS_WORKER = "'><svg onload=window.__xss=3>";

/** Puts a job into `queue`, pops it and fails it in `group`; returns its jid. */
async function failOne(queue, group, message, worker = 'fw', klass = 'Task') {
  const jid = await put(queue, klass, { q: queue });
  const popped = await api('POST', `/v1/queues/${encodeURIComponent(queue)}/pop`, { worker, count: 1 });
  assert.equal(popped[0].jid, jid);
  await api('POST', `/v1/jobs/${jid}/fail`, { worker, group, message });
  return jid;
}

/** net-error: 30 jobs, 28 from fq-a and (in the middle) 2 from fq-b; to-cancel: 3; the hostile group: 2. */
async function seed() {
  const net = [];
  for (let i = 0; i < 30; i++) {
    const q = i === 14 || i === 15 ? 'fq-b' : 'fq-a';
    net.push(await failOne(q, 'net-error', `connection refused #${i}\n  at net.rb:${i}`));
  }
  const cancel = [];
  for (let i = 0; i < 3; i++) cancel.push(await failOne('fq-c', 'to-cancel', 'nope'));
  const hostile = [];
  for (let i = 0; i < 2; i++) {
    hostile.push(await failOne('fq-x', XSS_GROUP, `${XSS_MESSAGE}\n  at evil.rb:${i}`, XSS_WORKER, XSS_GROUP));
  }
  return { net, cancel, hostile };
}

const rowKeys = (page) => page.$$eval('table.failed-jobs tbody tr[data-key]', (rs) => rs.map((r) => r.dataset.key));
const groupCount = (page, g) => page.evaluate((name) => {
  const row = [...document.querySelectorAll('table.groups tbody tr')].find((r) => r.dataset.key === name);
  return row ? row.querySelector('[data-col="count"]').textContent : null;
}, g);

let seeded;

test('groups with their counts', async ({ page }) => {
  seeded = await seed();
  await open(page, '#/failed');
  await page.waitForSelector('table.groups');
  const groups = await page.$$eval('table.groups tbody tr', (rs) => rs.map((r) => [r.dataset.key, r.querySelector('a.group').textContent]));
  assert.deepEqual(groups, [['net-error', 'net-error'], ['to-cancel', 'to-cancel'], [XSS_GROUP, XSS_GROUP]]);
  assert.equal(await groupCount(page, 'net-error'), '30');
  assert.equal(await groupCount(page, 'to-cancel'), '3');
  assert.equal(await groupCount(page, XSS_GROUP), '2');
  assert.deepEqual(await api('GET', '/v1/failed'), { 'net-error': 30, 'to-cancel': 3, [XSS_GROUP]: 2 });
  assert.equal(await page.$eval('[data-stat="Failed jobs"] .value', (e) => e.textContent), '35');
  assert.equal(await page.$eval('[data-stat="Groups"] .value', (e) => e.textContent), '3');
  await shot(page, 'failed');
  await page.click('table.groups tbody tr[data-key="net-error"] a.group');
  await page.waitForSelector('table.failed-jobs');
  assert.ok(page.url().endsWith('#/failed/net-error'));
});

test('a group\'s jobs, paged, with their messages', async ({ page }) => {
  await open(page, '#/failed/net-error');
  await page.waitForSelector('table.failed-jobs');
  const first = await api('GET', '/v1/failed/net-error?offset=0&count=25');
  assert.equal(first.total, 30);
  assert.deepEqual(await rowKeys(page), first.jobs);
  assert.equal(await page.$eval('[data-total]', (e) => e.textContent), '30 jobs');
  // The newest failure first: job 29, from fq-a, failed by fw.
  assert.equal(first.jobs[0], seeded.net[29]);
  const cells = await page.$$eval('table.failed-jobs tbody tr:first-child td', (tds) => tds.map((td) => td.textContent));
  assert.equal(cells[1], 'Task');
  assert.equal(cells[2], 'fq-a');
  assert.match(cells[3], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  assert.equal(cells[4], 'fw');
  assert.equal(await page.$eval('table.failed-jobs tbody tr:first-child .message', (e) => e.textContent), 'connection refused #29');
  assert.equal(await page.$eval('table.failed-jobs tbody tr:first-child pre.backtrace', (e) => e.textContent), '  at net.rb:29');
  await waitText(page, '.pager .range', '1–25 of 30');
  await page.click('.pager a.next');
  await waitText(page, '.pager .range', '26–30 of 30');
  const second = await api('GET', '/v1/failed/net-error?offset=25&count=25');
  assert.deepEqual(await rowKeys(page), second.jobs);
  assert.deepEqual(second.jobs, seeded.net.slice(0, 5).reverse());
  await shot(page, 'failed-group');
});

test('retry and cancel one job; hostile strings as text', async ({ page }) => {
  const [older, newer] = seeded.hostile;
  await open(page, `#/failed/${encodeURIComponent(XSS_GROUP)}`);
  await page.waitForSelector('table.failed-jobs');
  assert.deepEqual(await rowKeys(page), [newer, older]);
  assert.equal(await page.$eval('.page-head h1 .name', (e) => e.textContent), XSS_GROUP);
  const row = await page.$$eval('table.failed-jobs tbody tr:first-child td', (tds) => tds.map((td) => td.textContent));
  assert.equal(row[1], XSS_GROUP);
  assert.equal(row[4], XSS_WORKER);
  assert.equal(await page.$eval('table.failed-jobs tbody tr:first-child .message', (e) => e.textContent), XSS_MESSAGE);
  // Retry the newer: back to waiting in its queue.
  await page.click(`table.failed-jobs tbody tr[data-key="${newer}"] [data-action="retry"]`);
  await page.waitForFunction((j) => !document.querySelector(`table.failed-jobs tr[data-key="${j}"]`), newer);
  const job = await api('GET', `/v1/jobs/${newer}`);
  assert.equal(job.state, 'waiting');
  assert.equal(job.queue, 'fq-x');
  await waitText(page, '[data-total]', '1 job');
  // Cancel the older, after confirming.
  await clickConfirm(page, `table.failed-jobs tbody tr[data-key="${older}"] [data-action="cancel"]`);
  await page.waitForSelector('table.failed-jobs td.empty');
  const r = await fetch(`${process.env.CLEW_URL}/v1/jobs/${older}`, { headers: process.env.CLEW_TOKEN ? { Authorization: `Bearer ${process.env.CLEW_TOKEN}` } : {} });
  assert.equal(r.status, 404);
  assert.equal((await api('GET', '/v1/failed'))[XSS_GROUP], undefined);
});

test('retry all and cancel all, each after a confirmation', async ({ page }) => {
  await open(page, '#/failed');
  await page.waitForSelector('table.groups tbody tr[data-key="to-cancel"]');
  // Declining changes nothing.
  await page.click('table.groups tbody tr[data-key="to-cancel"] [data-action="cancel-all"]');
  await page.waitForSelector('.modal');
  assert.ok((await page.$eval('.modal p', (e) => e.textContent)).includes('Cancel all 3 failed jobs of group "to-cancel"'));
  await page.click('.modal [data-confirm="cancel"]');
  assert.equal((await api('GET', '/v1/failed'))['to-cancel'], 3);
  // Cancel all: the group and its jobs are gone.
  await clickConfirm(page, 'table.groups tbody tr[data-key="to-cancel"] [data-action="cancel-all"]');
  await page.waitForFunction(() => !document.querySelector('table.groups tr[data-key="to-cancel"]'));
  assert.equal((await api('GET', '/v1/failed'))['to-cancel'], undefined);
  assert.deepEqual(await api('GET', `/v1/jobs?jids=${seeded.cancel.join(',')}`), []);
  // Retry all from the group's page: every job back in its own queue.
  await open(page, '#/failed/net-error');
  await page.waitForSelector('table.failed-jobs');
  await clickConfirm(page, '[data-action="retry-all"]');
  await page.waitForSelector('table.failed-jobs td.empty');
  await waitText(page, '.toast.ok', '30 jobs of net-error retried');
  assert.deepEqual(await api('GET', '/v1/failed'), {});
  const jobs = await api('GET', `/v1/jobs?jids=${seeded.net.join(',')}`);
  assert.equal(jobs.length, 30);
  for (const j of jobs) {
    assert.equal(j.state, 'waiting');
    assert.equal(j.queue, seeded.net.indexOf(j.jid) === 14 || seeded.net.indexOf(j.jid) === 15 ? 'fq-b' : 'fq-a');
  }
  assert.equal((await api('GET', '/v1/queues/fq-a')).waiting, 28);
  assert.equal((await api('GET', '/v1/queues/fq-b')).waiting, 2);
});

await run();
