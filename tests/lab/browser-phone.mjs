// A browser phone for the WebRTC lab: JsSIP (npm, bundled with esbuild) in Debian's headless
// Chromium with a fake microphone playing a tone, registered to Kamailio over wss — the kind of
// webphone the seed platform gives its agents. The Rust tests drive it over stdin/stdout, one JSON
// object per line:
//   in:  {"cmd":"call","target":"sip:1001@127.0.0.1"} | {"cmd":"answer"} | {"cmd":"hangup"}
//        {"cmd":"measure","probes":[441,1000]} | {"cmd":"dtmf","digits":"1"} | {"cmd":"quit"}
//   out: {"event":"registered"} | {"event":"incoming"} | {"event":"confirmed"} | {"event":"ended","cause":…}
//        {"reply":"measure","peakHz":…,"levelDb":…,"probes":{…}} | {"error":"…"}
// Usage: node browser-phone.mjs '{"wss":"wss://127.0.0.1:PORT","user":"1002","password":"…","tone":"/path/tone.wav","autoAnswer":false}'
// With "echo":true the phone sends back what it hears once the call is up (the remote track in
// place of the microphone's: decoded, played out, encoded again), for the latency bench.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { openPage, out, serve } from './chromium-driver.mjs';

const config = JSON.parse(process.argv[2] ?? '{}');
const root = fileURLToPath(new URL('../..', import.meta.url));

const bundle = await esbuild.build({
  entryPoints: [join(root, 'node_modules/jssip/lib/JsSIP.js')],
  bundle: true,
  format: 'iife',
  globalName: 'JsSIP',
  platform: 'browser',
  minify: true,
  write: false,
});
const dir = mkdtempSync(join(tmpdir(), 'browser-phone-'));
// A file:// page is a secure context, so getUserMedia works without a web server.
writeFileSync(join(dir, 'jssip.js'), bundle.outputFiles[0].text);
writeFileSync(join(dir, 'phone.html'), `<!doctype html><title>phone</title><script src="jssip.js"></script>
<audio id="remote" autoplay></audio>
<script>
window.phone = (() => {
  const events = [];
  // Each event with the page's clock (ms), so a bench can time call setup inside the browser.
  const emit = (event) => events.push({ ...event, at: performance.timeOrigin + performance.now() });
  let session = null;
  let remoteStream = null;
  const socket = new JsSIP.WebSocketInterface(${JSON.stringify(config.wss)});
  const ua = new JsSIP.UA({
    sockets: [socket],
    uri: 'sip:${config.user}@127.0.0.1',
    password: ${JSON.stringify(config.password)},
    register: true,
    session_timers: false,
  });
  const track = (s) => {
    session = s;
    s.on('confirmed', () => {
      emit({ event: 'confirmed' });
      if (${config.echo ? 'true' : 'false'}) echo(s.connection);
    });
    s.on('ended', (e) => emit({ event: 'ended', cause: e.cause }));
    s.on('failed', (e) => emit({ event: 'ended', cause: e.cause }));
    s.on('newDTMF', (e) => e.originator === 'remote' && emit({ event: 'dtmf', digit: e.dtmf.tone }));
    s.on('hold', (e) => emit({ event: 'hold', originator: e.originator }));
    s.on('unhold', (e) => emit({ event: 'unhold', originator: e.originator }));
    s.on('peerconnection', (e) => attach(e.peerconnection));
    if (s.connection) attach(s.connection);
  };
  const attach = (pc) => pc.addEventListener('track', (e) => {
    remoteStream = e.streams[0] || new MediaStream([e.track]);
    // Chromium only feeds a remote WebRTC stream to WebAudio once an element plays it.
    document.getElementById('remote').srcObject = remoteStream;
  });
  const echo = async (pc) => {
    const heard = pc.getReceivers().find((r) => r.track && r.track.kind === 'audio');
    const said = pc.getSenders().find((s) => s.track && s.track.kind === 'audio');
    if (!heard || !said) return emit({ error: 'no audio to echo' });
    await said.replaceTrack(heard.track);
    emit({ event: 'echoing' });
  };
  ua.on('registered', () => emit({ event: 'registered' }));
  ua.on('registrationFailed', (e) => emit({ event: 'registrationFailed', cause: e.cause }));
  ua.on('newRTCSession', (e) => {
    if (e.originator === 'remote') emit({ event: 'incoming', from: e.request.from.uri.user });
    track(e.session);
    if (e.originator === 'remote' && ${config.autoAnswer ? 'true' : 'false'}) e.session.answer(options);
  });
  ua.start();
  // The tone as it is: no gain control or noise suppression between the fake microphone and the call.
  const audio = { autoGainControl: false, echoCancellation: false, noiseSuppression: false };
  const options = { mediaConstraints: { audio, video: false }, pcConfig: { iceServers: [] } };
  return {
    take: () => events.splice(0),
    call: (target) => { emit({ event: 'calling' }); track(ua.call(target, options)); },
    answer: () => session.answer(options),
    hangup: () => session && !session.isEnded() && session.terminate(),
    dtmf: (digits) => session.sendDTMF(digits, { transportType: 'RFC2833' }),
    // The remote audio's strongest frequency and level, over about a second.
    measure: async (probes) => {
      if (!remoteStream) return { error: 'no remote audio yet' };
      const context = new AudioContext();
      await context.resume();
      const source = context.createMediaStreamSource(remoteStream);
      const analyser = context.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      source.connect(analyser);
      const spectrum = new Float32Array(analyser.frequencyBinCount);
      const wave = new Float32Array(analyser.fftSize);
      const totals = new Float32Array(analyser.frequencyBinCount);
      let power = 0, rounds = 0;
      for (; rounds < 10; rounds++) {
        await new Promise((r) => setTimeout(r, 100));
        analyser.getFloatFrequencyData(spectrum);
        analyser.getFloatTimeDomainData(wave);
        spectrum.forEach((db, i) => { totals[i] += Math.pow(10, db / 10); });
        power += wave.reduce((sum, x) => sum + x * x, 0) / wave.length;
      }
      const binHz = context.sampleRate / analyser.fftSize;
      let peak = 1;
      for (let i = 1; i < totals.length; i++) if (totals[i] > totals[peak]) peak = i;
      const near = (hz) => {
        const i = Math.round(hz / binHz);
        return 10 * Math.log10(Math.max(totals[i - 1], totals[i], totals[i + 1]) / rounds + 1e-20);
      };
      const result = { peakHz: peak * binHz, levelDb: 10 * Math.log10(power / rounds + 1e-20), probes: {} };
      for (const hz of probes) result.probes[hz] = near(hz);
      await context.close();
      return result;
    },
  };
})();
</script>`);

const { browser, page } = await openPage([
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${config.tone}`,
], `file://${join(dir, 'phone.html')}`);

let closing = false;
const poll = setInterval(async () => {
  try {
    for (const event of await page.evaluate(() => window.phone.take())) out(event);
  } catch (e) {
    if (!closing) out({ error: String(e) });
  }
}, 50);

await serve({
  call: ({ target }) => page.evaluate((t) => window.phone.call(t), target),
  answer: () => page.evaluate(() => window.phone.answer()),
  hangup: () => page.evaluate(() => window.phone.hangup()),
  dtmf: ({ digits }) => page.evaluate((d) => window.phone.dtmf(d), digits),
  measure: async ({ probes }) => out({ reply: 'measure', ...(await page.evaluate((p) => window.phone.measure(p), probes ?? [])) }),
}, async () => {
  closing = true;
  clearInterval(poll);
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
});
