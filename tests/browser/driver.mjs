// A thin remote control of Debian's chromium for the browser tests
// (tests/integration/test_ui_browser.py), through playwright-core: one
// JSON command a line on stdin, one JSON answer a line on stdout. The
// test holds the logic and the assertions; this only acts and reports.
//
//   node driver.mjs            (CHROMIUM: the browser, /usr/bin/chromium)
//
// Every wait here has a time limit, and the browser is closed on "quit",
// on end of input and on any signal; the test kills the process group
// as a last resort.
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // As root (CI) chromium's sandbox cannot start; nothing here is
  // untrusted but the page under test, and it runs under CSP.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({
  ignoreHTTPSErrors: true,   // the queue's per-run test CA
  acceptDownloads: true,
  viewport: { width: 1280, height: 800 },
});
const page = await context.newPage();
const events = { dialogs: [], console_errors: [], page_errors: [],
  navigations: 0 };
page.on('dialog', async (d) => {
  events.dialogs.push(d.type() + ': ' + d.message());
  await d.dismiss().catch(() => {});
});
page.on('console', (m) => {
  if (m.type() === 'error') events.console_errors.push(m.text());
});
page.on('pageerror', (e) => events.page_errors.push(String(e)));
// The paths the page asked the queue for, the latest 5,000.
const requests = [];
page.on('request', (r) => {
  requests.push(new URL(r.url()).pathname);
  if (requests.length > 5000) requests.shift();
});
page.on('framenavigated', (f) => { if (f === page.mainFrame()) events.navigations++; });

async function closeAll() {
  await browser.close().catch(() => {});
}
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'])
  process.on(sig, () => { closeAll().finally(() => process.exit(1)); });

const ops = {
  async open({ url }) { await page.goto(url, { waitUntil: 'load', timeout: 20000 }); return page.url(); },
  async hash({ hash }) { await page.evaluate((h) => { location.hash = h; }, hash); return page.url(); },
  async url() { return page.url(); },
  // Waits until some element matching selector has text containing text
  // (any text when absent); answers the texts of all matches.
  async wait({ selector, text, timeout_ms }) {
    await page.waitForFunction(([s, t]) => [...document.querySelectorAll(s)]
      .some((e) => !e.closest('[hidden]') && (t === undefined || t === null ||
        e.textContent.includes(t))),
    [selector, text], { timeout: timeout_ms || 15000, polling: 100 });
    return page.$$eval(selector, (es) => es.map((e) => e.textContent));
  },
  async texts({ selector }) { return page.$$eval(selector, (es) => es.map((e) => e.textContent)); },
  async count({ selector }) { return (await page.$$(selector)).length; },
  async visible({ selector }) { return page.isVisible(selector); },
  async fill({ selector, value }) { await page.fill(selector, value, { timeout: 10000 }); return true; },
  async click({ selector }) { await page.click(selector, { timeout: 10000 }); return true; },
  async screenshot({ path }) { await page.screenshot({ path, fullPage: true }); return path; },
  async eval({ expr }) { return page.evaluate(expr); },
  // A request made by the page itself (same origin, with its cookie).
  async fetch({ path, method, body }) {
    return page.evaluate(async ([p, m, b]) => {
      const r = await fetch(p, { method: m || 'GET', credentials: 'same-origin',
        body: b === undefined ? undefined : b });
      return { status: r.status, body: await r.text() };
    }, [path, method, body]);
  },
  async download({ selector, path }) {
    const [d] = await Promise.all([
      page.waitForEvent('download', { timeout: 15000 }),
      page.click(selector, { timeout: 10000 }),
    ]);
    await d.saveAs(path);
    return { path, suggested: d.suggestedFilename() };
  },
  async cookies() { return context.cookies(); },
  async events() { return events; },
  async requests() { return requests; },
};

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { continue; }
  if (cmd.op === 'quit') break;
  let out;
  try {
    if (!ops[cmd.op]) throw new Error('no such op ' + cmd.op);
    out = { ok: true, value: await ops[cmd.op](cmd) };
  } catch (e) {
    out = { ok: false, error: String(e && e.message || e).slice(0, 4000) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
await closeAll();
process.exit(0);
