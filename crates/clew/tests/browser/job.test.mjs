// A job's page (#/jobs/JID): facts, data, failure, history timeline with
// host and process, lifecycle events, "why is this job not running?", and
// every action (retry, priority, tag / untag, track / untrack, move,
// cancel) done through the page and checked through the API.
import { test, run, api, put, open, assert, shot, waitText, clickConfirm } from './lib.mjs';

const XSS_KLASS = '<img src=x onerror="window.__xss=1">';
const XSS_DATA = '"><script>window.__xss=2</script>';
const XSS_META = "'><svg onload=window.__xss=3>";
const GROUP = 'Timeout<b>bold</b>';
const MESSAGE = `Line one ${XSS_DATA}\n  at worker.rb:10\n  at job.rb:20`;
const ORIGIN = { 'X-Clew-Origin': 'host-seven:4242' };

/** A failed job with hostile strings everywhere, popped from host-seven pid 4242. */
async function failedJob() {
  const data = { note: XSS_DATA, nested: { list: [1, 2] } };
  const jid = await put('jq', XSS_KLASS, data, {
    priority: 3, retries: 2, tags: ['alpha', XSS_DATA], metadata: { who: XSS_META, team: 'core' },
  });
  const popped = await api('POST', '/v1/queues/jq/pop', { worker: 'w-job', count: 1 }, { headers: ORIGIN });
  assert.equal(popped[0].jid, jid);
  await api('POST', `/v1/jobs/${jid}/fail`, { worker: 'w-job', group: GROUP, message: MESSAGE }, { headers: ORIGIN });
  return { jid, data };
}

const fact = (page, key) => page.$eval(`dd[data-fact="${key}"]`, (d) => d.textContent);

