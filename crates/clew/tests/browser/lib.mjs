// Shared harness of the dashboard's browser tests.
//
// Each *.test.mjs file is run by crates/clew/tests/dashboard.rs against its
// own fresh `clew server --test-mode` (empty SQLite file) with:
//   CLEW_URL          the server's base URL (http://127.0.0.1:PORT)
//   CLEW_TOKEN        the server's API token, when it has one
//   CLEW_CHROMIUM     the chromium executable
//   CLEW_SCREENSHOTS  a directory for screenshots
// A file registers tests with test(name, fn) and ends with run(). Any
// dialog (alert/confirm/prompt), page error, or `window.__xss` set by a
// payload fails the test: the dashboard never opens dialogs itself.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';

export { assert };

export const URL_ = process.env.CLEW_URL;
export const TOKEN = process.env.CLEW_TOKEN || null;
const SHOTS = process.env.CLEW_SCREENSHOTS;

const tests = [];

/** Registers a test: fn({page, browser}) runs on a fresh page. */
export function test(name, fn) {
  tests.push({ name, fn });
}

/**
 * Calls the server's API directly (as a program would: no browser, no
 * CSRF token needed). `now` (seconds) sets X-Clew-Now (test mode).
 */
export async function api(method, path_, body, { now, headers } = {}) {
  const h = { ...(headers || {}) };
  if (TOKEN) h.Authorization = `Bearer ${TOKEN}`;
  if (now !== undefined) h['X-Clew-Now'] = String(now);
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(URL_ + path_, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let j;
  try { j = text ? JSON.parse(text) : null; } catch { j = text; }
  if (!r.ok) throw new Error(`${method} ${path_}: ${r.status} ${text}`);
  return j;
}

/** Puts a job: put('q', 'Klass', {a: 1}, {priority: 5, tags: [...]}) → jid. */
export async function put(queue, klass, data = {}, opts = {}, now) {
  const r = await api('POST', `/v1/queues/${encodeURIComponent(queue)}/jobs`, { klass, data, ...opts }, { now });
  return r.jid;
}

/** Pops up to n jobs of a queue as worker `worker`. */
export async function pop(queue, worker = 'w1', n = 1, now) {
  const r = await api('POST', `/v1/queues/${encodeURIComponent(queue)}/pop`, { worker, count: n }, { now });
  return r.jobs || r;
}

/** Saves a screenshot named `name`.png in the screenshot directory. */
export async function shot(page, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Opens the dashboard at `hash` (e.g. '#/queues/q') and waits for the page. */
export async function open(page, hash = '#/') {
  await page.goto(`${URL_}/${hash}`);
  await page.waitForSelector('#main .page');
  return page;
}

/** Waits until `selector`'s text contains `text`. */
export async function waitText(page, selector, text, timeout = 10000) {
  await page.waitForFunction(
    ([sel, t]) => [...document.querySelectorAll(sel)].some((e) => e.textContent.includes(t)),
    [selector, text], { timeout });
}

/** Clicks a button and accepts the dashboard's in-page confirmation. */
export async function clickConfirm(page, selector) {
  await page.click(selector);
  await page.click('.modal [data-confirm="ok"]');
}

export async function run() {
  const browser = await chromium.launch({
    executablePath: process.env.CLEW_CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  let failed = 0;
  for (const t of tests) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems = [];
    page.on('dialog', async (d) => { problems.push(`dialog opened: ${d.type()} ${d.message()}`); await d.dismiss(); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console error: ${m.text()}`); });
    // Only the server under test may be reached.
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.origin === new URL(URL_).origin) return route.continue();
      problems.push(`request outside the server: ${u.href}`);
      return route.abort();
    });
    const started = Date.now();
    try {
      await t.fn({ page, browser, context });
      const xss = await page.evaluate(() => window.__xss).catch(() => undefined);
      if (xss) problems.push(`script from job data ran: window.__xss = ${xss}`);
      if (problems.length) throw new Error(problems.join('; '));
      console.log(`ok   ${t.name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name}: ${e.stack || e}`);
      await shot(page, `FAILED-${t.name.replace(/[^a-z0-9]+/gi, '-')}`).catch(() => {});
    }
    await context.close();
  }
  await browser.close();
  console.log(`${tests.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
