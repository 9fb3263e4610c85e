// A queue's page (#/queues/NAME): tabs per state with paged job rows,
// the day's statistics with a date picker, pause / resume, live refresh;
// values from jobs render as text.
import { test, run, api, put, pop, open, assert, shot, waitText } from './lib.mjs';

const XSS_KLASS = '<img src=x onerror="window.__xss=1">';
const XSS_TAG = '"><script>window.__xss=2</script>';
const XSS_WORKER = "'><svg onload=window.__xss=3>";
const Q = 'qpage';

/** Row keys (jids) of the listing on the page. */
const rowKeys = (page) => page.$$eval('table.jobs tbody tr[data-key]', (rs) => rs.map((r) => r.dataset.key));

/** The cells of the row of `jid`, as texts. */
const rowCells = (page, jid) => page.evaluate((j) => {
  const row = [...document.querySelectorAll('table.jobs tbody tr')].find((r) => r.dataset.key === j);
  return row ? [...row.querySelectorAll('td')].map((td) => td.textContent) : null;
}, jid);

const statValue = (page, label) => page.evaluate((l) => {
  const el = document.querySelector(`[data-stat="${l}"] .value`);
  return el ? el.textContent : null;
}, label);

async function seed() {
  const now = Date.now() / 1000;
  // Two runners (priority 10, popped first); one completes.
  await put(Q, 'Runner', { r: 1 }, { priority: 10 });
  await put(Q, 'Runner', { r: 2 }, { priority: 10 });
  const [r1, r2] = await pop(Q, XSS_WORKER, 2);
  await api('POST', `/v1/jobs/${r1.jid}/complete`, { worker: XSS_WORKER });
  // A job popped 10 minutes ago whose lock (60 s) has expired: stalled
  // (made after the pops above, which would hand it out again).
  await put(Q, 'Staller', {}, {}, now - 600);
  await pop(Q, 'old-worker', 1, now - 600);
  // 30 waiting jobs; the first has the highest priority and hostile strings.
  const xss = await put(Q, XSS_KLASS, { a: 1 }, { priority: 5, tags: ['red', XSS_TAG] });
  const waiting = [xss];
  for (let i = 1; i < 30; i++) waiting.push(await put(Q, 'Filler', { i }));
  await put(Q, 'Later', {}, { delay: 600 });
  await put(Q, 'Child', {}, { depends: [waiting[1]] });
  await api('POST', `/v1/queues/${Q}/recurring`, { klass: 'Every', interval: 3600, offset: 3600 });
  return { xss, running: r2.jid };
}

