// Throttles (#/throttles): the list with running / max and pending exactly,
// setting a maximum through the page's form (checked through the API),
// deleting after the in-page confirmation; a held-back job shows the
// `throttled` state, its throttles and why on its page, and the queue's
// `throttled` tab lists it. A hostile throttle name renders as text.
import { test, run, api, put, pop, open, assert, shot, waitText, clickConfirm } from './lib.mjs';

const XSS = '<img src=x onerror="window.__xss=1">';
const rowKeys = (page, sel) => page.$$eval(`${sel} tbody tr[data-key]`, (rs) => rs.map((r) => r.dataset.key));
const rowCells = (page, sel, key) => page.evaluate(([s, k]) => {
  const row = [...document.querySelectorAll(`${s} tbody tr`)].find((r) => r.dataset.key === k);
  return row ? [...row.querySelectorAll('td')].map((td) => td.textContent) : null;
}, [sel, key]);
async function reopen(page, hash) {
  await page.goto('about:blank');
  return open(page, hash);
}

test('throttles list, set, delete; held-back jobs say why', async ({ page }) => {
  await api('PUT', '/v1/throttles/customer-7', { max: 1 });
  await api('PUT', `/v1/throttles/${encodeURIComponent(XSS)}`, { max: 0 });
  const a = await put('tq', 'K', {}, { throttles: ['customer-7'] });
  const b = await put('tq', 'K', {}, { throttles: ['customer-7', XSS] });
  const popped = await pop('tq', 'w1', 5);
  assert.deepEqual(popped.map((j) => j.jid), [a]);

  await open(page, '#/throttles');
  await page.waitForSelector('table.throttles');
  assert.deepEqual(await rowKeys(page, 'table.throttles'), [XSS, 'customer-7']);
  const cells = await rowCells(page, 'table.throttles', 'customer-7');
  assert.deepEqual(cells.slice(0, 3), ['customer-7', '1 / 1', '1']);
  await shot(page, 'throttles');

  // Raise through the form: b goes back to its queue.
  await page.fill('form[data-form="throttle-set"] input[name="name"]', 'customer-7');
  await page.fill('form[data-form="throttle-set"] input[name="max"]', '2');
  await page.click('form[data-form="throttle-set"] button[type="submit"]');
  await waitText(page, 'table.throttles', '1 / 2');
  assert.equal((await api('GET', '/v1/throttles/customer-7')).max, 2);
  assert.equal((await api('GET', `/v1/jobs/${b}`)).state, 'waiting');

  // A rate limit through the form: the column shows the starts and the
  // limit; a job over it says so on its page.
  await page.fill('form[data-form="throttle-set"] input[name="name"]', 'per-hour');
  await page.fill('form[data-form="throttle-set"] input[name="max"]', '0');
  await page.fill('form[data-form="throttle-set"] input[name="rate"]', '1/3600');
  await page.click('form[data-form="throttle-set"] button[type="submit"]');
  await waitText(page, 'table.throttles tr[data-key="per-hour"] [data-col="rate"]', '0 / 1 per 3600s');
  assert.deepEqual((await api('GET', '/v1/throttles/per-hour')).rate, { limit: 1, period: 3600 });
  const c = await put('rq', 'K', {}, { throttles: ['per-hour'] });
  const d = await put('rq', 'K', {}, { throttles: ['per-hour'] });
  assert.deepEqual((await pop('rq', 'w3', 5)).map((j) => j.jid), [c]);
  assert.equal((await api('GET', `/v1/jobs/${d}`)).state, 'throttled');
  await reopen(page, `#/jobs/${d}`);
  await waitText(page, '[data-why] li[data-code="throttled"]', 'rate limit of throttle per-hour');
  await reopen(page, '#/throttles');
  await waitText(page, 'table.throttles tr[data-key="per-hour"] [data-col="rate"]', '1 / 1 per 3600s');
  await api('DELETE', '/v1/throttles/per-hour');

  // Hold b back again (max 1, a still running), then its pages.
  await api('PUT', '/v1/throttles/customer-7', { max: 1 });
  assert.deepEqual(await pop('tq', 'w2', 5), []);
  await reopen(page, `#/jobs/${b}`);
  await waitText(page, '[data-fact="state"]', 'throttled');
  await waitText(page, '[data-fact="throttles"]', 'customer-7');
  await waitText(page, '[data-why] li[data-code="throttled"]', 'held back by throttle customer-7');
  await reopen(page, '#/queues/tq?state=throttled');
  await page.waitForSelector('table.jobs');
  assert.deepEqual(await rowKeys(page, 'table.jobs'), [b]);
  await waitText(page, '.tabs a[data-tab="throttled"]', 'throttled (1)');

  // Delete after the confirmation.
  await reopen(page, '#/throttles');
  await page.waitForSelector('table.throttles');
  await clickConfirm(page, 'table.throttles tr[data-key="customer-7"] [data-action="delete"]');
  await page.waitForFunction(() => ![...document.querySelectorAll('table.throttles tr[data-key]')].some((r) => r.dataset.key === 'customer-7'));
  const left = await api('GET', '/v1/throttles');
  assert.deepEqual(left.map((t) => t.name), [XSS]);
  assert.equal((await api('GET', `/v1/jobs/${b}`)).state, 'waiting');
});

run();