test('a failed job: facts, data, failure, why, history and lifecycle events', async ({ page }) => {
  const { jid, data } = await failedJob();
  await open(page, `#/jobs/${jid}`);
  await page.waitForSelector('dl.facts');
  assert.equal(await page.$eval('.page-head h1', (e) => e.textContent), `Job ${jid}`);
  assert.equal(await page.$eval('.page-head .badge', (e) => e.textContent), 'failed');
  assert.equal(await fact(page, 'klass'), XSS_KLASS);
  assert.equal(await fact(page, 'queue'), 'jq');
  assert.equal(await fact(page, 'state'), 'failed');
  assert.equal(await fact(page, 'priority'), '3');
  assert.equal(await fact(page, 'retries'), '2 of 2');
  assert.equal(await fact(page, 'tracked'), 'no');
  assert.deepEqual(await page.$$eval('[data-fact="tags"] .tag-chip a.tag', (as) => as.map((a) => a.textContent)), ['alpha', XSS_DATA]);
  assert.equal(await page.$eval('pre.json', (e) => e.textContent), JSON.stringify(data, null, 2));
  // Why: failed in group G with the message.
  assert.equal(await page.$eval('[data-why] h2', (e) => e.textContent), 'Why is this job not running?');
  const why = await page.$eval('[data-why] li[data-code="failed"]', (e) => e.textContent);
  assert.ok(why.includes(`failed in group ${GROUP}`) && why.includes(`Line one ${XSS_DATA}`), why);
  // The failure: group link, message line, backtrace in a pre.
  assert.equal(await page.$eval('.failure-panel dd a', (e) => e.textContent), GROUP);
  assert.equal(await page.$eval('.failure-panel .message', (e) => e.textContent), `Line one ${XSS_DATA}`);
  assert.equal(await page.$eval('.failure-panel pre.backtrace', (e) => e.textContent), '  at worker.rb:10\n  at job.rb:20');
  // History: put, popped (by w-job, host-seven pid 4242), failed.
  const hist = await page.$$eval('ol.timeline > li', (lis) => lis.map((li) => ({
    what: li.dataset.what, head: li.querySelector('.entry-head strong').textContent,
    meta: (li.querySelector('.entry-meta') || { textContent: '' }).textContent,
    bt: (li.querySelector('pre.backtrace') || { textContent: '' }).textContent,
  })));
  assert.deepEqual(hist.map((e) => e.what), ['put', 'popped', 'failed']);
  assert.equal(hist[0].head, 'Put in queue jq');
  assert.equal(hist[1].head, 'Popped by w-job');
  assert.match(hist[1].meta, /host host-seven\s+pid 4242/);
  assert.equal(hist[2].head, `Failed in group ${GROUP}`);
  assert.match(hist[2].meta, /host host-seven\s+pid 4242/);
  assert.equal(hist[2].bt, '  at worker.rb:10\n  at job.rb:20');
  // Lifecycle events as the API reports them.
  const events = (await api('GET', `/v1/events/search?jid=${jid}`)).events;
  const rows = await page.$$eval('table.events tbody tr', (rs) => rs.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
  assert.deepEqual(rows.map((r) => r[0]), events.map((e) => e.event_type));
  assert.deepEqual(rows.map((r) => r[0]), ['enqueued', 'dequeued', 'perform_started', 'failed']);
  assert.equal(rows[1][5], 'host-seven');
  assert.equal(rows[1][6], '4242');
  assert.ok(rows[0][7].includes(`who=${XSS_META}`) && rows[0][7].includes('team=core'), rows[0][7]);
  assert.ok(rows[3][8].startsWith(`${GROUP}: Line one`), rows[3][8]);
  // Every hostile string is on the page as text.
  const text = await page.evaluate(() => document.body.innerText);
  for (const s of [XSS_KLASS, XSS_DATA, XSS_META, GROUP]) assert.ok(text.includes(s), s);
  await shot(page, 'job');
});

test('actions: retry, priority, tags, track, move, cancel', async ({ page }) => {
  const { jid } = await failedJob();
  await open(page, `#/jobs/${jid}`);
  // Retry: back to waiting in its queue.
  await page.click('[data-action="retry"]');
  await page.waitForSelector('[data-why="waiting"]');
  assert.equal(await fact(page, 'state'), 'waiting');
  let job = await api('GET', `/v1/jobs/${jid}`);
  assert.equal(job.state, 'waiting');
  assert.equal(job.queue, 'jq');
  assert.equal(await page.$('[data-action="retry"]'), null);
  // Priority.
  await page.fill('form[data-form="priority"] input[name="priority"]', '9');
  await page.click('form[data-form="priority"] button[type="submit"]');
  await waitText(page, 'dd[data-fact="priority"]', '9');
  assert.equal((await api('GET', `/v1/jobs/${jid}`)).priority, 9);
  // Tag, then untag.
  await page.fill('form[data-form="tag"] input[name="tag"]', 'added-tag');
  await page.click('form[data-form="tag"] button[type="submit"]');
  await page.waitForSelector('.tag-chip[data-tag="added-tag"]');
  assert.deepEqual((await api('GET', `/v1/jobs/${jid}`)).tags, ['alpha', XSS_DATA, 'added-tag']);
  await page.click('.tag-chip[data-tag="alpha"] [data-action="untag"]');
  await page.waitForFunction(() => !document.querySelector('.tag-chip[data-tag="alpha"]'));
  assert.deepEqual((await api('GET', `/v1/jobs/${jid}`)).tags, [XSS_DATA, 'added-tag']);
  // Track, then untrack.
  await page.click('[data-action="track"]');
  await page.waitForSelector('[data-action="untrack"]');
  assert.equal(await fact(page, 'tracked'), 'yes');
  assert.equal((await api('GET', `/v1/jobs/${jid}`)).tracked, true);
  await page.click('[data-action="untrack"]');
  await page.waitForSelector('[data-action="track"]');
  assert.equal((await api('GET', `/v1/jobs/${jid}`)).tracked, false);
  // Move to another queue (the same job: jid, class, data, tags, priority kept).
  await page.fill('form[data-form="move"] input[name="queue"]', 'jq-other');
  await page.click('form[data-form="move"] button[type="submit"]');
  await waitText(page, 'dd[data-fact="queue"]', 'jq-other');
  job = await api('GET', `/v1/jobs/${jid}`);
  assert.equal(job.queue, 'jq-other');
  assert.equal(job.state, 'waiting');
  assert.equal(job.klass, XSS_KLASS);
  assert.equal(job.priority, 9);
  assert.deepEqual(job.tags, [XSS_DATA, 'added-tag']);
  assert.deepEqual(job.data, { note: XSS_DATA, nested: { list: [1, 2] } });
  assert.deepEqual((await page.$$eval('ol.timeline > li', (l) => l.map((x) => x.dataset.what))), ['put', 'popped', 'failed', 'put', 'put']);
  // Cancel, after the in-page confirmation (declining first changes nothing).
  await page.click('[data-action="cancel"]');
  await page.click('.modal [data-confirm="cancel"]');
  assert.equal((await api('GET', `/v1/jobs/${jid}`)).state, 'waiting');
  await clickConfirm(page, '[data-action="cancel"]');
  await page.waitForSelector('[data-why="gone"]');
  const r = await fetch(`${process.env.CLEW_URL}/v1/jobs/${jid}`, { headers: process.env.CLEW_TOKEN ? { Authorization: `Bearer ${process.env.CLEW_TOKEN}` } : {} });
  assert.equal(r.status, 404);
});

test('why: running, paused queue, dependencies; dependency links', async ({ page }) => {
  const parent = await put('deps-q', 'Parent', {});
  const child = await put('deps-q', 'Child', {}, { depends: [parent] });
  await open(page, `#/jobs/${child}`);
  await page.waitForSelector('[data-why="depends"]');
  const dep = await page.$eval('[data-why] li[data-code="depends"]', (e) => e.textContent);
  assert.ok(dep.includes(`waiting on jobs ${parent} (waiting)`), dep);
  assert.equal(await fact(page, 'dependencies'), parent);
  await page.click(`dd[data-fact="dependencies"] a`);
  await page.waitForSelector(`dd[data-fact="dependents"] a`);
  assert.ok(page.url().endsWith(`#/jobs/${parent}`));
  assert.equal(await fact(page, 'dependents'), child);
  // Waiting in a paused queue.
  await api('POST', '/v1/queues/deps-q/pause');
  await page.reload();
  await page.waitForSelector('[data-why="waiting"] li[data-code="paused"]');
  const codes = await page.$$eval('[data-why] li', (ls) => ls.map((l) => l.dataset.code));
  assert.deepEqual(codes.slice(0, 2), ['paused', 'waiting']);
  await api('POST', '/v1/queues/deps-q/unpause');
  // Popped from outside while the page is open: it now says it is running.
  await page.reload();
  await page.waitForSelector('#live.on');
  await page.waitForSelector('[data-why="waiting"]');
  await api('POST', '/v1/queues/deps-q/pop', { worker: 'runner-1', count: 1 });
  await page.waitForSelector('[data-why="running"]', { timeout: 10000 });
  assert.equal(await page.$eval('[data-why] h2', (e) => e.textContent), 'It is running');
  const running = await page.$eval('[data-why] li[data-code="running"]', (e) => e.textContent);
  assert.ok(running.startsWith('running on worker runner-1 since '), running);
  assert.equal(await fact(page, 'worker'), 'runner-1');
});

test('unique key: the fact, replaced data, a key dropped for its holder', async ({ page }) => {
  const KEY = 'search:<b>user-42</b>';
  const a = await put('jq-u', 'K', { n: 1 }, { unique_key: KEY });
  const again = await api('POST', '/v1/queues/jq-u/jobs', { klass: 'K', data: { n: 2 }, unique_key: KEY, on_conflict: 'replace' });
  assert.deepEqual(again, { jid: a, existing: true });
  await open(page, `#/jobs/${a}`);
  await page.waitForSelector('dd[data-fact="unique_key"]');
  assert.equal(await fact(page, 'unique_key'), `${KEY} (held)`);
  const heads = await page.$$eval('ol.timeline > li .entry-head strong', (ss) => ss.map((s) => s.textContent));
  assert.deepEqual(heads, ['Put in queue jq-u', `Data replaced by a put with unique key ${KEY}`]);
  // a fails; b takes the key; a put again runs without it.
  await api('POST', '/v1/queues/jq-u/pop', { worker: 'w-u', count: 1 });
  await api('POST', `/v1/jobs/${a}/fail`, { worker: 'w-u', group: 'g', message: 'm' });
  const b = await put('jq-u', 'K', {}, { unique_key: KEY });
  assert.notEqual(b, a);
  await put('jq-u', 'K', {}, { jid: a });
  await open(page, `#/jobs/${a}`);
  await page.waitForSelector('ol.timeline li[data-what="unique-dropped"]');
  assert.equal(await page.$('dd[data-fact="unique_key"]'), null);
  const dropped = await page.$eval('ol.timeline li[data-what="unique-dropped"] .entry-head strong', (e) => e.textContent);
  assert.equal(dropped, `Unique key ${KEY} dropped: held by ${b}`);
  await page.click('ol.timeline li[data-what="unique-dropped"] .entry-head a');
  await waitText(page, 'dd[data-fact="unique_key"]', `${KEY} (held)`);
  await shot(page, 'job-unique');
});

await run();
