// Browser test: server rendering, hydration and progressive enhancement in headless Debian Chromium.
// Run through end2end/run.sh (it starts a fresh Vortex and sets BASE_URL).
import { chromium } from 'playwright-core';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { MockStripe } from './mock_stripe.mjs';

const BASE = process.env.BASE_URL ?? 'http://127.0.0.1:3000';
const results = [];
async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`  ok    ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`  FAIL  ${name}: ${e.message}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

// A real SMTP server for the sign-up test: Vortex delivers its verification email here (SMTP_URL).
const mailbox = [];
const smtpPort = Number(process.env.SMTP_PORT ?? 0);
const smtp = net.createServer((sock) => {
  let data = false; let buf = ''; let body = '';
  sock.write('220 e2e-sink ESMTP\r\n');
  sock.on('data', (chunk) => {
    buf += chunk.toString('utf8');
    let i;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 2);
      if (data) {
        if (line === '.') { data = false; mailbox.push(body); body = ''; sock.write('250 queued\r\n'); }
        else body += (line.startsWith('.') ? line.slice(1) : line) + '\n';
        continue;
      }
      const cmd = line.toUpperCase();
      if (cmd.startsWith('EHLO') || cmd.startsWith('HELO')) sock.write('250-e2e-sink\r\n250 8BITMIME\r\n');
      else if (cmd.startsWith('DATA')) { data = true; sock.write('354 go ahead\r\n'); }
      else if (cmd.startsWith('QUIT')) { sock.write('221 bye\r\n'); sock.end(); }
      else sock.write('250 ok\r\n');
    }
  });
});
if (smtpPort) await new Promise((r) => smtp.listen(smtpPort, '127.0.0.1', r));
/** Signs `who` in through the sign-in form (the caller waits for where it lands). */
async function signIn(p, who) {
  await p.goto(BASE + '/signin');
  await p.fill('input[name=email]', who.email);
  await p.fill('input[name=password]', who.password);
  await p.click('form[action="/auth/signin"] button[type=submit]');
}

/** A new admin account made with `vortex create-admin` (a unique address from `prefix`). */
function createAdmin(prefix, password) {
  const admin = { email: `${prefix}-${Date.now()}@example.org`, password };
  execFileSync(process.env.VORTEX_BIN, ['create-admin', '--email', admin.email],
    { input: admin.password + '\n', env: { ...process.env, LOG_LEVEL: 'warn' } });
  return admin;
}

