// `npm test`: builds, runs the browser tests (web-test-runner, headless
// Chromium), then the Node tests (node --test over test/{node,package,demos}),
// and prints each runner's counts, then the combined 'N passed, N failed'
// alone on the last line (CI reads it). Exits non-zero when anything failed.
//
// TEST_FILES=a.test.js,b.test.mjs runs only those: .test.js files in
// Chromium, .test.mjs files in Node.
import { spawn } from 'node:child_process';
import { swiftShaderEnv } from './swiftshader-env.mjs';
import { existsSync, readdirSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const NODE_DIRS = ['test/node', 'test/package', 'test/demos'];

/** Runs a command with inherited stdio; resolves with its exit code. */
function run(cmd, args, env = process.env) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: 'inherit' });
    child.on('error', () => resolve(127));
    child.on('exit', (code, signal) => resolve(signal ? 128 : code));
  });
}

/** Runs a command, echoing its output, and returns the exit code and what it printed. */
function runCapturing(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['inherit', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => process.stderr.write(d));
    child.on('error', () => resolve({ code: 127, out }));
    child.on('exit', (code, signal) => resolve({ code: signal ? 128 : code, out }));
  });
}

const bin = (name) => join(root, 'node_modules', '.bin', name);

/** TEST_FILES as asked, read before browserTestsWanted() narrows it for web-test-runner. */
const requested = process.env.TEST_FILES?.split(',').filter(Boolean);

function nodeTestFiles() {
  if (requested) return requested.filter((f) => f.endsWith('.mjs'));
  return NODE_DIRS.filter((d) => existsSync(join(root, d)))
    .flatMap((d) => readdirSync(join(root, d), { recursive: true }).map((f) => join(d, String(f))))
    .filter((f) => f.endsWith('.test.mjs'))
    .sort();
}

function browserTestsWanted() {
  if (!requested) return true;
  const browser = requested.filter((f) => !f.endsWith('.mjs'));
  process.env.TEST_FILES = browser.join(',');
  return browser.length > 0;
}

const totals = [];
const count = (label, passed, failed) => totals.push({ label, passed, failed });

const built = await run('npm', ['run', 'build']);
if (built !== 0) count('build', 0, 1);
else {
  if (browserTestsWanted()) {
    const { code, out } = await runCapturing(bin('web-test-runner'), []);
    const last = [...out.matchAll(/^(\d+) passed, (\d+) failed$/gm)].pop();
    // A run that died before its reporter printed counts is one failure.
    if (!last) count('web-test-runner', 0, 1);
    else count('web-test-runner', +last[1], +last[2] + (code !== 0 && +last[2] === 0 ? 1 : 0));
  }
  const files = nodeTestFiles();
  if (files.length) {
    const dir = mkdtempSync(join(tmpdir(), 'shadenet-node-test-'));
    const tap = join(dir, 'report.tap');
    const code = await run(process.execPath, [
      '--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files,
    ], { ...process.env, ...swiftShaderEnv() });
    const report = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    const pass = report.match(/^# pass (\d+)$/m);
    const fail = report.match(/^# fail (\d+)$/m);
    const cancelled = +(report.match(/^# cancelled (\d+)$/m)?.[1] ?? 0);
    if (!pass || !fail) count('node --test', 0, 1);
    else count('node --test', +pass[1], +fail[1] + cancelled + (code !== 0 && +fail[1] + cancelled === 0 ? 1 : 0));
  }
}

const passed = totals.reduce((s, t) => s + t.passed, 0);
const failed = totals.reduce((s, t) => s + t.failed, 0);
console.log(`\n${totals.map((t) => `${t.label}: ${t.passed} passed, ${t.failed} failed`).join('\n')}\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
