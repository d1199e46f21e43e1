// Test harness for the shim: starts the real daemon binary, serves CRM fixture pages from two
// loopback origins, and launches Debian's Chromium (via playwright-core) with the daemon's CA
// trusted through an NSS database that `softphone-bridge certs install` writes into a
// throw-away HOME. Everything listens on and talks to loopback only.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync, copyFileSync, chmodSync, chownSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.SOFTPHONE_BRIDGE_BIN || join(ROOT, 'target', 'debug', 'softphone-bridge');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function isolatedEnv(extra = {}) {
  const env = { ...process.env, SOFTPHONE_BRIDGE_SYSTEM_CONFIG: '', SOFTPHONE_BRIDGE_USER_CONFIG: '', ...extra };
  delete env.RUST_LOG;
  return env;
}

async function waitFor(what, check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Runs the daemon; resolves once it has written DATA_DIR/daemon.json. `port` may be a range
 * ('20000-20003'); `user` ({uid, gid}) runs it as another OS user (terminal servers), from a copy
 * of the binary that user may read, with the data folder theirs.
 */
export async function startDaemon({ dataDir = mkdtempSync(join(tmpdir(), 'sb-data-')), port = 0, allowedOrigins = [], demoLine = false, user = null, env = {} } = {}) {
  const config = join(dataDir, 'config.toml');
  const origins = allowedOrigins.map((o) => JSON.stringify(o)).join(', ');
  writeFileSync(config, `[demo]\nline = ${demoLine}\n[api]\nport = ${JSON.stringify(port)}\nallowed_origins = [${origins}]\n`);
  let command = BIN;
  let prefix = [];
  let binaryDir = null;
  if (user) {
    binaryDir = mkdtempSync(join(tmpdir(), 'sb-bin-'));
    chmodSync(binaryDir, 0o755);
    copyFileSync(BIN, join(binaryDir, 'softphone-bridge'));
    chmodSync(join(binaryDir, 'softphone-bridge'), 0o755);
    for (const path of [dataDir, config]) chownSync(path, user.uid, user.gid);
    command = '/usr/bin/setpriv';
    prefix = [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', join(binaryDir, 'softphone-bridge')];
  }
  const child = spawn(command, [...prefix, '--data-dir', dataDir, 'run', '--headless', '--config', config], {
    env: isolatedEnv(env), stdio: ['ignore', 'ignore', 'pipe'], cwd: '/',
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const infoPath = join(dataDir, 'daemon.json');
  const info = await waitFor('daemon.json', () => {
    if (child.exitCode !== null) throw new Error(`daemon exited: ${stderr}`);
    if (!existsSync(infoPath)) return null;
    try {
      const parsed = JSON.parse(readFileSync(infoPath, 'utf8'));
      return parsed.pid === child.pid ? parsed : null;
    } catch { return null; }
  });
  return {
    dataDir, port: info.port, instance: info.instance, child,
    /** SIGTERM and wait: the daemon removes daemon.json on a clean stop. */
    async stop() {
      if (binaryDir) cleanup(binaryDir);
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
    log() {
      try { return readFileSync(join(dataDir, 'logs', 'softphone-bridge.log'), 'utf8'); } catch { return ''; }
    },
    cli(args, extraEnv = {}) {
      return execFileSync(BIN, ['--data-dir', dataDir, ...args], { env: isolatedEnv(extraEnv), encoding: 'utf8' });
    },
  };
}

/** A throw-away HOME whose NSS database trusts the daemon's CA (via our own `certs install`). */
export function trustingHome(daemon) {
  const home = mkdtempSync(join(tmpdir(), 'sb-home-'));
  daemon.cli(['certs', 'install'], { HOME: home });
  return home;
}

/**
 * Serves fixture pages. Reachable as http://127.0.0.1:PORT and http://localhost:PORT — two
 * different origins, so one can be allowed and the other not.
 * `/page` is an empty CRM page; `?csp=strict` adds a CSP that forbids connecting to localhost.
 */
export async function startPages(daemonPortOf) {
  const daemonPort = () => daemonPortOf();
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const headers = { 'content-type': 'text/html; charset=utf-8' };
    if (url.searchParams.get('csp') === 'strict') {
      headers['content-security-policy'] =
        `default-src 'self'; connect-src 'self'; script-src 'self' 'unsafe-inline' https://localhost:${daemonPort()}; ` +
        `frame-src https://localhost:${daemonPort()}`;
    }
    const example = url.pathname.match(/^\/examples\/([\w-]+\.(html|js))$/);
    if (example) {
      const type = example[2] === 'js' ? 'text/javascript' : 'text/html';
      res.writeHead(200, { ...headers, 'content-type': `${type}; charset=utf-8` });
      res.end(readFileSync(join(ROOT, 'examples', example[1])));
      return;
    }
    res.writeHead(url.pathname === '/page' ? 200 : 404, headers);
    res.end('<!doctype html><html><head><title>crm</title></head><body><h1>CRM</h1></body></html>');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    allowed: `http://127.0.0.1:${port}`,
    other: `http://localhost:${port}`,
    close: () => new Promise((r) => server.close(r)),
  };
}

/** Launches headless Chromium with the given HOME (its NSS database decides trust). */
export async function launchBrowser(home) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, HOME: home },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** Opens `url` and loads the shim from the daemon as a classic script. */
export async function openWithShim(browser, url, daemonPort) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.addScriptTag({ url: `https://localhost:${daemonPort}/shim.js` });
  page.errors = errors;
  return page;
}

export function cleanup(...dirs) {
  for (const dir of dirs) if (dir) rmSync(dir, { recursive: true, force: true });
}

/**
 * The usual lab: fixture pages, a daemon allowing the pages' first origin, a HOME that trusts the
 * daemon's CA, and Chromium. `lab.daemon` may be replaced (restart tests); `close()` tears down all.
 */
export async function startLab({ demoLine = false, daemonEnv = {} } = {}) {
  const lab = {};
  lab.pages = await startPages(() => lab.daemon.port);
  lab.daemon = await startDaemon({ allowedOrigins: [lab.pages.allowed], demoLine, env: daemonEnv });
  lab.home = trustingHome(lab.daemon);
  lab.browser = await launchBrowser(lab.home);
  lab.close = async () => {
    await lab.browser?.close();
    await lab.daemon?.stop();
    await lab.pages?.close();
    cleanup(lab.home, lab.daemon?.dataDir);
  };
  return lab;
}
