// A CRM page for the WebRTC lab: headless Chromium on a page that loads the shim, driven by the
// Rust tests over stdin/stdout in JSON lines:
//   in:  {"cmd":"eval","body":"return await …"} | {"cmd":"reload"} | {"cmd":"quit"}
//   out: {"event":"loaded"} | {"reply":"eval","value":…} | {"reply":"eval","error":"…"}
// Usage: node crm-page.mjs '{"url":"https://localhost:PORT/demo"}'
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2] ?? '{}');
const out = (message) => process.stdout.write(JSON.stringify(message) + '\n');

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // The daemon's per-install CA is not in this throwaway profile.
  args: ['--no-sandbox', '--ignore-certificate-errors'],
});
const page = await browser.newPage();
page.on('pageerror', (e) => out({ error: `page: ${e.message}` }));
await page.goto(config.url);
out({ event: 'loaded' });

const quit = async () => {
  await browser.close().catch(() => {});
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
  switch (command.cmd) {
    case 'eval':
      try {
        const value = await page.evaluate(`(async () => { ${command.body} })()`);
        out({ reply: 'eval', value: value ?? null });
      } catch (e) {
        out({ reply: 'eval', error: e.message });
      }
      break;
    case 'reload':
      await page.reload();
      out({ event: 'loaded' });
      break;
    case 'quit':
      await quit();
      break;
    default:
      out({ error: `unknown command ${command.cmd}` });
  }
}
await quit();
