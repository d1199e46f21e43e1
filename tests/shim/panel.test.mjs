// The agent panel at /panel, in Chromium at a CRM side bar's width (320, 420 px) and a desktop's
// (1280 px): no sideways scrolling, a call made and handled from it, an incoming call answered
// with the keyboard, a disposition saved, the status changed; framed by an allowed CRM and not by
// others. Screenshots land in target/screenshots/ for a reviewer to look at.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLab } from './harness.mjs';

const SHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'screenshots');
const HEADSET = 'Desk Headset 7';
let lab;
// The daemon's sound devices: ALSA's null device as the default and a named headset, from a
// throw-away HOME's .asoundrc (this machine has no sound card).
const soundHome = mkdtempSync(join(tmpdir(), 'sb-sound-'));

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(join(soundHome, '.asoundrc'), 'pcm.!default { type plug slave.pcm "null" }\n' +
    `pcm.headset { type plug slave.pcm "null" hint { show on description "${HEADSET}" } }\n`);
  lab = await startLab({ demoLine: true, daemonEnv: { HOME: soundHome } });
});

after(async () => {
  await lab?.close();
  rmSync(soundHome, { recursive: true, force: true });
});

async function openPanel(width) {
  const context = await lab.browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`https://localhost:${lab.daemon.port}/panel`);
  await page.waitForFunction(() => /Line registered/.test(document.getElementById('line').textContent), null, { timeout: 15000 });
  page.errors = errors;
  return page;
}

async function noSidewaysScroll(page, what) {
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(scroll <= inner, `${what}: content ${scroll} px wide in a ${inner} px window`);
}

for (const width of [320, 420, 1280]) {
  test(`at ${width} px: dial, mute, hang up, and the call is in recent calls`, async () => {
    const page = await openPanel(width);
    await noSidewaysScroll(page, 'idle');
    await page.screenshot({ path: join(SHOTS, `panel-${width}.png`), fullPage: true });

    await page.fill('#number', 'echo');
    await page.press('#number', 'Enter');
    const card = page.locator('#calls .call', { hasText: 'echo' });
    await card.getByRole('button', { name: 'Mute' }).waitFor({ timeout: 15000 });
    await card.getByRole('button', { name: 'Mute' }).click();
    await card.getByRole('button', { name: 'Unmute' }).waitFor({ timeout: 15000 });
    assert.equal(await card.getByRole('button', { name: 'Unmute' }).getAttribute('aria-pressed'), 'true');
    await noSidewaysScroll(page, 'in a call');
    await page.screenshot({ path: join(SHOTS, `panel-${width}-call.png`), fullPage: true });
    await card.getByRole('button', { name: 'Hang up' }).click();
    await page.locator('#calls .empty').waitFor({ timeout: 15000 });
    await page.locator('#recent li', { hasText: 'echo' }).first().waitFor({ timeout: 15000 });
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}

test('an incoming call rings in a banner and is answered with the keyboard', async () => {
  const page = await openPanel(420);
  await page.fill('#number', 'ring-me');
  await page.press('#number', 'Enter');
  // The demo line declines `ring-me` and calls the agent back a few seconds later.
  await page.locator('#incoming').waitFor({ state: 'visible', timeout: 15000 });
  assert.match(await page.locator('#incoming').textContent(), /ring-me/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'answer', 'the Answer button has the focus');
  await page.screenshot({ path: join(SHOTS, 'panel-420-incoming.png'), fullPage: true });
  await page.keyboard.press('Enter');
  const card = page.locator('#calls .call', { hasText: 'ring-me' });
  await card.getByRole('button', { name: 'Hang up' }).waitFor({ timeout: 15000 });
  assert.equal(await page.locator('#incoming').isHidden(), true);
  await card.getByRole('button', { name: 'Hang up' }).click();
  await page.locator('#calls .empty').waitFor({ timeout: 15000 });
  await page.context().close();
});

test('a disposition and notes are saved for the last call; the status is changed', async () => {
  const page = await openPanel(420);
  // The CRM sets the dispositions (the contract's `disposition`); the panel offers them.
  await page.evaluate(async (port) => {
    const crm = await SoftphoneBridge.connect({ port });
    await crm.setDispositions(['Sale', 'Call back']);
    crm.close();
  }, lab.daemon.port);
  await page.fill('#number', 'echo');
  await page.press('#number', 'Enter');
  const card = page.locator('#calls .call', { hasText: 'echo' });
  await card.getByRole('button', { name: 'Hang up' }).waitFor({ timeout: 15000 });
  await card.getByRole('button', { name: 'Hang up' }).click();
  await page.locator('#wrapup-call', { hasText: 'Last call with echo' }).waitFor({ timeout: 15000 });
  await page.selectOption('#disposition', 'Sale');
  await page.fill('#notes', 'two seats');
  await page.click('#save');
  await page.locator('#saved', { hasText: 'Saved' }).waitFor({ timeout: 15000 });
  await page.locator('#recent li', { hasText: 'Sale' }).first().waitFor({ timeout: 15000 });

  // The agent picks the headset from the devices plugged in; every page hears of it.
  await page.locator('#audio-input option', { hasText: HEADSET }).waitFor({ state: 'attached', timeout: 15000 });
  await page.selectOption('#audio-input', HEADSET);
  await page.click('#audio-form button');
  await page.locator('#audio-now', { hasText: `Microphone: ${HEADSET} · speaker: system default` }).waitFor({ timeout: 15000 });
  // The device check: a level meter while the tone plays (ALSA's null device hears silence).
  await page.click('#audio-test');
  await page.locator('#audio-test-status', { hasText: 'Microphone' }).waitFor({ timeout: 15000 });
  await page.locator('#audio-test-status', { hasText: 'Test finished: the microphone picked up nothing' }).waitFor({ timeout: 15000 });
  assert.equal(await page.locator('#audio-test').isDisabled(), false);
  await page.selectOption('#audio-input', '');
  await page.click('#audio-form button');
  await page.locator('#audio-now', { hasText: 'Microphone: system default' }).waitFor({ timeout: 15000 });

  await page.selectOption('#status', 'busy');
  await page.locator('#ready', { hasText: 'Calls declined' }).waitFor({ timeout: 15000 });
  await page.selectOption('#status', 'available');
  await page.context().close();
});

test('an allowed CRM may frame the panel; another origin may not', async () => {
  const panel = `https://localhost:${lab.daemon.port}/panel`;
  const direct = await lab.browser.newPage();
  const response = await direct.goto(panel);
  const csp = response.headers()['content-security-policy'];
  assert.match(csp, new RegExp(`frame-ancestors 'self' ${lab.pages.allowed.replace(/[.]/g, '\\.')}($|;| )`), csp);
  assert.ok(!csp.includes(lab.pages.other), csp);
  await direct.close();
  const framed = async (origin) => {
    const page = await lab.browser.newPage();
    await page.goto(`${origin}/page`);
    await page.evaluate((src) => new Promise((resolve) => {
      const frame = Object.assign(document.createElement('iframe'), { src, width: 320, height: 600 });
      frame.onload = resolve;
      document.body.append(frame);
    }), panel);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    let loaded = false;
    try {
      await frame.waitForFunction(() => /Line registered/.test(document.getElementById('line').textContent), null, { timeout: 5000 });
      loaded = true;
    } catch { /* blocked: Chromium shows its error page in the frame */ }
    await page.close();
    return loaded;
  };
  assert.equal(await framed(lab.pages.allowed), true, 'the allowed CRM frames the panel');
  assert.equal(await framed(lab.pages.other), false, 'another origin may not');
});
