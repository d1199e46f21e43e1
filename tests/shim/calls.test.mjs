// The shim as CRM developers already know it: Twilio Voice SDK–style Call objects (on the demo
// line: `echo` answers, `ring-me` calls the agent back), and a page that waits for the agent's
// approval and then connects by itself.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLab, openWithShim } from './harness.mjs';

let lab;

before(async () => {
  lab = await startLab({ demoLine: true });
});

after(async () => {
  await lab?.close();
});

test('Call objects: dial, accepted, muted, digits, hang up, ended', async () => {
  const page = await openWithShim(lab.browser, `${lab.pages.allowed}/page`, lab.daemon.port);
  const result = await page.evaluate(async (port) => {
    const phone = await SoftphoneBridge.connect({ port });
    if (phone.state.line.state !== 'registered') {
      await new Promise((resolve) => phone.on('registrationChanged', (r) => { if (r.state === 'registered') resolve(); }));
    }
    const call = await phone.dial('echo');
    const seen = [];
    await new Promise((resolve) => call.on('accepted', resolve));
    seen.push(call.status);
    const muted = new Promise((resolve) => call.on('muted', resolve));
    await call.mute();
    seen.push(await muted, call.muted);
    const unmuted = new Promise((resolve) => call.on('muted', resolve));
    await call.mute(false);
    seen.push(await unmuted);
    await call.sendDigits('12#');
    const listed = phone.calls().map((c) => c.id);
    const ended = new Promise((resolve) => call.on('ended', resolve));
    await call.hangup();
    const end = await ended;
    return { seen, listed, id: call.id, direction: call.direction, remote: call.remote, end, status: call.status, left: phone.calls().length };
  }, lab.daemon.port);
  assert.deepEqual(result.seen, ['open', true, true, false]);
  assert.deepEqual(result.listed, [result.id]);
  assert.equal(result.direction, 'outbound');
  assert.equal(result.remote, 'echo');
  assert.equal(result.end.conversationId, result.id);
  assert.equal(result.end.cause, 'local');
  assert.equal(result.status, 'closed');
  assert.equal(result.left, 0);
  await page.close();
});

test("an incoming call arrives as a Call object the page answers ('incoming', as Twilio's Device)", async () => {
  const page = await openWithShim(lab.browser, `${lab.pages.allowed}/page`, lab.daemon.port);
  const result = await page.evaluate(async (port) => {
    const phone = await SoftphoneBridge.connect({ port });
    const incoming = new Promise((resolve) => phone.on('incoming', resolve));
    // The demo line declines `ring-me` and calls the agent back a few seconds later.
    await phone.dial('ring-me');
    const call = await incoming;
    const facts = { direction: call.direction, remote: call.remote, status: call.status };
    const accepted = new Promise((resolve) => call.on('accepted', resolve));
    await call.answer();
    await accepted;
    facts.answered = call.status;
    const ended = new Promise((resolve) => call.on('ended', resolve));
    await call.hangup();
    facts.cause = (await ended).cause;
    facts.left = phone.calls().length;
    return facts;
  }, lab.daemon.port);
  assert.deepEqual(result, { direction: 'inbound', remote: 'ring-me', status: 'pending', answered: 'open', cause: 'local', left: 0 });
  await page.close();
});

test('a page waiting for approval is told once, then connects by itself when the agent allows', async () => {
  const page = await openWithShim(lab.browser, `${lab.pages.other}/page`, lab.daemon.port);
  await page.evaluate((port) => {
    window.blocked = [];
    window.connected = SoftphoneBridge.connect({
      port, waitForApproval: true, approvalPollMs: 100, onBlocked: (e) => window.blocked.push(e.code),
    }).then((phone) => ({ ok: phone.connected }), (e) => ({ error: e.code }));
  }, lab.daemon.port);
  // Until the agent decides, the page only knows why it waits.
  await page.waitForFunction(() => window.blocked.length > 0, null, { timeout: 10000 });
  assert.match(lab.daemon.cli(['origins', 'list']), new RegExp(`pending\t${lab.pages.other}`));
  const waiting = await page.evaluate(() => window.blocked);
  assert.deepEqual(waiting, ['origin_not_approved']);
  lab.daemon.cli(['origins', 'approve', lab.pages.other]);
  const outcome = await page.evaluate(() => window.connected);
  assert.deepEqual(outcome, { ok: true });
  assert.deepEqual(await page.evaluate(() => window.blocked), ['origin_not_approved'], 'told once');
  lab.daemon.cli(['origins', 'forget', lab.pages.other]);
  await page.close();
});
