// With an API token, the dashboard follows the server's token rule: it asks
// for the token, keeps an HttpOnly session cookie, and signs out.
import { test, run, put, open, assert, URL_, TOKEN, shot, waitText } from './lib.mjs';

test('the dashboard asks for the token and refuses a wrong one', async ({ page }) => {
  await page.goto(`${URL_}/`);
  await page.waitForSelector('form[data-form="login"]');
  await shot(page, 'login');
  const unauth = await page.evaluate(async () => (await fetch('/v1/queues')).status);
  assert.equal(unauth, 401);
  await page.fill('form[data-form="login"] input[name="token"]', 'wrong');
  await page.click('form[data-form="login"] button[type="submit"]');
  await waitText(page, '.toast.error', 'invalid API token');
  assert.ok(page.url().endsWith('#/login'));
});

test('the right token opens the dashboard until sign-out', async ({ page }) => {
  await put('authq', 'Klass', {});
  await page.goto(`${URL_}/`);
  await page.fill('form[data-form="login"] input[name="token"]', TOKEN);
  await page.click('form[data-form="login"] button[type="submit"]');
  await page.waitForSelector('#main .page[data-page="overview"]');
  // The session cookie is HttpOnly: scripts cannot read it.
  assert.equal(await page.evaluate(() => document.cookie.includes('clew_session')), false);
  const ok = await page.evaluate(async () => (await fetch('/v1/queues')).status);
  assert.equal(ok, 200);
  const paused = await page.evaluate(async () => {
    const s = await (await fetch('/ui/session')).json();
    const r = await fetch('/v1/queues/authq/pause', { method: 'POST', headers: { 'X-CSRF-Token': s.csrf } });
    return r.status;
  });
  assert.equal(paused, 200);
  await page.click('[data-action="logout"]');
  await page.waitForSelector('form[data-form="login"]');
  const after = await page.evaluate(async () => (await fetch('/v1/queues')).status);
  assert.equal(after, 401);
});

await run();
