// A CRM page for the WebRTC lab: headless Chromium on a page that loads the shim, driven by the
// Rust tests over stdin/stdout in JSON lines:
//   in:  {"cmd":"eval","body":"return await …"} | {"cmd":"reload"} | {"cmd":"quit"}
//   out: {"event":"loaded"} | {"reply":"eval","value":…} | {"reply":"eval","error":"…"}
// Usage: node crm-page.mjs '{"url":"https://localhost:PORT/demo"}'
import { openPage, out, serve } from './chromium-driver.mjs';

const config = JSON.parse(process.argv[2] ?? '{}');
// The daemon's per-install CA is not in this throwaway profile: certificate errors are ignored.
const { browser, page } = await openPage([], config.url);
out({ event: 'loaded' });

await serve({
  eval: async ({ body }) => {
    try {
      const value = await page.evaluate(`(async () => { ${body} })()`);
      out({ reply: 'eval', value: value ?? null });
    } catch (e) {
      out({ reply: 'eval', error: e.message });
    }
  },
  reload: async () => {
    await page.reload();
    out({ event: 'loaded' });
  },
}, () => browser.close());
