// The overview (#/): every queue's counts by state, the last hour's
// outcomes, workers online, totals, wait/run charts; live refresh from the
// SSE stream without a reload; values from jobs render as text.
import { test, run, api, put, pop, open, assert, shot, waitText } from './lib.mjs';

const XSS_QUEUE = '"><script>window.__xss=2</script>';
const XSS_KLASS = '<img src=x onerror="window.__xss=1">';

/** Seeds three queues with known counts; returns what the page must show. */
async function seed() {
  // ov-a: 3 waiting put, 1 popped (running) -> 2 waiting, 1 scheduled,
  // 1 depends (on a waiting job), 1 recurring template.
  const a1 = await put('ov-a', 'Alpha', { n: 1 });
  await put('ov-a', 'Alpha', { n: 2 });
  await put('ov-a', 'Alpha', { n: 3 });
  await put('ov-a', 'Alpha', { n: 4 }, { delay: 3600 });
  await put('ov-a', 'Alpha', { n: 5 }, { depends: [a1] });
  await api('POST', '/v1/queues/ov-a/recurring', { klass: 'Nightly', interval: 86400, offset: 3600 });
  const popped = await pop('ov-a', 'worker-a', 1);
  assert.equal(popped.length, 1);
  // ov-b: 2 popped by worker-b, one completes, one fails.
  await put('ov-b', 'Beta', {});
  await put('ov-b', 'Beta', {});
  const [b1, b2] = await pop('ov-b', 'worker-b', 2);
  await api('POST', `/v1/jobs/${b1.jid}/complete`, { worker: 'worker-b' });
  await api('POST', `/v1/jobs/${b2.jid}/fail`, { worker: 'worker-b', group: 'boom', message: 'it broke' });
  // A paused queue whose name and job class are HTML.
  await put(XSS_QUEUE, XSS_KLASS, { x: 1 });
  await api('POST', `/v1/queues/${encodeURIComponent(XSS_QUEUE)}/pause`);
}

/** The text of a queue row's cell (data-col) on the page. */
async function cell(page, queue, col) {
  return page.evaluate(([q, c]) => {
    const row = [...document.querySelectorAll('table.queues tbody tr')].find((r) => r.dataset.key === q);
    return row ? row.querySelector(`[data-col="${c}"]`).textContent : null;
  }, [queue, col]);
}

const statValue = (page, label) => page.evaluate((l) => {
  const el = document.querySelector(`.cards [data-stat="${l}"] .value`);
  return el ? el.textContent : null;
}, label);

test('every queue with its counts, totals, outcomes and charts', async ({ page }) => {
  await seed();
  await open(page, '#/');
  // The header names the namespace the server serves.
  await waitText(page, '#namespace', 'namespace default');
  await page.waitForSelector('table.queues tbody tr[data-key="ov-a"]');
  const expect = {
    'ov-a': { waiting: '2', scheduled: '1', running: '1', stalled: '0', depends: '1', recurring: '1', failed: '0', completed: '0', failed_1h: '0', failure_rate: '—' },
    'ov-b': { waiting: '0', scheduled: '0', running: '0', stalled: '0', depends: '0', recurring: '0', failed: '1', completed: '1', failed_1h: '1', failure_rate: '50%' },
    [XSS_QUEUE]: { waiting: '1', scheduled: '0', running: '0', stalled: '0', depends: '0', recurring: '0', failed: '0', completed: '0', failed_1h: '0', failure_rate: '—' },
  };
  for (const [q, cols] of Object.entries(expect)) {
    for (const [c, v] of Object.entries(cols)) {
      assert.equal(await cell(page, q, c), v, `${q} ${c}`);
    }
  }
  // The API agrees with what the page shows.
  const ov = await api('GET', '/v1/overview');
  for (const q of ov.queues) {
    for (const s of ['waiting', 'scheduled', 'running', 'stalled', 'depends', 'recurring', 'failed']) {
      assert.equal(await cell(page, q.name, s), String(q[s]), `${q.name} ${s} vs API`);
    }
  }
  // The paused flag shows on the paused queue only.
  const pausedRows = await page.$$eval('table.queues tbody tr', (rows) =>
    rows.filter((r) => r.querySelector('.badge.state-paused')).map((r) => r.dataset.key));
  assert.deepEqual(pausedRows, [XSS_QUEUE]);
  // Totals.
  const totals = {
    Queues: '3', Waiting: '3', Scheduled: '1', Running: '1', Stalled: '0', Depends: '1', Recurring: '1',
    Failed: '1', 'Workers online': '2', 'Completed (1 h)': '1', 'Failed (1 h)': '1', 'Failure rate (1 h)': '50%',
    'Throughput (1 h)': '2/h',
  };
  for (const [label, v] of Object.entries(totals)) assert.equal(await statValue(page, label), v, label);
  // Charts of wait and run time with p50 and p95 lines.
  const charts = await page.$$eval('figure.chart', (fs) => fs.map((f) => ({
    title: f.querySelector('figcaption').textContent,
    series: [...f.querySelectorAll('path[data-series]')].map((p) => p.dataset.series),
  })));
  assert.deepEqual(charts.map((c) => c.title), ['Wait time (time in queue), last hour', 'Run time (time to perform), last hour']);
  for (const c of charts) assert.deepEqual(c.series, ['p50', 'p95']);
  // The HTML queue name and nothing else: text, not markup.
  const names = await page.$$eval('table.queues tbody tr td:first-child a', (as) => as.map((a) => a.textContent));
  assert.deepEqual(names.sort(), [XSS_QUEUE, 'ov-a', 'ov-b'].sort());
  await shot(page, 'overview');
  // Each queue links to its page; a count links to that state's tab.
  await page.click('table.queues tbody tr[data-key="ov-a"] td:first-child a');
  await page.waitForSelector('#main .page[data-page="queue"]');
  assert.ok(page.url().endsWith('#/queues/ov-a'), page.url());
  await page.goBack();
  await page.waitForSelector('table.queues tbody tr[data-key="ov-b"]');
  await page.click('table.queues tbody tr[data-key="ov-a"] [data-col="scheduled"]');
  await page.waitForSelector('#main .page[data-page="queue"] .tabs a.active[data-tab="scheduled"]');
});

test('counts update live when a job is put from outside', async ({ page }) => {
  await put('live-q', 'Live', {});
  await open(page, '#/');
  await page.waitForSelector('table.queues tbody tr[data-key="live-q"]');
  await page.waitForSelector('#live.on');
  assert.equal(await cell(page, 'live-q', 'waiting'), '1');
  const before = Number(await statValue(page, 'Waiting'));
  let navigations = 0;
  page.on('framenavigated', () => { navigations++; });
  await page.evaluate(() => { window.__stillHere = true; });
  await put('live-q', 'Live', {});
  await page.waitForFunction(() => {
    const row = document.querySelector('table.queues tbody tr[data-key="live-q"]');
    return row && row.querySelector('[data-col="waiting"]').textContent === '2';
  }, null, { timeout: 10000 });
  await waitText(page, '.cards [data-stat="Waiting"] .value', String(before + 1));
  // A new queue appears too.
  await put('live-new', 'Live', {});
  await page.waitForSelector('table.queues tbody tr[data-key="live-new"]', { timeout: 10000 });
  assert.equal(navigations, 0, 'the page was not reloaded');
  assert.equal(await page.evaluate(() => window.__stillHere), true, 'same document');
});

await run();