/** The first email to `to` (whose decoded text matches `pattern`, if given). */
async function waitForMail(to, timeoutMs = 20000, pattern = null) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = mailbox.map((b) => b.replace(/=\n/g, '').replace(/=3D/g, '='))
      .find((b) => b.includes(`To: ${to}`) && (!pattern || pattern.test(b)));
    if (m) return m;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no email to ${to}${pattern ? ` matching ${pattern}` : ''}`);
}

/** The 6-digit RFC 6238 code of a base32 `secret` for the 30-second `step` (what an authenticator app shows). */
function totp(secret, step) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/[\s=]/g, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', key).update(counter).digest();
  const at = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/** Reloads `p` until `fn` holds (a webhook is processed on its own schedule). */
async function eventually(p, what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
    await p.reload();
  }
}

const psql = (sql) => execFileSync('psql', ['-X', '-tA', '-v', 'ON_ERROR_STOP=1', process.env.DATABASE_URL, '-c', sql])
  .toString().trim();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

try {
  const context = await browser.newContext({ colorScheme: 'dark' });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  let wasmStatus = null;
  page.on('response', (r) => { if (r.url().endsWith('.wasm')) wasmStatus = r.status(); });

  await check('home page is server-rendered with layout, navigation and version', async () => {
    const resp = await page.goto(BASE + '/', { waitUntil: 'load' });
    assert(resp.status() === 200, `status ${resp.status()}`);
    const html = await resp.text();
    assert(html.includes('Research, test and paper-trade'), 'hero text missing from SSR HTML');
    assert(await page.locator('header .brand-name').innerText() === 'Vortex', 'brand missing');
    assert(await page.locator('footer .version').count() === 1, 'version missing');
  });

  await check('the wasm bundle loads and the page hydrates (theme toggle becomes interactive)', async () => {
    const toggle = page.locator('#theme-toggle');
    // Before hydration the button reports "system"; the hydrated effect replaces it with the real theme.
    await page.waitForFunction(() =>
      document.querySelector('#theme-toggle')?.getAttribute('data-theme-state') !== 'system', null, { timeout: 15000 });
    assert(wasmStatus === 200, `wasm status ${wasmStatus}`);
    const before = await toggle.getAttribute('data-theme-state');
    await toggle.click();
    await page.waitForFunction((b) =>
      document.querySelector('#theme-toggle').getAttribute('data-theme-state') !== b, before, { timeout: 5000 });
    const after = await toggle.getAttribute('data-theme-state');
    const applied = await page.evaluate(() => document.documentElement.dataset.theme);
    assert(after !== before && applied === after, `theme ${before} -> ${after}, html data-theme=${applied}`);
    const stored = await page.evaluate(() => localStorage.getItem('vortex-theme'));
    assert(stored === after, `stored theme ${stored}`);
  });

  await check('the chosen theme survives a reload (applied before paint)', async () => {
    const stored = await page.evaluate(() => localStorage.getItem('vortex-theme'));
    await page.reload({ waitUntil: 'domcontentloaded' });
    const applied = await page.evaluate(() => document.documentElement.dataset.theme);
    assert(applied === stored, `after reload data-theme=${applied}, stored ${stored}`);
  });

  await check('client-side navigation to the status page calls a server function', async () => {
    await page.click('nav >> text=Status');
    await page.waitForURL(BASE + '/status');
    await page.locator('[data-dependency="postgres"] .dep-state').waitFor({ timeout: 10000 });
    assert(await page.locator('[data-dependency="postgres"] .dep-state').innerText() === 'Up', 'postgres not up');
    assert(await page.locator('[data-dependency="redis"] .dep-state').innerText() === 'Up', 'redis not up');
    const first = await page.locator('#checked-at').innerText();
    // The click may have been a full page load (the reload above only waited for the DOM): the refresh
    // button works once this page is hydrated (the theme toggle leaves its "system" state then).
    await page.waitForFunction(() =>
      document.querySelector('#theme-toggle')?.getAttribute('data-theme-state') !== 'system', null, { timeout: 15000 });
    await page.waitForTimeout(1100);
    // The refresh button re-runs the server function (a GET to /api/status) and re-renders the result.
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.url().includes('/api/status'), { timeout: 15000 }),
      page.click('#refresh-status'),
    ]);
    assert(resp.status() === 200, `status server function answered ${resp.status()}`);
    await page.waitForFunction((f) => document.querySelector('#checked-at')?.innerText !== f, first, { timeout: 15000 });
  });

  await check('the Market data page draws the candlestick chart after hydration', async () => {
    await page.click('nav >> text=Market data');
    await page.waitForURL(BASE + '/market');
    await page.locator('#market-chart[data-state="ready"] canvas').first().waitFor({ timeout: 15000 });
    const candles = Number(await page.locator('#market-chart').getAttribute('data-candles'));
    assert(candles === 5720, `chart has ${candles} candles`);
    assert((await page.locator('#chart-status').innerText()).includes('5720 candles'), 'status text not updated');
    // A full page load (not client-side navigation) draws it too.
    await page.goto(BASE + '/market?from=2018-01-20&to=2018-01-21', { waitUntil: 'load' });
    await page.waitForFunction(() => document.querySelector('#market-chart')?.dataset.candles === '288', null, { timeout: 15000 });
  });

  await check('no console errors', async () => {
    assert(consoleErrors.length === 0, consoleErrors.join(' | '));
  });

  await check('an unknown URL shows the styled 404 page', async () => {
    const resp = await page.goto(BASE + '/no-such-page');
    assert(resp.status() === 404, `status ${resp.status()}`);
    assert((await page.locator('h1').innerText()).includes('Page not found'), 'no 404 heading');
  });

  await check('pages render without JavaScript', async () => {
    const noJs = await browser.newContext({ javaScriptEnabled: false });
    const p = await noJs.newPage();
    await p.goto(BASE + '/status');
    assert(await p.locator('[data-dependency="postgres"] .dep-state').innerText() === 'Up', 'status not rendered');
    await p.goto(BASE + '/market');
    assert(await p.locator('tr[data-series] td[data-missing="40"]').count() === 1, 'coverage not rendered without JS');
    assert(await p.locator('#market-chart canvas').count() === 0, 'chart drawn without JS?');
    await noJs.close();
  });

  const trader = { email: `e2e-${Date.now()}@example.org`, password: 'a long enough e2e passphrase' };
  await check('sign up, confirm from the received email, sign in and sign out', async () => {
    assert(smtpPort, 'SMTP_PORT not set');
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    const email = trader.email;
    const password = trader.password;
    await p.goto(BASE + '/signup');
    await p.fill('input[name=email]', email);
    await p.fill('input[name=display_name]', 'Eve Tester');
    await p.fill('input[name=password]', password);
    await p.click('button[type=submit]');
    await p.waitForURL(/\/signin\?ok=check_email/);
    assert((await p.locator('.flash.ok').innerText()).includes('Check your inbox'), 'no confirmation message');
    const mail = await waitForMail(email);
    const link = mail.match(/https?:\/\/\S+\/verify-email\?token=[0-9a-f]{64}/)?.[0];
    assert(link, 'no verification link in the email');
    await p.goto(link);
    await p.click('#confirm-email');
    await p.waitForURL(/\/signin\?ok=verified/);
    await p.fill('input[name=email]', email);
    await p.fill('input[name=password]', password);
    await p.click('form[action="/auth/signin"] button[type=submit]');
    await p.waitForURL(/\/account/);
    await p.locator('#account-link').waitFor();
    assert((await p.locator('#account-link').innerText()) === 'Eve Tester', 'header does not show the user');
    assert(await p.locator('#sessions tbody tr').count() === 1, 'one active session listed');
    await p.click('#signout');
    await p.waitForURL(/\/signin\?ok=signed_out/);
    assert(await p.locator('#signin-link').isVisible(), 'still signed in after sign-out');
    const resp = await p.goto(BASE + '/account');
    assert(p.url().includes('/signin'), `account page reachable after sign-out: ${p.url()}`);
    await ctx.close();
  });

  await check('backtest: macd template → run on demo data → live status → metrics, charts with trade markers, why-here, CSV', async () => {
    const ctx = await browser.newContext({ acceptDownloads: true });
    const p = await ctx.newPage();
    const errors = [];
    p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto(BASE + '/signin');
    await p.fill('input[name=email]', trader.email);
    await p.fill('input[name=password]', trader.password);
    await p.click('form[action="/auth/signin"] button[type=submit]');
    await p.waitForURL(/\/account/);
    await p.click('nav >> text=Strategies');
    await p.waitForURL(/\/strategies$/);
    await p.selectOption('#new-strategy select[name=template]', 'macd');
    await p.click('#new-strategy button[type=submit]');
    await p.waitForURL(/\/strategies\/[0-9a-f-]{36}\?ok=strategy_created/);
    // The editor mounts after hydration and the server validates the source as typed.
    await p.locator('.cm-editor .cm-lineNumbers').waitFor({ timeout: 15000 });
    await p.locator('#editor-status', { hasText: 'valid' }).waitFor({ timeout: 15000 });
    assert(await p.locator('#params tbody tr').count() === 3, 'macd declares fast, slow and signal');
    await p.click('#run-strategy');
    await p.waitForURL(/\/backtests\/new\?strategy=/);
    trader.newRun = p.url();
    assert((await p.locator('#instruments').innerText()).includes('ADA/BTC'), 'coverage of the demo data is listed');
    await p.click('#start-backtest');
    await p.waitForURL(/\/backtests\/[0-9a-f-]{36}$/);
    trader.backtest = p.url();
    // Live status: the page polls and reloads itself when the run is done.
    await p.locator('#metrics').waitFor({ timeout: 30000 });
    const finalEquity = await p.locator('[data-metric=final_equity] .metric-value').innerText();
    assert(/^\d/.test(finalEquity), `final equity shown: ${finalEquity}`);
    await p.locator('#backtest-chart[data-state=ready]').waitFor({ timeout: 15000 });
    assert(await p.locator('#backtest-chart canvas').count() >= 3, 'price, equity and drawdown charts drawn');
    const markers = Number(await p.locator('#backtest-chart').getAttribute('data-markers'));
    const trades = Number((await p.locator('#trades-head').innerText()).match(/\d+/)[0]);
    assert(trades > 0, 'the run made trades');
    assert(markers >= trades, `entry and exit markers drawn (${markers} for ${trades} trades)`);
    await p.locator('#trades button[data-trace-time]').first().click();
    await p.locator('#trace-panel .trace-actions').first().waitFor({ timeout: 15000 });
    assert(/buy|bought|entry/i.test(await p.locator('#trace-panel').innerText()), 'why-here explains the entry');
    const [download] = await Promise.all([p.waitForEvent('download'), p.click('#export-csv')]);
    const path = await download.path();
    const csv = (await import('node:fs')).readFileSync(path, 'utf8').trim().split('\n');
    assert(csv[0].startsWith('seq,entry_time,exit_time'), 'CSV header');
    assert(csv.length === trades + 1, `CSV has one row per trade (${csv.length - 1} vs ${trades})`);
    // The HTML report opens offline with its charts (library, script and data are inside the file).
    const [report] = await Promise.all([p.waitForEvent('download'), p.click('#export-html')]);
    const reportPath = (await report.path()) + '.html';
    (await import('node:fs')).copyFileSync(await report.path(), reportPath);
    const offline = await browser.newContext({ offline: true });
    const r = await offline.newPage();
    const fetched = [];
    r.on('request', (q) => { if (!q.url().startsWith('file:')) fetched.push(q.url()); });
    await r.goto('file://' + reportPath);
    await r.locator('[data-backtest-chart][data-state=ready]').waitFor({ timeout: 15000 });
    assert(await r.locator('canvas').count() >= 3, 'report charts drawn offline');
    assert(fetched.length === 0, `report fetched ${fetched.join(', ')}`);
    await offline.close();
    assert(errors.length === 0, `console errors: ${errors.join(' | ')}`);
    await ctx.close();
  });

  await check('notifications: backtest email on, run a backtest, the bell rises live, open it → the run, badge gone', async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    const errors = [];
    p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto(BASE + '/signin');
    await p.fill('input[name=email]', trader.email);
    await p.fill('input[name=password]', trader.password);
    await p.click('form[action="/auth/signin"] button[type=submit]');
    await p.waitForURL(/\/account/);
    // Start from nothing unread (the earlier backtest left one notification).
    await p.goto(BASE + '/notifications');
    if (await p.locator('#read-all').count()) {
      await p.click('#read-all');
      await p.waitForURL(/\/notifications\?ok=all_read/);
    }
    assert(await p.locator('#notif-bell .badge').isHidden(), 'badge hidden at 0');
    assert((await p.locator('#notif-bell').getAttribute('aria-label')) === 'Notifications, 0 unread', 'bell label at 0');
    // Backtests → Email: Immediately.
    await p.goto(BASE + '/notifications/settings');
    assert(await p.locator('#pref-security-email').isDisabled(), 'security email is locked on');
    await p.selectOption('#pref-backtests-email', 'immediate');
    await p.click('#save-prefs');
    await p.waitForURL(/\/notifications\/settings\?ok=prefs_saved/);
    assert((await p.locator('#pref-backtests-email').inputValue()) === 'immediate', 'the choice was saved');
    // This tab stays put (hydrated, listening); another tab runs the backtest.
    await p.goto(BASE + '/notifications/settings');
    await p.locator('#theme-toggle[data-theme-state="dark"], #theme-toggle[data-theme-state="light"]').waitFor({ timeout: 15000 });
    await p.evaluate(() => { window.__noReload = 'still here'; });
    const runner = await ctx.newPage();
    await runner.goto(trader.newRun ?? BASE + '/backtests/new');
    const started = Date.now();
    await runner.click('#start-backtest');
    await runner.waitForURL(/\/backtests\/[0-9a-f-]{36}$/);
    const runPath = new URL(runner.url()).pathname;
    await p.locator('#notif-bell .badge', { hasText: /^1$/ }).waitFor({ state: 'visible', timeout: 60000 });
    console.log(`        (badge rose ${Date.now() - started} ms after the run was started)`);
    assert(await p.evaluate(() => window.__noReload) === 'still here', 'the page was reloaded');
    assert((await p.locator('#notif-bell').getAttribute('aria-label')) === 'Notifications, 1 unread', 'bell label at 1');
    // The email with its one-click header arrived too.
    let mail = null;
    for (const deadline = Date.now() + 30000; !mail && Date.now() < deadline;) {
      mail = mailbox.find((b) => b.includes(`To: ${trader.email}`) && b.includes('X-Vortex-Event: backtest.finished'));
      if (!mail) await new Promise((r) => setTimeout(r, 200));
    }
    assert(mail && /List-Unsubscribe: <http[^>]+\/unsubscribe\/one-click\?t=/.test(mail), 'backtest email with List-Unsubscribe');
    // Open the bell, then the item: marked read, on the run's page, badge gone.
    await p.click('#notif-bell');
    await p.waitForURL(/\/notifications$/);
    const item = p.locator('#notifications li.unread').first();
    assert((await item.innerText()).includes('Backtest finished'), 'the new notification is listed first');
    await item.locator('button[type=submit]').click();
    await p.waitForURL((u) => u.pathname === runPath);
    await p.locator('#notif-bell').waitFor();
    assert(await p.locator('#notif-bell .badge').isHidden(), 'badge gone after opening');
    // On the centre's page, what arrives meanwhile shows up above the list, without a reload.
    await p.goto(BASE + '/notifications');
    await p.locator('#theme-toggle[data-theme-state="dark"], #theme-toggle[data-theme-state="light"]').waitFor({ timeout: 15000 });
    await p.evaluate(() => { window.__noReload = 'still here'; });
    await runner.goto(trader.newRun ?? BASE + '/backtests/new');
    await runner.click('#start-backtest');
    await p.locator('#live-notifications li.unread', { hasText: 'Backtest finished' }).waitFor({ timeout: 60000 });
    await p.locator('#notif-bell .badge', { hasText: /^1$/ }).waitFor({ state: 'visible', timeout: 15000 });
    assert(await p.evaluate(() => window.__noReload) === 'still here', 'the centre was reloaded');
    await runner.close();
    assert(errors.length === 0, `console errors: ${errors.join(' | ')}`);
    await ctx.close();
  });

  await check('paper trading: "Paper-trade this" on the finished backtest → the run → a candle arrives → the page updates without a reload', async () => {
    assert(trader.backtest, 'no finished backtest to start from');
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    const errors = [];
    p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto(BASE + '/signin');
    await p.fill('input[name=email]', trader.email);
    await p.fill('input[name=password]', trader.password);
    await p.click('form[action="/auth/signin"] button[type=submit]');
    await p.waitForURL(/\/account/);
    await p.goto(trader.backtest);
    await p.click('#paper-trade-this');
    await p.waitForURL(/\/paper\/new\?/);
    assert(Number(await p.inputValue('input[name=fee_pct]')) === 0.1, 'the backtest\'s fee is carried over');
    assert((await p.locator('#instruments option:checked').textContent()).includes('ADA/BTC'), 'the backtest\'s instrument is chosen');
    await p.click('#start-paper');
    await p.waitForURL(/\/paper\/[0-9a-f-]{36}$/);
    assert((await p.locator('#run-status').innerText()) === 'active', 'the run is active');
    assert((await p.locator('#candles-processed').innerText()) === '0', 'nothing processed yet');
    // Hydrated (the theme toggle knows its state), then the page must not reload from here on.
    await p.locator('#theme-toggle[data-theme-state="dark"], #theme-toggle[data-theme-state="light"]').waitFor({ timeout: 15000 });
    await p.evaluate(() => { window.__noReload = 'still here'; });
    // Two candles arrive: stored by `vortex run-etl` from a CSV; the paper tick hands them to the run.
    const fs = await import('node:fs');
    const os = await import('node:os');
    const run = p.url().split('/').pop();
    const liveFrom = Number(execFileSync('psql', ['-X', '-tA', process.env.DATABASE_URL, '-c',
      `select (extract(epoch from live_from) * 1000)::bigint from paper_run where paper_run_id = '${run}'`]).toString().trim());
    assert(liveFrom > 0, 'the run\'s first live candle');
    const dir = fs.mkdtempSync(os.tmpdir() + '/vortex-e2e-');
    const rows = [0, 1].map((i) => `${new Date(liveFrom + i * 300000).toISOString().replace('.000Z', 'Z')},5.1e-05,5.2e-05,5.0e-05,5.15e-05,1000`);
    fs.writeFileSync(dir + '/ADA-BTC-5m.csv', ['timestamp,open,high,low,close,volume', ...rows].join('\n') + '\n');
    execFileSync(process.env.VORTEX_BIN, ['run-etl', '--source', `csv:${dir}/ADA-BTC-5m.csv`], { env: { ...process.env, LOG_LEVEL: 'warn' } });
    await p.waitForFunction(() => document.querySelector('#candles-processed')?.innerText === '2', null, { timeout: 20000 });
    assert(await p.locator('tr.processed-candle').count() === 2, 'the two decisions are listed');
    assert(await p.evaluate(() => window.__noReload) === 'still here', 'the run page was reloaded');
    // Pause through the form (a plain post and redirect), then the parity report.
    await p.click('#pause-run');
    await p.waitForURL(/\?ok=paper_paused/);
    assert((await p.locator('#run-status').innerText()) === 'paused', 'paused');
    await p.click('#parity-link');
    await p.locator('#parity-summary').waitFor({ timeout: 15000 });
    assert(errors.length === 0, `console errors: ${errors.join(' | ')}`);
    await ctx.close();
  });

  await check('plans: a plan without room refuses the next backtest in place; the plan page shows the plan', async () => {
    // The operator gives the trader a plan with no concurrent backtests (the same action as the admin API).
    const vortex = (...args) => execFileSync(process.env.VORTEX_BIN, args, { env: { ...process.env, LOG_LEVEL: 'warn' } }).toString();
    vortex('plans', 'create', '--slug', 'paused', '--name', 'Paused', '--limit', 'concurrent_backtests=0');
    vortex('plans', 'assign', '--email', trader.email, '--plan', 'paused', '--reason', 'browser test');
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    const errors = [];
    p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto(BASE + '/signin');
    await p.fill('input[name=email]', trader.email);
    await p.fill('input[name=password]', trader.password);
    await p.click('form[action="/auth/signin"] button[type=submit]');
    await p.waitForURL(/\/account/);
    await p.goto(trader.newRun ?? BASE + '/backtests/new');
    await p.click('#start-backtest');
    await p.waitForURL(/\/backtests\/new\?.*failed=1/);
    const message = await p.locator('.field-error').first().innerText();
    assert(/concurrent backtests/.test(message) && /your plan \(Paused\)/.test(message), `in-place message: ${message}`);
    await p.click('a[href="/account/plan"]');
    await p.waitForURL(/\/account\/plan$/);
    assert((await p.locator('#plan-name').innerText()) === 'Paused', 'the plan page names the plan');
    const row = p.locator('#plan-limits tr[data-limit="concurrent_backtests"]');
    assert(/\b0\b/.test(await row.innerText()), 'the limit row shows 0 allowed');
    assert(await p.locator('#plan-compare tr[data-plan="free"]').count() === 1, 'the plans are compared');
    vortex('plans', 'assign', '--email', trader.email, '--plan', 'default', '--reason', 'browser test done');
    assert(errors.length === 0, `console errors: ${errors.join(' | ')}`);
    await ctx.close();
  });

  await check('admin console: an admin finds the trader, suspends them (their session ends, sign-in shows the reason) and lifts it', async () => {
    const admin = createAdmin('e2e-admin', 'another long enough e2e passphrase');
    const tctx = await browser.newContext();
    const t = await tctx.newPage();
    await signIn(t, trader);
    await t.waitForURL(/\/account/);
    const actx = await browser.newContext();
    const a = await actx.newPage();
    const errors = [];
    a.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    a.on('pageerror', (e) => errors.push(String(e)));
    await signIn(a, admin);
    await a.waitForURL(/\/account/);
    await a.goto(BASE + '/admin');
    assert(Number(await a.locator('#stat-users').innerText()) >= 2, 'the overview counts users');
    await a.goto(BASE + '/admin/users');
    await a.fill('#user-q', trader.email);
    await a.click('#user-search button[type=submit]');
    await a.waitForURL(/\/admin\/users\?.*q=/);
    assert((await a.locator('#user-list tbody tr').count()) === 1, 'the search finds exactly the trader');
    await a.click(`#user-list a:has-text("${trader.email}")`);
    await a.waitForURL(/\/admin\/users\/[0-9a-f-]{36}$/);
    await a.fill('#suspend-reason', 'e2e: abuse report under review');
    await a.click('#suspend');
    await a.locator('#unsuspend').waitFor();
    // The trader's session ended; signing in again shows the reason.
    await t.goto(BASE + '/account');
    await t.waitForURL(/\/signin/);
    await signIn(t, trader);
    await t.locator('text=Account suspended').first().waitFor();
    assert((await t.content()).includes('e2e: abuse report under review'), 'the reason is shown at sign-in');
    await a.click('#unsuspend');
    await a.locator('#suspend').waitFor();
    await signIn(t, trader);
    await t.waitForURL(/\/account/);
    // The audit log, from the user page: both changes, filtered to the suspension, downloadable as CSV.
    await a.click('#user-full-audit');
    await a.waitForURL(/\/admin\/audit\?user=/);
    await a.locator('#audit-table tr[data-event="user_unsuspended"]').first().waitFor();
    await a.fill('#audit-event', 'user_suspended');
    await a.click('#audit-apply');
    await a.waitForURL(/event=user_suspended/);
    const rows = a.locator('#audit-table tbody tr');
    assert((await rows.count()) === 1, 'the filter keeps the one suspension');
    assert((await rows.first().innerText()).includes('abuse report under review'), 'the detail carries the reason');
    const [download] = await Promise.all([a.waitForEvent('download'), a.click('#audit-csv')]);
    const csv = readFileSync(await download.path(), 'utf8');
    assert(csv.startsWith('id,time,event,user_id,user_email'), 'the CSV has its header');
    assert(csv.trim().split('\n').length === 2 && csv.includes(trader.email), 'the CSV holds the one event');
    assert(errors.length === 0, `console errors: ${errors.join(' | ')}`);
    await tctx.close();
    await actx.close();
  });

  await check('catalogue: an admin publishes a catalogue strategy; the trader creates a strategy from it', async () => {
    const admin = createAdmin('e2e-curator', 'a curator passphrase long enough');
    const actx = await browser.newContext();
    const a = await actx.newPage();
    const errors = [];
    a.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    a.on('pageerror', (e) => errors.push(String(e)));
    await signIn(a, admin);
    await a.waitForURL(/\/account/);
    await a.goto(BASE + '/admin/catalogue');
    assert(await a.locator('#catalogue-list tr[data-slug="macd"]').count() === 1, 'the built-ins are listed');
    const source = '# Channel breakout\nparam n: int = 20 in 2..200\nlet top = highest(high, n)\nlet bottom = lowest(low, n)\n'
      + 'entry long when crosses_above(close, top[1])\nexit long when crosses_below(close, bottom[1])\n';
    const slug = `e2e_breakout_${Date.now()}`;
    await a.fill('#catalogue-slug', slug);
    await a.fill('#catalogue-name', 'E2E channel breakout');
    await a.fill('#catalogue-description', 'Long on a close above the 20-bar high.');
    await a.fill('#catalogue-source', source);
    await a.check('#catalogue-published');
    await a.click('#create-catalogue');
    await a.waitForURL(/\/admin\/catalogue\/[0-9a-f-]{36}\?ok=admin_catalogue_saved/);
    assert(/published/.test(await a.locator('#catalogue-state').innerText()), 'published');
    const tctx = await browser.newContext();
    const t = await tctx.newPage();
    t.on('pageerror', (e) => errors.push(String(e)));
    await signIn(t, trader);
    await t.waitForURL(/\/account/);
    await t.goto(BASE + '/strategies');
    await t.selectOption('#new-strategy select[name=template]', slug);
    await t.click('#new-strategy button[type=submit]');
    await t.waitForURL(/\/strategies\/[0-9a-f-]{36}\?ok=strategy_created/);
    await t.locator('#editor-status', { hasText: 'valid' }).waitFor({ timeout: 15000 });
    assert(await t.locator('#params tbody tr').count() === 1, 'the catalogue strategy declares n');
    assert((await t.content()).includes('E2E channel breakout'), 'named after the entry');
    // Hidden again: the trader's list no longer offers it.
    await a.uncheck('#catalogue-published');
    await a.click('#save-catalogue');
    await a.waitForURL(/\?ok=admin_catalogue_saved/);
    await t.goto(BASE + '/strategies');
    assert(await t.locator(`#new-strategy option[value="${slug}"]`).count() === 0, 'hidden from traders');
    assert(errors.length === 0, `console errors: ${errors.join(' | ')}`);
    await tctx.close();
    await actx.close();
  });

  // The console's flow as one admin walks it with one new trader: sign-up by invitation, a plan made here and
  // bought through the provider's checkout (end2end/mock_stripe.mjs speaks Stripe's API and signs its webhooks),
  // a failed payment that ends the subscription, a failed job retried, two-factor sign-in.
  const stripe = await new MockStripe({
    port: Number(process.env.STRIPE_PORT), apiKey: 'sk_test_e2e_mock_key',
    webhookSecret: 'whsec_e2e_mock_signing_secret', appUrl: BASE,
  }).start();
  const owner = createAdmin('e2e-owner', 'the owner passphrase is long enough');
  const actx = await browser.newContext();
  const a = await actx.newPage();
  const tctx = await browser.newContext();
  const t = await tctx.newPage();
  const flowErrors = [];
  for (const pg of [a, t]) {
    pg.on('pageerror', (e) => flowErrors.push(String(e)));
    pg.on('console', (m) => {
      const at = m.location()?.url ?? '';
      // The refused sign-ups below answer 403 on purpose; the browser logs the status of such a page.
      if (m.type() === 'error' && !(/^Failed to load resource/.test(m.text()) && at.endsWith('/auth/signup'))) {
        flowErrors.push(`${m.text()} (${at})`);
      }
    });
  }
  const ivy = { email: `ivy-${Date.now()}@example.org`, password: 'invited trader passphrase 42' };
  const slug = `pro-e2e-${Date.now()}`;
  let subscription = null;
  const planRow = (key) => t.locator(`#plan-limits tr[data-limit="${key}"]`).innerText();

  await check('sign-up by invitation: the admin makes sign-up invite-only and invites; without the link a visitor is refused, with it they join once', async () => {
    await signIn(a, owner);
    await a.waitForURL(/\/account/);
    await a.goto(BASE + '/admin');
    await a.selectOption('#signup-policy', 'invite');
    await a.click('#save-settings');
    await a.waitForURL(/\/admin\?ok=/);
    assert(await a.locator('#signup-policy').inputValue() === 'invite', 'the policy is saved');
    const signUp = async (url, email) => {
      await t.goto(url);
      await t.fill('input[name=email]', email);
      await t.fill('input[name=display_name]', 'Ivy Invited');
      await t.fill('input[name=password]', ivy.password);
      await t.click('form[action="/auth/signup"] button[type=submit]');
    };
    await signUp(BASE + '/signup', ivy.email);
    await t.locator('text=Sign-up on this instance is by invitation').first().waitFor();
    // The refusal page's "Go back" (a script with the page's CSP nonce) returns to the form.
    await t.click('#go-back');
    await t.waitForURL(/\/signup$/);
    await a.click('#create-invite');
    await a.locator('#invite-link').waitFor();
    const link = (await a.locator('#invite-link').innerText()).trim();
    assert(/\/signup\?invite=/.test(link), `an invitation link: ${link}`);
    await signUp(link, ivy.email);
    await t.waitForURL(/\/signin\?ok=check_email/);
    const mail = await waitForMail(ivy.email);
    await t.goto(mail.match(/https?:\/\/\S+\/verify-email\?token=[0-9a-f]{64}/)[0]);
    await t.click('#confirm-email');
    await t.waitForURL(/\/signin\?ok=verified/);
    // The link is spent: someone else with it is refused.
    await signUp(link, `second-${ivy.email}`);
    await t.locator('text=This invitation link is not valid').first().waitFor();
    await signIn(t, ivy);
    await t.waitForURL(/\/account/);
  });

  await check('plans and payments: the admin creates a plan with limits; the trader buys it through the provider\'s checkout and their limits change', async () => {
    await a.goto(BASE + '/admin/plans');
    const f = a.locator('#new-plan-form');
    await f.locator('input[name=slug]').fill(slug);
    await f.locator('input[name=name]').fill('Pro E2E');
    await f.locator('input[name=price_minor]').fill('1900');
    await f.locator('input[name=provider_price_id]').fill('price_e2e_pro');
    await f.locator('input[name=limit_concurrent_backtests]').fill('7');
    await f.locator('input[name=limit_active_paper_runs]').fill('4');
    await a.click('#create-plan');
    await a.waitForURL(/\/admin\/plans\?ok=/);
    const card = a.locator(`section.plan[data-plan="${slug}"]`);
    assert(await card.locator('input[name=limit_concurrent_backtests]').inputValue() === '7', 'the limit is stored');
    assert(await card.locator('input[name=limit_strategies]').inputValue() === '', 'an empty limit stays unset');
    // A limit out of its range is stopped in place by the field itself (the server refuses it too: API tests).
    const field = card.locator('input[name=limit_concurrent_backtests]');
    await field.fill('5000');
    assert(!(await field.evaluate((el) => el.checkValidity())), 'the field refuses 5000 (max 1000)');
    await field.fill('7');

    await t.goto(BASE + '/account/plan');
    const before = await planRow('concurrent_backtests');
    assert(!/\b7\b/.test(before), `not yet 7: ${before}`);
    await t.click(`#plan-compare tr[data-plan="${slug}"] button.upgrade`);
    await t.waitForURL(new RegExp(`^${stripe.url}/c/pay/cs_test_`));
    await t.click('#pay');
    await t.waitForURL(/\/account\/plan\?billing=success/);
    await eventually(t, 'the new plan', async () => (await t.locator('#plan-name').innerText()) === 'Pro E2E');
    assert(/\b7\b/.test(await planRow('concurrent_backtests')), 'the plan\'s limit applies');
    assert(/\b4\b/.test(await planRow('active_paper_runs')), 'the plan\'s paper-run limit applies');
    assert(await t.locator('#billing-status').getAttribute('data-status') === 'active', 'the subscription is active');
    assert(await t.locator('#billing-invoices tbody tr').count() === 1, 'the paid invoice is listed');
    subscription = stripe.subscriptions.at(-1).id;
    await eventually(t, 'the webhooks', async () => stripe.deliveries.length >= 3);
    assert(stripe.deliveries.every((d) => d.status === 200), `webhooks accepted: ${JSON.stringify(stripe.deliveries)}`);
  });

  await check('billing: a failed payment makes the subscription past due (the plan stays, the trader is told); cancelled, the trader is back on the free limits', async () => {
    assert(subscription, 'no subscription from the previous step');
    await stripe.failPayment(subscription);
    await eventually(t, 'past_due', async () => await t.locator('#billing-status').getAttribute('data-status') === 'past_due');
    assert((await t.locator('#plan-name').innerText()) === 'Pro E2E', 'past_due keeps the plan while the provider retries');
    await waitForMail(ivy.email, 20000, /Payment failed for your/);
    await stripe.cancel(subscription);
    await eventually(t, 'canceled', async () => await t.locator('#billing-status').getAttribute('data-status') === 'canceled');
    assert((await t.locator('#plan-name').innerText()) !== 'Pro E2E', 'back on the default plan');
    assert(!/\b7\b/.test(await planRow('concurrent_backtests')), 'the default limit applies again');
    await a.goto(BASE + '/admin/subscriptions');
    const row = a.locator('#subscription-table tbody tr', { hasText: ivy.email });
    assert(/canceled/.test(await row.innerText()), 'the admin sees the provider state');
    assert(stripe.deliveries.every((d) => d.status === 200), `webhooks accepted: ${JSON.stringify(stripe.deliveries)}`);
  });

  await check('jobs: a failed job is retried from the console and runs', async () => {
    const job = psql(`insert into job (job_id, queue, kind, status, attempts, max_attempts, last_error, finished_at)
      values (gen_random_uuid(), 'default', 'housekeeping', 'failed', 5, 5, 'e2e: the disk was full', now()) returning job_id`)
      .split('\n')[0];
    await a.goto(BASE + '/admin/jobs');
    const row = a.locator(`#failed tr[data-job-id="${job}"]`);
    assert((await row.innerText()).includes('e2e: the disk was full'), 'the failed job shows its error');
    await row.locator('button[type=submit]').click();
    await a.waitForURL(/ok=admin_job_retried/);
    const deadline = Date.now() + 30000;
    while (psql(`select status from job where job_id = '${job}'`) !== 'done') {
      assert(Date.now() < deadline, `the retried job ran: ${psql(`select status, last_error from job where job_id = '${job}'`)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    await a.reload();
    assert(await a.locator(`#failed tr[data-job-id="${job}"]`).count() === 0, 'no longer failed');
  });

  await check('two-factor: the trader turns on TOTP with an authenticator code and signs in with one', async () => {
    await t.goto(BASE + '/account');
    await t.fill('#two-factor-start-form input[name=current_password]', ivy.password);
    await t.click('#two-factor-start-form button[type=submit]');
    const secret = (await t.locator('#two-factor-secret').innerText()).trim();
    const step = Math.floor(Date.now() / 30000);
    await t.fill('#two-factor-confirm-form input[name=code]', totp(secret, step));
    await t.click('#two-factor-confirm-form button[type=submit]');
    await t.locator('#recovery-codes').waitFor();
    assert(await t.locator('#recovery-codes .recovery-code').count() >= 8, 'recovery codes are shown once');
    assert(/On since/.test(await t.locator('#two-factor-status').innerText()), 'two-factor is on');
    await t.click('#signout');
    await t.waitForURL(/\/signin\?ok=signed_out/);
    await signIn(t, ivy);
    await t.locator('#two-factor-code').waitFor();
    // The code just used is never accepted twice; the next step's code is (an app one step ahead).
    await t.fill('#two-factor-code', totp(secret, step));
    await t.click('#two-factor-form button[type=submit]');
    await t.waitForURL(/\/signin\/two-factor\?.*error=two_factor_code/);
    await t.fill('#two-factor-code', totp(secret, step + 1));
    await t.click('#two-factor-form button[type=submit]');
    await t.waitForURL(/\/account/);
    await t.locator('#account-link').waitFor();
  });

  await check('the console and the trader saw no script errors; sign-up is opened again', async () => {
    await a.goto(BASE + '/admin');
    await a.selectOption('#signup-policy', 'open');
    await a.click('#save-settings');
    await a.waitForURL(/\/admin\?ok=/);
    assert(flowErrors.length === 0, `console errors: ${flowErrors.join(' | ')}`);
  });
  await actx.close();
  await tctx.close();
  stripe.close();

  await check('phone-sized screen: navigation stays visible and nothing overflows', async () => {
    const phone = await browser.newContext({ viewport: { width: 360, height: 740 } });
    const p = await phone.newPage();
    await p.goto(BASE + '/');
    assert(await p.locator('nav >> text=Status').isVisible(), 'nav hidden');
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    assert(!overflow, 'horizontal overflow');
    await phone.close();
  });
} finally {
  await browser.close();
  smtp.close();
}

const failed = results.filter((r) => !r.ok).length;
console.log(`\nbrowser tests: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
