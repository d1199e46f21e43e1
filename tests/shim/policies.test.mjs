// `softphone-bridge policies --os linux` writes what Chromium reads: the JSON, dropped into the
// managed-policy folder, shows up in chrome://policy with both policies and the origin.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, rmSync, existsSync, rmdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, launchBrowser } from './harness.mjs';

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
