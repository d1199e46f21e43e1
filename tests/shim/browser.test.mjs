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
  assert.deepEqual(result.reply, { softphoneId: 'busy', name: 'Busy', acceptCalls: false, ready: false });
  assert.deepEqual(result.event, { softphoneId: 'busy', name: 'Busy', acceptCalls: false, ready: false });
  assert.deepEqual(result.state, { softphoneId: 'busy', name: 'Busy', acceptCalls: false, ready: false }, 'phone.state follows events');
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
    // Events earlier pages did not acknowledge may come first (at least once): wait for ours.
    window.received = new Promise((resolve) => phone.on('statusChanged', (p) => { if (p.softphoneId === 'break') resolve(p); }));
    window.moduleHasDefault = mod.default === globalThis.SoftphoneBridge;
  }, daemon.port);
  await a.evaluate(async (port) => {
    const phone = await SoftphoneBridge.connect({ port });
    await phone.updatePresence({ softphoneId: 'break' });
  }, daemon.port);
  assert.deepEqual(await b.evaluate(() => window.received), { softphoneId: 'break', name: 'On break', acceptCalls: true, ready: false });
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
        // Events earlier pages did not acknowledge may come too (at least once): wait for ours.
        const has = (f) => got.some(f);
        if (has((m) => m.action === 'call') && has((m) => m.action === 'update_presence')
          && has((m) => m.event === 'statusChanged' && m.softphoneId === 'available')) resolve();
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
  const event = messages.findLast((m) => m.event === 'statusChanged');
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
        // Events earlier pages did not acknowledge may come first (at least once): count ours.
        statusChanged(payload) {
          if (payload.softphoneId === 'busy' && !calls.some((c) => c[0] === 'statusChanged')) { calls.push(['statusChanged', payload]); resolve(); }
        },
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
  assert.deepEqual(result.calls[1], ['statusChanged', { softphoneId: 'busy', name: 'Busy', acceptCalls: false, ready: false }]);
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
    // Events earlier pages did not acknowledge may come first (at least once): wait for ours.
    const seen = new Promise((resolve) => phone.on('statusChanged', (p) => { if (p.softphoneId === 'offline') resolve(p); }));
    await phone.updatePresence({ softphoneId: 'offline' });
    return { direct, event: await seen, version: phone.state ? 1 : 0 };
  }, daemon.port);
  assert.equal(result.direct, 'csp_blocked', 'a direct connection is blocked by the CSP and says so');
  assert.deepEqual(result.event, { softphoneId: 'offline', name: 'Offline', acceptCalls: false, ready: false });
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

test('the shim acknowledges what it delivered; what a page did not acknowledge comes again after a kill -9', async () => {
  // A CRM that acknowledges only once it has saved an event (autoAck: false).
  const careful = await openWithShim(browser, `${pages.allowed}/page`, daemon.port);
  await careful.evaluate(async (port) => {
    window.phone = await SoftphoneBridge.connect({ port, minRetryMs: 100, maxRetryMs: 400, autoAck: false });
    // Earlier tests' pages left events unacknowledged: take them (they arrive before any reply), then start clean.
    const top = phone.lastSeq;
    await phone.getState();
    await phone.ack(top);
    window.seen = [];
    phone.on('statusChanged', (p, m) => seen.push([m.seq, p.softphoneId]));
    phone.on('connected', (e) => seen.push(['connected', e.restarted]));
  }, daemon.port);
  await careful.evaluate(() => phone.updatePresence({ softphoneId: 'break' }));
  const [[seq, status]] = await careful.evaluate(() => seen);
  assert.equal(status, 'break');

  const exited = new Promise((r) => daemon.child.once('exit', r));
  daemon.child.kill('SIGKILL');
  await exited;
  const { dataDir, port } = daemon;
  daemon = await startDaemon({ dataDir, port, allowedOrigins: [pages.allowed] });
  await careful.waitForFunction(() => seen.some(([kind]) => kind === 'connected'), null, { timeout: 15000 });
  await careful.waitForFunction((s) => seen.filter(([q]) => q === s).length === 2, seq, { timeout: 5000 });
  assert.deepEqual(await careful.evaluate(() => seen),
    [[seq, 'break'], ['connected', true], [seq, 'break']],
    'the unacknowledged event again, same seq (the page can tell the duplicate), and the state survived');
  assert.equal(await careful.evaluate(() => phone.state.presence.softphoneId), 'break');
  const acked = await careful.evaluate((s) => phone.ack(s), seq);
  assert.equal(acked.acked, seq);
  await careful.close();

  // The default: the shim acknowledges once the listeners ran; a new page of the origin gets nothing old.
  const quick = await openWithShim(browser, `${pages.allowed}/page`, daemon.port);
  await quick.evaluate(async (port) => {
    window.phone = await SoftphoneBridge.connect({ port, ackDelayMs: 50 });
    window.seen = [];
    phone.on('statusChanged', (p, m) => seen.push(m.seq));
  }, daemon.port);
  await quick.evaluate(() => phone.updatePresence({ softphoneId: 'busy' }));
  await quick.waitForFunction(() => seen.length === 1);
  const after = await quick.evaluate(() => seen[0]);
  const history = await quick.evaluate(() => phone.getHistory({ limit: 5 }));
  assert.ok(Array.isArray(history));
  // Wait for the shim's ack to land, then look from a fresh page.
  await quick.evaluate(async (s) => {
    // `ack(0)` changes nothing and answers what the origin has acknowledged so far.
    while ((await phone.ack(0)).acked < s) await new Promise((r) => setTimeout(r, 20));
  }, after);
  await quick.close();
  const fresh = await openWithShim(browser, `${pages.allowed}/page`, daemon.port);
  const replayed = await fresh.evaluate(async (port) => {
    const seen = [];
    const phone = await SoftphoneBridge.connect({ port });
    phone.on('*', (event, payload, message) => { if (message) seen.push(JSON.stringify(message)); });
    // A replay is sent right after hello, before any reply: once a request is answered, it is over.
    await phone.getState();
    return seen;
  }, daemon.port);
  assert.deepEqual(replayed, [], `everything up to ${after} was acknowledged`);
  await fresh.close();
});
