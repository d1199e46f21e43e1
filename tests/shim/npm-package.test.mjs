// The shim as an npm package: `npm pack js-shim`, installed into a scratch project from the
// tarball, then used the three ways a CRM developer would — require (classic/CJS), import (ES
// module), TypeScript types — and bundled into a page with no daemon running, where it still
// says `daemon_not_running` with its fix (served from the CRM's own origin it can always diagnose).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { startPages, launchBrowser, cleanup } from './harness.mjs';

/** A port nothing listens on (just released). */
function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const NPM = process.env.NPM || 'npm';

test('npm pack output installs and works as CJS, ESM, types and in a page', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sb-npm-'));
  let browser;
  let pages;
  try {
    const packed = JSON.parse(execFileSync(NPM, ['pack', join(ROOT, 'js-shim'), '--json', '--pack-destination', work], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    }));
    const files = packed[0].files.map((f) => f.path).sort();
    assert.deepEqual(files, ['README.md', 'package.json', 'softphone-bridge.d.ts', 'softphone-bridge.js', 'softphone-bridge.mjs']);

    const project = join(work, 'crm');
    execFileSync('mkdir', ['-p', project, join(work, 'home')]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'crm', private: true, version: '1.0.0' }));
    execFileSync(NPM, ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', join(work, packed[0].filename)], {
      cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    });
    const installed = join(project, 'node_modules', 'softphone-bridge');
    assert.ok(existsSync(join(installed, 'softphone-bridge.mjs')));

    // require and import give the same API.
    const check = (file, source) => {
      writeFileSync(join(project, file), source);
      return execFileSync(process.execPath, [join(project, file)], { cwd: project, encoding: 'utf8' }).trim();
    };
    assert.equal(check('cjs.cjs', "const SB = require('softphone-bridge'); console.log(typeof SB.connect, typeof SB.Call, typeof SB.WindowProxy);"),
      'function function function');
    assert.equal(check('esm.mjs', "import SB, { connect, Call } from 'softphone-bridge'; console.log(typeof SB.connect, connect === SB.connect, typeof Call);"),
      'function true function');

    // The types resolve through the package's `types`/`exports`.
    writeFileSync(join(project, 'page.ts'), [
      "import SoftphoneBridge = require('softphone-bridge');",
      "async function main(): Promise<void> {",
      "  const phone: SoftphoneBridge.Phone = await SoftphoneBridge.connect({ ports: '48443-48543', waitForApproval: true });",
      "  const call: SoftphoneBridge.Call = await phone.dial('+18883973342');",
      "  call.on('ended', (end) => console.log(end.duration, end.cause));",
      "  call.on('muted', (muted: boolean) => console.log(muted));",
      "  await call.mute(false);",
      "}",
      "main();",
    ].join('\n'));
    execFileSync(process.execPath, [TSC, '--noEmit', '--strict', '--target', 'es2020', '--module', 'commonjs', '--moduleResolution', 'node', 'page.ts'], {
      cwd: project, encoding: 'utf8', stdio: 'pipe',
    });
    // And as an ES module resolved through the package's `exports` (Node 16+ resolution).
    writeFileSync(join(project, 'page.mts'), [
      "import SoftphoneBridge from 'softphone-bridge';",
      "const phone: SoftphoneBridge.Phone = await SoftphoneBridge.connect({ waitForApproval: true });",
      "const call: SoftphoneBridge.Call = await phone.dial('1002');",
      "call.on('ended', (end) => console.log(end.cause));",
    ].join('\n'));
    execFileSync(process.execPath, [TSC, '--noEmit', '--strict', '--target', 'es2022', '--module', 'node16', '--moduleResolution', 'node16', 'page.mts'], {
      cwd: project, encoding: 'utf8', stdio: 'pipe',
    });

    // Bundled into the CRM's page (here: inlined from node_modules), with no daemon on the port.
    const port = await freePort();
    pages = await startPages(() => port);
    browser = await launchBrowser(join(work, 'home'));
    const page = await browser.newPage();
    await page.goto(`${pages.allowed}/page`);
    await page.addScriptTag({ content: readFileSync(join(installed, 'softphone-bridge.js'), 'utf8') });
    const error = await page.evaluate(async (p) => {
      try { await SoftphoneBridge.connect({ port: p }); return null; } catch (e) { return { code: e.code, message: e.message }; }
    }, port);
    assert.equal(error.code, 'daemon_not_running');
    assert.match(error.message, /Start softphone-bridge/);
  } finally {
    await browser?.close();
    await pages?.close();
    cleanup(work);
  }
});
