// The README's integration snippet, run as written in a fresh page: with no daemon on its port it
// must still tell the CRM `daemon_not_running` and how to fix it (the shim itself cannot load);
// with the daemon up it connects and dials.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon, startPages, trustingHome, launchBrowser, cleanup } from './harness.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

before(async () => {
  assert.match(writtenSnippet(), /const PORT = 48443;/, 'the README snippet names the default port');
  PORT_FOR_TESTS = await new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => { const { port } = server.address(); server.close(() => resolve(port)); });
  });
});

/** The fenced block after the README's snippet marker, as written but for its port, which the
 *  tests move to one that is free (48443 is the daemon's default and may be in use). */
let PORT_FOR_TESTS = null;
function snippet() {
  const block = writtenSnippet();
  return PORT_FOR_TESTS ? block.replace(/const PORT = \d+;/, `const PORT = ${PORT_FOR_TESTS};`) : block;
}

function writtenSnippet() {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const marker = readme.indexOf('<!-- integration snippet');
  assert.ok(marker >= 0, 'the README marks its integration snippet');
  const block = readme.slice(marker).match(/```html\n([\s\S]*?)```/);
  assert.ok(block, 'an html block follows the marker');
  return block[1];
}

/** A stand-in CRM that records what the snippet tells it. */
const CRM = `<script>window.crm = { told: [], warn(code, message) { this.told.push({ code, message }); },
  screenPop() {}, logCall() {}, showStatus() {} };</script>`;

function listening(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** A fresh page of the allowed CRM origin running the snippet. */
async function crmPageWithSnippet(browser, pages) {
  const page = await browser.newPage();
  await page.goto(`${pages.allowed}/page`);
  await page.setContent(`<!doctype html><html><head></head><body>${CRM}${snippet()}</body></html>`);
  return page;
}

async function told(page) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const now = await page.evaluate(() => window.crm.told);
    if (now.length > 0 || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("the README's snippet says daemon_not_running, with its fix, when the daemon is stopped", async () => {
  const port = Number(snippet().match(/const PORT = (\d+);/)[1]);
  assert.equal(await listening(port), false, `nothing may listen on ${port} for this test`);
  const pages = await startPages(() => port);
  const home = mkdtempSync(join(tmpdir(), 'sb-home-'));
  const browser = await launchBrowser(home);
  try {
    const page = await crmPageWithSnippet(browser, pages);
    const messages = await told(page);
    assert.equal(messages.length, 1, JSON.stringify(messages));
    assert.equal(messages[0].code, 'daemon_not_running');
    assert.match(messages[0].message, /Start softphone-bridge/);
  } finally {
    await browser.close();
    await pages.close();
    cleanup(home);
  }
});

test("the README's snippet says certificate_not_trusted when the browser does not trust the daemon", async () => {
  const port = Number(snippet().match(/const PORT = (\d+);/)[1]);
  if (await listening(port)) return assert.fail(`nothing may listen on ${port} for this test`);
  const pages = await startPages(() => port);
  const daemon = await startDaemon({ port, allowedOrigins: [pages.allowed] });
  const home = mkdtempSync(join(tmpdir(), 'sb-home-')); // trusts nothing of ours
  const browser = await launchBrowser(home);
  try {
    const page = await crmPageWithSnippet(browser, pages);
    const messages = await told(page);
    assert.equal(messages[0]?.code, 'certificate_not_trusted', JSON.stringify(messages));
  } finally {
    await browser.close();
    await daemon.stop();
    await pages.close();
    cleanup(home, daemon.dataDir);
  }
});

test("the README's snippet connects and dials once the daemon runs and is trusted", async () => {
  const port = Number(snippet().match(/const PORT = (\d+);/)[1]);
  if (await listening(port)) return assert.fail(`nothing may listen on ${port} for this test`);
  const pages = await startPages(() => port);
  const daemon = await startDaemon({ port, allowedOrigins: [pages.allowed], demoLine: true });
  const home = trustingHome(daemon);
  const browser = await launchBrowser(home);
  try {
    const page = await crmPageWithSnippet(browser, pages);
    await page.waitForFunction(() => typeof document.querySelector('#dial').onclick === 'function', null, { timeout: 15000 });
    await page.evaluate(() => {
      window.ended = new Promise((resolve) => { window.crm.logCall = (id, duration) => resolve({ id, duration }); });
    });
    await page.click('#dial');
    const ended = await page.evaluate(() => window.ended);
    assert.equal(typeof ended.id, 'string', 'the demo line ended the call to a number it does not serve');
    assert.deepEqual(await page.evaluate(() => window.crm.told), []);
  } finally {
    await browser.close();
    await daemon.stop();
    await pages.close();
    cleanup(home, daemon.dataDir);
  }
});
