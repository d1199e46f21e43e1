// Type-checks every example message against the shim's TypeScript declarations with tsc, so
// js-shim/softphone-bridge.d.ts cannot drift from examples/messages/ (which the Rust side checks
// against the protocol module).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function typeFor(file) {
  const [kind] = file.split('.');
  return { request: 'SB.Request', event: 'SB.EventMessage', reply: 'SB.Reply' }[kind];
}

function tsc(source) {
  const dir = mkdtempSync(join(tmpdir(), 'sb-types-'));
  try {
    const file = join(dir, 'check.ts');
    writeFileSync(file, source);
    execFileSync(process.execPath, [TSC, '--noEmit', '--strict', '--target', 'es2020', '--module', 'commonjs', '--moduleResolution', 'node', file], {
      encoding: 'utf8', stdio: 'pipe',
    });
    return '';
  } catch (e) {
    return String(e.stdout || e.message);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const dts = join(ROOT, 'js-shim', 'softphone-bridge').replace(/\\/g, '/');

test('every example message has the declared type', () => {
  const dir = join(ROOT, 'examples', 'messages');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  assert.ok(files.length >= 38, `examples found: ${files.length}`);
  const lines = [`import SB = require(${JSON.stringify(dts)});`];
  files.forEach((file, i) => {
    const type = typeFor(file);
    assert.ok(type, `${file}: unknown kind`);
    lines.push(`// ${file}\nexport const m${i}: ${type} = ${readFileSync(join(dir, file), 'utf8')};`);
  });
  const errors = tsc(lines.join('\n'));
  assert.equal(errors, '', errors);
});

test('the declarations reject a wrong message (the check can fail)', () => {
  const source = `import SB = require(${JSON.stringify(dts)});\n` +
    `export const bad: SB.Request = { id: 1, action: 'start_call', params: { dialto: '1' } };\n`;
  const errors = tsc(source);
  assert.match(errors, /error TS\d+: .*dialto/, errors);
  assert.equal(errors.match(/error TS/g).length, 1, errors);
});

