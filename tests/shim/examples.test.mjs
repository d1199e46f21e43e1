// The examples in examples/ work against the real daemon in Chromium, on its built-in demo line:
// the demo CRM page (as the daemon serves it at /demo) calls `echo`, the Salesforce-style wrapper
// and the Porthole-style page place calls and hear how they end.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLab, openWithShim } from './harness.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let lab, daemon, pages, browser;

before(async () => {
  lab = await startLab({ demoLine: true });
  ({ daemon, pages, browser } = lab);
});

after(async () => {
  lab.daemon = daemon;
  await lab?.close();
});

/** Polls `predicate` in the page with evaluate (waitForFunction needs eval, which the demo's CSP forbids). */
async function until(page, predicate, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(predicate))) {
    if (Date.now() > deadline) throw new Error(`timed out: ${predicate}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('demo CRM page at /demo: presence, a call to echo, dispositions; fits a phone, enables what applies', async () => {
  const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`https://localhost:${daemon.port}/demo`);
  await until(page, () => document.getElementById('status').textContent === 'connected');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `the demo is ${width} px wide at 375 px`);
  const disabled = (selector) => page.locator(selector).isDisabled();
  assert.equal(await disabled('[data-action="hangup"]'), true, 'no call to hang up');
  assert.equal(await disabled('#conference'), true);
  await page.selectOption('#presence', 'busy');
  await until(page, () => document.getElementById('log').textContent.includes('statusChanged'));
  await until(page, () => document.getElementById('line').textContent.startsWith('registered'));
  await page.click('#dial');
  await until(page, () => /^Done: conversationId \S+/.test(document.getElementById('dial-result').textContent));
  await until(page, () => document.getElementById('log').textContent.includes('callAccepted'));
  await until(page, () => document.getElementById('calls').textContent.includes('echo — active'));
  assert.equal(await disabled('[data-action="hangup"]'), false, 'a call to hang up');
  assert.equal(await disabled('[data-action="unhold"]'), true, 'nothing held');
  assert.ok(!(await page.textContent('#log')).includes('{"'), 'events read as text, not raw JSON');
  await page.click('[data-action="hangup"]');
  await until(page, () => document.getElementById('log').textContent.includes('callEnded'));
  await page.click('#set-codes');
  await until(page, () => document.getElementById('disposition').options.length === 3);
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('wrapper-contract.js drives the contract end to end', async () => {
  const page = await openWithShim(browser, `${pages.allowed}/page`, daemon.port);
  await page.evaluate((port) => { window.SOFTPHONE_BRIDGE_PORT = port; }, daemon.port);
  await page.addScriptTag({ url: `${pages.allowed}/examples/wrapper-contract.js` });
  const result = await page.evaluate(async () => {
    const phone = await crmWrapper.ready;
    await crmWrapper.setPresence('break');
    let dial;
    // Nobody answers that number on the demo line: the call ends unanswered, possibly before
    // the dial's reply arrives, so listen first.
    const ended = new Promise((resolve) => phone.on('callEnded', resolve));
    try { dial = (await crmWrapper.clickToDial('+18883973342')).conversationId; } catch (e) { dial = e.code; }
    await ended;
    await crmWrapper.notify('start_call', { dialTo: 'not a number!' }).catch(() => {});
    const state = await phone.getState();
    return { dial, names: crm.events.map((e) => e.name), dispositions: state.dispositions, partner: state.partnerConfig };
  });
  assert.match(result.dial, /^[0-9a-f-]{36}$/, 'a conversation id');
  assert.equal(result.names[0], 'load');
  assert.ok(result.names.includes('statusChanged'), result.names.join());
  assert.ok(result.names.includes('outboundCallInitiated'), result.names.join());
  assert.ok(result.names.includes('callEnded'), result.names.join());
  assert.ok(result.names.includes('error'), 'the CRM hears about a refused dial (invalid_number)');
  assert.deepEqual(result.dispositions, ['Sale', 'No answer', 'Call back', 'Wrong number']);
  assert.equal(result.partner.channelOriginId, '57053e21-0440-4689-a27a-513d7dceebde');
  await page.close();
});

test('porthole-style.html posts actions and hears replies', async () => {
  const page = await browser.newPage();
  await page.goto(`${pages.allowed}/examples/porthole-style.html?port=${daemon.port}`);
  await page.waitForFunction(() => !document.getElementById('call').disabled);
  await page.evaluate(() => window.windowProxy.ready);
  await page.click('#call');
  // Earlier pages' unacknowledged events may be replayed first (at least once): wait for this call's end.
  await page.waitForFunction(() => /"action":"call","ok":true[\s\S]*"event":"callEnded"/.test(document.getElementById('out').textContent));
  const out = await page.textContent('#out');
  assert.match(out, /"action":"call","ok":true,.*"guid":"[0-9a-f-]{36}"/, out);
  assert.match(out, /"event":"outboundCallInitiated".*"guid":"[0-9a-f-]{36}"/, out);
  await page.close();
});

test('the served demo is the file in examples/', async () => {
  const served = await (await fetchInsecure(`https://localhost:${daemon.port}/demo`));
  assert.equal(served, readFileSync(join(ROOT, 'examples', 'crm-demo.html'), 'utf8'));
});

async function fetchInsecure(url) {
  const page = await browser.newPage();
  const response = await page.goto(url);
  const text = await response.text();
  await page.close();
  return text;
}

test('a page written for uContact Porthole runs unchanged on shim.js', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const alerts = [];
  page.on('dialog', async (dialog) => { alerts.push(dialog.message()); await dialog.dismiss(); });
  await page.goto(`${pages.allowed}/examples/porthole-ucontact.html?port=${daemon.port}`);
  assert.equal(await page.evaluate(() => typeof Porthole.WindowProxy), 'function');
  // "Make call by phone": the guid of the call, as uContact answers (its alert).
  await page.click('#by-phone');
  const deadline = Date.now() + 10000;
  while (alerts.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(alerts[0] ?? '', /^[0-9a-f-]{36}$/, `guid: ${alerts}`);
  // "Make call" with a callerid IT does not allow here: 0, uContact's answer for an error.
  await page.click('#make-call');
  await until(page, () => document.getElementById('out').textContent.includes('call guid:'));
  assert.equal((await page.textContent('#out')).trim(), 'call guid: 0');
  // The second post's reply came after anything more the first could have sent (one connection,
  // in order): still one alert, one answer per post as uContact gives.
  assert.equal(alerts.length, 1, `one answer per post: ${alerts}`);
  assert.deepEqual(errors, []);
  await page.close();
});
