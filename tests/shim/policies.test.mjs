// `softphone-bridge policies --os linux` writes what Chromium reads: the JSON, dropped into the
// managed-policy folder, shows up in chrome://policy with both policies and the origin.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, rmSync, existsSync, rmdirSync, readdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { BIN, launchBrowser, startDaemon, cleanup } from './harness.mjs';

const MANAGED = '/etc/chromium/policies/managed';

test('the Linux policy from `policies` is what Chromium applies', async () => {
  const json = execFileSync(BIN, ['policies', '--origin', 'https://crm.example.com', '--os', 'linux'], { encoding: 'utf8' });
  const created = !existsSync(MANAGED);
  mkdirSync(MANAGED, { recursive: true }); // the tests run as root (./dev)
  const file = join(MANAGED, `softphone-bridge-test-${process.pid}.json`);
  writeFileSync(file, json, { mode: 0o644 });
  let browser;
  try {
    browser = await launchBrowser(process.env.HOME);
    const page = await browser.newPage();
    await page.goto('chrome://policy');
    const deadline = Date.now() + 10000;
    let text = '';
    while (Date.now() < deadline) {
      // The page is built of web components: their text is in shadow roots.
      text = await page.evaluate(() => {
        const walk = (node) => {
          let all = node.textContent || '';
          for (const el of node.querySelectorAll('*')) if (el.shadowRoot) all += walk(el.shadowRoot);
          return all;
        };
        return walk(document);
      });
      if (text.includes('LoopbackNetworkAllowedForUrls')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const policy of ['LocalNetworkAccessAllowedForUrls', 'LoopbackNetworkAllowedForUrls']) {
      assert.ok(text.includes(policy), `${policy} in chrome://policy`);
    }
    assert.ok(text.includes('https://crm.example.com'), 'the origin in chrome://policy');
  } finally {
    await browser?.close();
    rmSync(file, { force: true });
    if (created && readdirSync(MANAGED).length === 0) {
      rmdirSync(MANAGED);
      rmdirSync('/etc/chromium/policies');
    }
  }
});

test('`policies --ca` makes Chromium trust the localhost CA with no per-user step', async () => {
  const daemon = await startDaemon({});
  const home = mkdtempSync(join(tmpdir(), 'sb-home-')); // an empty NSS database: trusts nothing of ours
  const created = !existsSync(MANAGED);
  mkdirSync(MANAGED, { recursive: true });
  const file = join(MANAGED, `softphone-bridge-ca-test-${process.pid}.json`);
  const load = async () => {
    const browser = await launchBrowser(home);
    try {
      const page = await browser.newPage();
      const response = await page.goto(`https://localhost:${daemon.port}/shim.js`);
      return `status ${response.status()}`;
    } catch (e) {
      return String(e).split('\n')[0];
    } finally {
      await browser.close();
    }
  };
  try {
    assert.match(await load(), /ERR_CERT_AUTHORITY_INVALID/, 'not trusted without the policy');
    const json = execFileSync(BIN, ['policies', '--os', 'linux', '--ca', join(daemon.dataDir, 'certs', 'ca.pem')], { encoding: 'utf8' });
    assert.deepEqual(Object.keys(JSON.parse(json)), ['CACertificates']);
    writeFileSync(file, json, { mode: 0o644 });
    assert.equal(await load(), 'status 200', 'trusted through the managed policy');
  } finally {
    rmSync(file, { force: true });
    if (created && readdirSync(MANAGED).length === 0) {
      rmdirSync(MANAGED);
      rmdirSync('/etc/chromium/policies');
    }
    await daemon.stop();
    cleanup(home, daemon.dataDir);
  }
});