test('tabs per state with paged rows, the day\'s stats, pause and resume', async ({ page }) => {
  const { xss, running } = await seed();
  const counts = await api('GET', `/v1/queues/${Q}`);
  assert.deepEqual(
    [counts.waiting, counts.scheduled, counts.running, counts.stalled, counts.depends, counts.recurring],
    [30, 1, 1, 1, 1, 1]);
  await open(page, `#/queues/${Q}`);
  await page.waitForSelector('table.jobs');
  // Tabs with counts, waiting active.
  const tabTexts = await page.$$eval('.tabs a', (as) => as.map((a) => `${a.dataset.tab}:${a.textContent}:${a.classList.contains('active')}`));
  assert.deepEqual(tabTexts, [
    'waiting:waiting (30):true', 'scheduled:scheduled (1):false', 'running:running (1):false',
    'stalled:stalled (1):false', 'depends:depends (1):false', 'throttled:throttled (0):false',
    'recurring:recurring (1):false',
  ]);
  // Page 1 of waiting: the first 25 in the API's order.
  const first = await api('GET', `/v1/queues/${Q}/jobs?state=waiting&offset=0&count=25`);
  assert.equal(first[0], xss);
  assert.deepEqual(await rowKeys(page), first);
  const cells = await rowCells(page, xss);
  assert.equal(cells[0], xss);
  assert.equal(cells[1], XSS_KLASS);
  assert.equal(cells[2], '5');
  assert.equal(cells[3], `red${XSS_TAG}`);
  assert.match(cells[4], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  assert.equal(cells[5], '5 / 5');
  const tagTexts = await page.$$eval(`table.jobs tbody tr:first-child a.tag`, (as) => as.map((a) => a.textContent));
  assert.deepEqual(tagTexts, ['red', XSS_TAG]);
  await waitText(page, '.pager .range', '1–25 of 30');
  await shot(page, 'queue');
  // Page 2.
  await page.click('.pager a.next');
  await waitText(page, '.pager .range', '26–30 of 30');
  const second = await api('GET', `/v1/queues/${Q}/jobs?state=waiting&offset=25&count=25`);
  assert.equal(second.length, 5);
  assert.deepEqual(await rowKeys(page), second);
  assert.ok(page.url().includes('offset=25'));
  await page.click('.pager a.prev');
  await waitText(page, '.pager .range', '1–25 of 30');
  // Running: the worker (hostile name, as text) and the lock expiry.
  await page.click('.tabs a[data-tab="running"]');
  await page.waitForSelector('.tabs a.active[data-tab="running"]');
  assert.deepEqual(await rowKeys(page), [running]);
  const runCells = await rowCells(page, running);
  assert.equal(runCells[1], 'Runner');
  assert.equal(runCells[6], XSS_WORKER);
  const job = await api('GET', `/v1/jobs/${running}`);
  assert.equal(job.worker, XSS_WORKER);
  // Stalled, scheduled, depends, recurring tabs each list their job.
  for (const [tab, klass] of [['stalled', 'Staller'], ['scheduled', 'Later'], ['depends', 'Child'], ['recurring', 'Every']]) {
    await page.click(`.tabs a[data-tab="${tab}"]`);
    await page.waitForSelector(`.tabs a.active[data-tab="${tab}"]`);
    const ids = await api('GET', `/v1/queues/${Q}/jobs?state=${tab}`);
    assert.equal(ids.length, 1, tab);
    assert.deepEqual(await rowKeys(page), ids, tab);
    assert.equal((await rowCells(page, ids[0]))[1], klass, tab);
  }
  // Today's stats equal the API's.
  const st = await api('GET', `/v1/queues/${Q}/stats`);
  assert.equal(st.run.count, 1);
  assert.equal(await statValue(page, 'Wait count'), String(st.wait.count));
  assert.equal(await statValue(page, 'Run count'), '1');
  assert.equal(await statValue(page, 'Failed'), String(st.failed));
  const bars = await page.$$eval('[data-timing="Wait"] svg rect.bar', (rs) => rs.reduce((n, r) => n + Number(r.querySelector('title').textContent.split(': ')[1]), 0));
  assert.equal(bars, st.wait.count, 'the wait histogram holds every wait');
  // Another day through the date picker: empty.
  await page.fill('input[name="date"]', '2020-02-29');
  await page.waitForSelector('section.stats[data-day="2020-02-29"]');
  assert.ok(page.url().includes('date=2020-02-29'));
  assert.equal(await statValue(page, 'Wait count'), '0');
  const old = await api('GET', `/v1/queues/${Q}/stats?date=${Date.parse('2020-02-29T12:00:00Z') / 1000}`);
  assert.equal(old.wait.count, 0);
  // Pause, then resume: the button shows the current state.
  await page.click('[data-action="pause"]');
  await page.waitForSelector('[data-action="resume"]');
  await page.waitForSelector('.page-head .badge.state-paused');
  assert.equal((await api('GET', `/v1/queues/${Q}`)).paused, true);
  await page.click('[data-action="resume"]');
  await page.waitForSelector('[data-action="pause"]');
  assert.equal((await api('GET', `/v1/queues/${Q}`)).paused, false);
});

test('the listing and counts refresh live', async ({ page }) => {
  await put('qlive', 'A', {});
  await open(page, '#/queues/qlive');
  await page.waitForSelector('#live.on');
  await waitText(page, '.tabs a[data-tab="waiting"]', 'waiting (1)');
  let navigations = 0;
  page.on('framenavigated', () => { navigations++; });
  const jid = await put('qlive', 'B', {}, { priority: 3 });
  await waitText(page, '.tabs a[data-tab="waiting"]', 'waiting (2)');
  await page.waitForSelector(`table.jobs tbody tr[data-key="${jid}"]`);
  assert.deepEqual((await rowKeys(page))[0], jid);
  assert.equal(navigations, 0);
});

await run();
