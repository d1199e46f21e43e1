// A terminal server: two OS users' daemons share one port range. The shim, given the range, finds
// the daemon of the user its browser runs as — even though the other user's daemon holds the
// lower port and its certificate is trusted too: that daemon refuses connections from other OS
// users before TLS, and the shim moves on to the next port.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startDaemon, startPages, trustingHome, launchBrowser, openWithShim, cleanup } from './harness.mjs';

const OTHER_USER = 'sb-test-other';

/** The throwaway account of daemon/tests/common (created here too when missing). */
function otherUser() {
  const id = (flag) => Number(execFileSync('id', [flag, OTHER_USER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['-r', '-M', '-s', '/usr/sbin/nologin', OTHER_USER]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** Whether `port` is free on both loopbacks right now. */
async function isFree(port) {
  for (const host of ['127.0.0.1', '::1']) {
    const free = await new Promise((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, host, () => server.close(() => resolve(true)));
    });
    if (!free) return false;
  }
  return true;
}

/** `count` free ports in a row below Linux's ephemeral range. */
async function freeRange(count) {
  for (let i = 0; i < 200; i++) {
    const first = 30000 - ((process.pid * 7 + i * 41) % 9000);
    let all = true;
    for (let p = first; p < first + count && all; p++) all = await isFree(p);
    if (all) return [first, first + count - 1];
  }
  throw new Error('no free range of ports');
}

test("on a terminal server the shim finds its own user's daemon in the port range", async (t) => {
  if (process.getuid() !== 0) {
    t.skip('needs root to run a daemon as another OS user');
    return;
  }
  const other = otherUser();
  const [first, last] = await freeRange(4);
  const range = `${first}-${last}`;
  let ours = null;
  let theirs = null;
  let home = null;
  let browser = null;
  const pages = await startPages(() => ours.port);
  try {
    theirs = await startDaemon({ port: range, allowedOrigins: [pages.allowed], user: other });
    ours = await startDaemon({ port: range, allowedOrigins: [pages.allowed] });
    assert.equal(theirs.port, first, 'the first daemon takes the first port');
    assert.equal(ours.port, first + 1, 'the second skips the taken one');

    // This browser trusts both daemons' CAs: only the other daemon's user check can stop it.
    home = trustingHome(ours);
    execFileSync('certutil', ['-A', '-d', `sql:${join(home, '.pki', 'nssdb')}`, '-n', 'other-agent', '-t', 'C,,',
      '-i', join(theirs.dataDir, 'certs', 'ca.pem')]);
    browser = await launchBrowser(home);
    const page = await openWithShim(browser, `${pages.allowed}/page`, ours.port);
    const found = await page.evaluate(async (ports) => {
      const phone = await SoftphoneBridge.connect({ ports });
      const result = { port: phone.options.port, instance: phone.instance, remembered: localStorage.getItem('softphone-bridge:port') };
      phone.close();
      return result;
    }, range);
    assert.equal(found.port, ours.port);
    assert.equal(found.instance, ours.instance, "the hello came from this user's daemon");
    assert.equal(found.remembered, String(ours.port), 'the port is remembered for the next load');
    assert.match(theirs.log(), /another OS user/, "the other user's daemon refused the shim's try");

    // A range that is not one is a clear error, not a hang.
    const invalid = await page.evaluate(async () => {
      try { await SoftphoneBridge.connect({ ports: '9-8' }); return 'connected'; } catch (e) { return e.code; }
    });
    assert.equal(invalid, 'invalid_options');
  } finally {
    await browser?.close();
    await ours?.stop();
    await theirs?.stop();
    await pages.close();
    cleanup(home, ours?.dataDir, theirs?.dataDir);
  }
});

test('a port in the range held by a listener that never answers does not hold the page up', async () => {
  const [first, last] = await freeRange(3);
  const range = `${first}-${last}`;
  // Anyone on a shared machine can listen on a port of the range and never answer.
  const sockets = new Set();
  const squatters = [];
  for (const host of ['127.0.0.1', '::1']) {
    const server = createServer((socket) => { sockets.add(socket); });
    await new Promise((resolve) => server.listen(first, host, resolve));
    squatters.push(server);
  }
  let ours = null;
  let home = null;
  let browser = null;
  const pages = await startPages(() => ours.port);
  try {
    ours = await startDaemon({ port: range, allowedOrigins: [pages.allowed] });
    assert.equal(ours.port, first + 1);
    home = trustingHome(ours);
    browser = await launchBrowser(home);
    const page = await openWithShim(browser, `${pages.allowed}/page`, ours.port);
    // Not a timing test: the bound only tells "gave up on the silent port" (1.5 s a probe) from
    // "waited for the browser's own TLS timeout" (about 30 s in Chromium).
    const found = await page.evaluate(async (ports) => {
      const hung = new Promise((resolve) => setTimeout(() => resolve('hung'), 10000));
      const connected = SoftphoneBridge.connect({ ports }).then((phone) => {
        const result = { port: phone.options.port, instance: phone.instance };
        phone.close();
        return result;
      });
      return Promise.race([connected, hung]);
    }, range);
    assert.notEqual(found, 'hung', 'connect() waited on the silent listener');
    assert.equal(found.port, ours.port);
    assert.equal(found.instance, ours.instance);
  } finally {
    await browser?.close();
    await ours?.stop();
    for (const socket of sockets) socket.destroy();
    for (const server of squatters) await new Promise((r) => server.close(r));
    await pages.close();
    cleanup(home, ours?.dataDir);
  }
});
