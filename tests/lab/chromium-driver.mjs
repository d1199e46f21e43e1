// What the lab's browser scripts share: Debian's Chromium, headless, and a JSON-lines conversation
// with the Rust tests over stdin/stdout (commands in; events, replies and errors out).
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const out = (message) => process.stdout.write(JSON.stringify(message) + '\n');

/** A headless Chromium page; page errors are reported as `{error}` lines. */
export async function openPage(extraArgs, url) {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // Lab servers use throwaway certificates.
    args: ['--no-sandbox', '--ignore-certificate-errors', ...extraArgs],
  });
  const page = await browser.newPage();
  page.on('pageerror', (e) => out({ error: `page: ${e.message}` }));
  await page.goto(url);
  return { browser, page };
}

/**
 * Runs `handlers[command.cmd](command)` for each line on stdin until `quit` (or stdin closes),
 * then `onQuit()` and exit. A failing handler is reported, not fatal.
 */
export async function serve(handlers, onQuit) {
  const quit = async () => {
    await onQuit().catch(() => {});
    process.exit(0);
  };
  for await (const line of createInterface({ input: process.stdin })) {
    let command;
    try {
      command = JSON.parse(line);
    } catch {
      out({ error: `not JSON: ${line}` });
      continue;
    }
    if (command.cmd === 'quit') await quit();
    const handler = handlers[command.cmd];
    if (!handler) {
      out({ error: `unknown command ${command.cmd}` });
      continue;
    }
    try {
      await handler(command);
    } catch (e) {
      out({ error: `${command.cmd}: ${e.message}` });
    }
  }
  await quit();
}
