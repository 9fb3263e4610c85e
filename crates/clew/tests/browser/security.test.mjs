// The dashboard is safe by construction: values from jobs render as text,
// and state changes from a browser need the session's CSRF token.
import { test, run, api, put, pop, open, assert, URL_, shot } from './lib.mjs';

const PAYLOADS = [
  '<img src=x onerror="window.__xss=1">',
  '"><script>window.__xss=2</script>',
  "'><svg onload=window.__xss=3>",
];

async function seedHostile() {
  const q = 'hostile';
  const jid = await put(q, PAYLOADS[0], { note: PAYLOADS[1], nested: { x: PAYLOADS[2] } }, {
    tags: [PAYLOADS[1], 'plain'],
    metadata: { who: PAYLOADS[2] },
  });
  const failing = await put(q, 'Failing', { n: 1 });
  await pop(q, PAYLOADS[2], 5);
  await api('POST', `/v1/jobs/${failing}/fail`, {
    worker: PAYLOADS[2], group: PAYLOADS[0], message: PAYLOADS[1],
  });
  return { q, jid };
}

test('values from jobs render as text on every page', async ({ page }) => {
  const { q, jid } = await seedHostile();
  const pages = ['#/', `#/queues/${q}`, `#/jobs/${jid}`, '#/failed', '#/workers', '#/tags', '#/tracked', '#/recurring', '#/config', '#/events'];
  for (const hash of pages) {
    await open(page, hash);
    // Let any injected handler (img onerror, svg onload) get its chance.
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => window.__xss), undefined, `script ran on ${hash}`);
    const injected = await page.evaluate(() => document.querySelectorAll('#main script, #main img[onerror], #main svg[onload], #main [onerror], #main [onload]').length);
    assert.equal(injected, 0, `markup from job data became elements on ${hash}`);
  }
  await open(page, `#/jobs/${jid}`);
  await page.waitForFunction((p) => document.body.innerText.includes(p), PAYLOADS[1]);
  const text = await page.evaluate(() => document.body.innerText);
  for (const p of [PAYLOADS[0], PAYLOADS[1], PAYLOADS[2]]) {
    assert.ok(text.includes(p), `the job page shows ${p} as text`);
  }
  await shot(page, 'security-job-with-html');
});

test('hostile queue names, recurring classes and batch ids render as text', async ({ page }) => {
  // Names may hold any printable character (clew_core::limits refuses only
  // control characters), so markup in a name must stay text everywhere.
  const q = `"><img src=x onerror="window.__xss=5">`;
  const jid = await put(q, PAYLOADS[1], { n: 1 }, { tags: [PAYLOADS[0]] });
  await api('POST', `/v1/queues/${encodeURIComponent(q)}/recurring`, { klass: PAYLOADS[2], interval: 60 });
  await api('POST', '/v1/batches', {
    id: `b${PAYLOADS[0]}`, description: PAYLOADS[1], jobs: [{ queue: q, klass: PAYLOADS[2] }],
  });
  await pop(q, PAYLOADS[0], 1);
  const pages = ['#/', `#/queues/${encodeURIComponent(q)}`, `#/jobs/${jid}`, '#/recurring', '#/workers', '#/batches', '#/tags'];
  for (const hash of pages) {
    await open(page, hash);
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => window.__xss), undefined, `script ran on ${hash}`);
    const injected = await page.evaluate(() => document.querySelectorAll('#main script, #main img[onerror], #main svg[onload], #main [onerror], #main [onload]').length);
    assert.equal(injected, 0, `markup from a name became elements on ${hash}`);
  }
  await open(page, '#/');
  await page.waitForFunction((n) => document.body.innerText.includes(n), q);
});

test('responses carry a strict Content-Security-Policy', async ({ page }) => {
  const r = await page.goto(`${URL_}/`);
  const csp = r.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(r.headers()['x-content-type-options'], 'nosniff');
});

test('an action without its CSRF token is refused', async ({ page }) => {
  await put('csrfq', 'K', {});
  await open(page, '#/');
  const without = await page.evaluate(async () => {
    const r = await fetch('/v1/queues/csrfq/pause', { method: 'POST' });
    return { status: r.status, body: await r.json() };
  });
  assert.equal(without.status, 403);
  assert.equal(without.body.error.code, 'csrf');
  const wrong = await page.evaluate(async () => {
    const r = await fetch('/v1/queues/csrfq/pause', { method: 'POST', headers: { 'X-CSRF-Token': 'forged' } });
    return r.status;
  });
  assert.equal(wrong, 403);
  let queue = await api('GET', '/v1/queues/csrfq');
  assert.equal(queue.paused, false, 'the refused requests changed nothing');
  const withToken = await page.evaluate(async () => {
    const s = await (await fetch('/ui/session')).json();
    const r = await fetch('/v1/queues/csrfq/pause', { method: 'POST', headers: { 'X-CSRF-Token': s.csrf } });
    return r.status;
  });
  assert.equal(withToken, 200);
  queue = await api('GET', '/v1/queues/csrfq');
  assert.equal(queue.paused, true, 'the same request with the token worked');
});

test('a form on another site cannot change state', async ({ page }) => {
  const jid = await put('crossq', 'K', {});
  // A page with no origin of the server's (about:blank) posts a form to it,
  // as a malicious site would.
  await page.goto('about:blank');
  await Promise.all([
    page.waitForURL('**/v1/queues/crossq/pause'),
    page.evaluate((url) => {
      const f = document.createElement('form');
      f.method = 'POST';
      f.action = `${url}/v1/queues/crossq/pause`;
      f.enctype = 'text/plain';
      document.body.appendChild(f);
      f.submit();
    }, URL_).catch(() => {}),
  ]);
  await page.waitForLoadState('load');
  const body = await page.evaluate(() => document.body.innerText);
  assert.match(body, /csrf/);
  const job = await api('GET', `/v1/jobs/${jid}`);
  assert.equal(job.state, 'waiting', 'the job was not touched');
  const queue = await api('GET', '/v1/queues/crossq');
  assert.equal(queue.paused, false);
});

await run();
