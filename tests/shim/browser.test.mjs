// The shim in a real browser (Debian's headless Chromium) against the real daemon: promise API,
// ES module form, Porthole-style WindowProxy, the wrapper contract, iframe mode under a strict
// CSP, origin approval, diagnosis of blocked connections, and reconnect across a daemon restart.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon, startLab, launchBrowser, openWithShim, cleanup } from './harness.mjs';

const SHIM = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../js-shim/softphone-bridge.js'), 'utf8');

let lab, daemon, pages, browser;

before(async () => {
  lab = await startLab();
  ({ daemon, pages, browser } = lab);
});

after(async () => {
  lab.daemon = daemon;
  await lab?.close();
});

test('promise API: hello state, presence, typed errors', async () => {
  const page = await openWithShim(browser, `${pages.allowed}/page`, daemon.port);
  const result = await page.evaluate(async (port) => {
    const phone = await SoftphoneBridge.connect({ port });
    const initial = phone.state.presence.softphoneId;
    const seen = new Promise((resolve) => phone.on('statusChanged', resolve));
    const reply = await phone.updatePresence({ softphoneId: 'busy' });
    const event = await seen;
    const errors = {};
    for (const [name, run] of Object.entries({
      startCall: () => phone.startCall({ dialTo: '+18883973342' }),
      badStatus: () => phone.updatePresence({ softphoneId: 'lunch' }),
      badParams: () => phone.request('start_call', { dialto: '1' }),
      unknown: () => phone.request('teleport', {}),
    })) {
      try { await run(); errors[name] = 'resolved!'; } catch (e) { errors[name] = `${e.name}:${e.code}`; }
    }
    return { initial, reply, event, state: phone.state.presence, statuses: phone.state.statuses.length, errors };
  }, daemon.port);
  assert.equal(result.initial, 'available');
  assert.deepEqual(result.reply, { softphoneId: 'busy', name: 'Busy' });
  assert.deepEqual(result.event, { softphoneId: 'busy', name: 'Busy' });
  assert.deepEqual(result.state, { softphoneId: 'busy', name: 'Busy' }, 'phone.state follows events');
  assert.equal(result.statuses, 4);
  assert.deepEqual(result.errors, {
    startCall: 'BridgeError:no_line',
    badStatus: 'BridgeError:unknown_status',
    badParams: 'BridgeError:invalid_params',
    unknown: 'BridgeError:unknown_action',
  });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('ES module form and fan-out to a second page', async () => {
  const a = await openWithShim(browser, `${pages.allowed}/page`, daemon.port);
  const b = await browser.newPage();
  await b.goto(`${pages.allowed}/page`);
  await b.evaluate(async (port) => {
    const mod = await import(`https://localhost:${port}/shim.mjs`);
    const phone = await mod.connect({ port });
    window.received = new Promise((resolve) => phone.on('statusChanged', resolve));
    window.moduleHasDefault = mod.default === globalThis.SoftphoneBridge;
  }, daemon.port);
  await a.evaluate(async (port) => {
    const phone = await SoftphoneBridge.connect({ port });
    await phone.updatePresence({ softphoneId: 'break' });
  }, daemon.port);
  assert.deepEqual(await b.evaluate(() => window.received), { softphoneId: 'break', name: 'On break' });
  assert.equal(await b.evaluate(() => window.moduleHasDefault), true);
  await a.close();
  await b.close();
});

test('Porthole-style WindowProxy delivers {data: …} to listeners', async () => {
  const page = await openWithShim(browser, `${pages.allowed}/page`, daemon.port);
  const messages = await page.evaluate(async (port) => {
    const proxy = new SoftphoneBridge.WindowProxy(window.location.protocol + '//' + window.location.hostname, { port });
    const got = [];
    const done = new Promise((resolve) => {
      proxy.addEventListener((messageEvent) => {
        got.push(messageEvent.data);
        if (got.length === 3) resolve();
      });
    });
    proxy.post({ action: 'call', destination: '091000000', campaign: 'Sale->' });
    proxy.post({ action: 'update_presence', softphoneId: 'available' });
    await done;
    return got;
  }, daemon.port);
  const call = messages.find((m) => m.action === 'call');
  assert.equal(call.ok, false);
  assert.equal(call.error.code, 'no_line', 'no fake guid while there is no line');
  const reply = messages.find((m) => m.action === 'update_presence');
  assert.equal(reply.ok, true);
  const event = messages.find((m) => m.event === 'statusChanged');
  assert.equal(event.softphoneId, 'available');
  await page.close();
});

test('wrapper contract: load(callback) drives actions, events call the wrapper', async () => {
  const page = await openWithShim(browser, `${pages.allowed}/page`, daemon.port);
  const result = await page.evaluate(async (port) => {
    const calls = [];
    let callback;
    const statusSeen = new Promise((resolve) => {
      const wrapper = {
        load(cb) { callback = cb; calls.push('load'); },
        statusChanged(payload) { calls.push(['statusChanged', payload]); resolve(); },
        onError(error, eventType) { calls.push(['onError', eventType, error.code]); },
      };
      window.wrapperReady = SoftphoneBridge.useWrapper(wrapper, { port });
    });
    const phone = await window.wrapperReady;
    await callback('disposition', ['Sale', 'No answer']);
    await callback('partner_config', { partnerId: '215fd887-39be-4935-981f-2670d6afeaa7' });
    await callback('update_presence', { softphoneId: 'busy' });
    await statusSeen;
    let startCall;
    try { await callback('start_call', { dialTo: '+18883973342', partnerId: 'p' }); startCall = 'resolved!'; }
    catch (e) { startCall = e.code; }
    const state = await phone.getState();
    return { calls, startCall, dispositions: state.dispositions, partner: state.partnerConfig.partnerId };
  }, daemon.port);
  assert.equal(result.calls[0], 'load');
  assert.deepEqual(result.calls[1], ['statusChanged', { softphoneId: 'busy', name: 'Busy' }]);
  assert.deepEqual(result.calls[2], ['onError', 'start_call', 'no_line']);
  assert.equal(result.startCall, 'no_line');
  assert.deepEqual(result.dispositions, ['Sale', 'No answer']);
  assert.equal(result.partner, '215fd887-39be-4935-981f-2670d6afeaa7');
  await page.close();
});

test('iframe mode works where the page CSP forbids connecting to localhost', async () => {
  const page = await openWithShim(browser, `${pages.allowed}/page?csp=strict`, daemon.port);
  const result = await page.evaluate(async (port) => {
    let direct;
    try { await SoftphoneBridge.connect({ port }); direct = 'connected!'; } catch (e) { direct = e.code; }
    const phone = await SoftphoneBridge.connect({ port, mode: 'iframe' });
    const seen = new Promise((resolve) => phone.on('statusChanged', resolve));
    await phone.updatePresence({ softphoneId: 'offline' });
    return { direct, event: await seen, version: phone.state ? 1 : 0 };
  }, daemon.port);
  assert.equal(result.direct, 'csp_blocked', 'a direct connection is blocked by the CSP and says so');
  assert.deepEqual(result.event, { softphoneId: 'offline', name: 'Offline' });
  await page.close();
});

test('an unapproved origin is refused (direct and iframe) until the agent approves it', async () => {
  const page = await openWithShim(browser, `${pages.other}/page`, daemon.port);
  const before = await page.evaluate(async (port) => {
    const codes = [];
    for (const mode of ['direct', 'iframe']) {
      try { await SoftphoneBridge.connect({ port, mode }); codes.push('connected!'); } catch (e) { codes.push(e.code); }
    }
    return codes;
  }, daemon.port);
  assert.deepEqual(before, ['origin_not_approved', 'origin_not_approved']);
  assert.match(daemon.cli(['origins', 'list']), new RegExp(`pending\\t${pages.other}`));
  daemon.cli(['origins', 'approve', pages.other]);
  const after = await page.evaluate(async (port) => {
    const phone = await SoftphoneBridge.connect({ port, mode: 'iframe' });
    return phone.state.presence.softphoneId.length > 0;
  }, daemon.port);
  assert.equal(after, true);
  daemon.cli(['origins', 'deny', pages.other]);
  const denied = await page.evaluate(async (port) => {
    try { await SoftphoneBridge.connect({ port }); return 'connected!'; } catch (e) { return e.code; }
  }, daemon.port);
  assert.equal(denied, 'origin_denied');
  await page.close();
});

/** Waits until every thread of `pid` is in the stopped state (`T` in /proc). */
async function waitStopped(pid) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const tasks = readdirSync(`/proc/${pid}/task`);
    const states = tasks.map((t) => readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8').split(') ')[1][0]);
    if (states.every((s) => s === 'T' || s === 't')) return;
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not stop: ${states.join('')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

test('diagnosis: daemon not running, certificate not trusted', async () => {
  const page = await browser.newPage();
  await page.goto(`${pages.allowed}/page`);
  await page.addScriptTag({ content: SHIM });
  const unused = await freePort();
  const notRunning = await page.evaluate(async (port) => {
    try { await SoftphoneBridge.connect({ port }); return 'connected!'; } catch (e) { return [e.code, e.message]; }
  }, unused);
  assert.equal(notRunning[0], 'daemon_not_running');
  assert.match(notRunning[1], /not running/);
  await page.close();

  const untrustingHome = mkdtempSync(join(tmpdir(), 'sb-home-'));
  const naive = await launchBrowser(untrustingHome);
  const naivePage = await naive.newPage();
  await naivePage.goto(`${pages.allowed}/page`);
  await naivePage.addScriptTag({ content: SHIM });
  const untrusted = await naivePage.evaluate(async (port) => {
    try { await SoftphoneBridge.connect({ port }); return 'connected!'; } catch (e) { return [e.code, e.message]; }
  }, daemon.port);
  assert.equal(untrusted[0], 'certificate_not_trusted');
  assert.match(untrusted[1], /certs install/);
  await naive.close();
  cleanup(untrustingHome);
});

test('reconnects after a daemon restart; pending requests are rejected on disconnect', async () => {
  const page = await openWithShim(browser, `${pages.allowed}/page`, daemon.port);
  await page.evaluate(async (port) => {
    window.phone = await SoftphoneBridge.connect({ port, minRetryMs: 100, maxRetryMs: 400 });
    window.log = [];
    phone.on('disconnected', (e) => log.push(['disconnected', e.willRetry]));
    phone.on('connected', (e) => log.push(['connected', e.restarted]));
  }, daemon.port);

  // Freeze the daemon so a request stays pending, then kill it: the socket closes under it.
  // The request goes out only once the kernel reports every thread stopped.
  daemon.child.kill('SIGSTOP');
  await waitStopped(daemon.child.pid);
  await page.evaluate(() => { window.pending = phone.getState().then(() => 'resolved!', (e) => e.code); });
  const exited = new Promise((r) => daemon.child.once('exit', r));
  daemon.child.kill('SIGKILL');
  await exited;
  assert.equal(await page.evaluate(() => window.pending), 'disconnected');
  await page.waitForFunction(() => !phone.connected);
  assert.equal(await page.evaluate(() => phone.getState().then(() => 'resolved!', (e) => e.code)), 'not_connected');

  const { dataDir, port } = daemon;
  daemon = await startDaemon({ dataDir, port, allowedOrigins: [pages.allowed] });
  await page.waitForFunction(() => log.some(([kind, restarted]) => kind === 'connected' && restarted), null, { timeout: 15000 });
  const state = await page.evaluate(async () => {
    await phone.updatePresence({ softphoneId: 'busy' });
    return phone.state.presence.softphoneId;
  });
  assert.equal(state, 'busy');
  assert.deepEqual(await page.evaluate(() => log[0]), ['disconnected', true]);
  await page.close();
});
