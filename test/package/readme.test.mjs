// Every ```js, ```ts and ```html sample in README.md typechecks under `strict`
// against the built package's types and runs in Chromium against dist/.
// Samples may use x, y, xTest, yTest (784 features, one-hot over 10 classes)
// and labels (int32 classes) without defining them; a sample without its own
// import continues the ones before it and gets `import * as sn`. A sample right
// after the line `<!-- readme-test: typecheck-only -->` is only typechecked
// (Node samples). Run after a build: node --test test/package/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { chromium } from 'playwright-core';
import { serve } from '../../demos/serve.mjs';
import { chromeArgs, executablePath } from '../chromium.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const CDN = 'https://cdn.jsdelivr.net/npm/shadenet/';

/** The samples: { line, lang, code, run } with code as a module that imports 'shadenet' (or the CDN URL). */
function samples(readme) {
  const out = [];
  const fence = /^```(js|ts|html)\n([\s\S]*?)^```$/gm;
  for (const m of readme.matchAll(fence)) {
    const before = readme.slice(0, m.index);
    const line = before.split('\n').length;
    const run = !/<!-- readme-test: typecheck-only -->\s*$/.test(before);
    let code = m[2];
    if (m[1] === 'html') {
      const script = /<script type="module">([\s\S]*?)<\/script>/.exec(code);
      if (!script) continue;
      code = script[1];
    }
    if (!/^\s*import \* as sn from /m.test(code)) code = `import * as sn from 'shadenet';\n${code}`;
    out.push({ line, lang: m[1], code, run });
  }
  return out;
}

const globalsDts = `import type * as sn from 'shadenet';
declare global {
  var x: sn.Tensor, y: sn.Tensor, xTest: sn.Tensor, yTest: sn.Tensor, labels: sn.Tensor;
}
export {};
`;

/** The same free variables, as real tensors (small: 256 training rows, 64 test rows). */
const globalsJs = `import * as sn from '/dist/index.js';
const oneHot = (classes) => sn.tensor(Array.from(classes, (c) => Array.from({ length: 10 }, (_, k) => (k === c ? 1 : 0))));
const classes = (n) => Int32Array.from({ length: n }, (_, i) => (i * 7) % 10);
globalThis.x = sn.rand([256, 784]);
globalThis.labels = sn.tensor(classes(256), [256], { dtype: 'int32' });
globalThis.y = oneHot(classes(256));
globalThis.xTest = sn.rand([64, 784]);
globalThis.yTest = oneHot(classes(64));
`;

let list, tmp, server, site, browser;

before(async () => {
  list = samples(await readFile(join(repo, 'README.md'), 'utf8'));
  tmp = await mkdtemp(join(tmpdir(), 'shadenet-readme-'));
  server = await serve(0, { bases: [repo] });
  site = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({ executablePath, headless: true, args: chromeArgs });
});

after(async () => {
  await browser?.close();
  server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('README has samples to check', () => {
  assert.ok(list.length >= 4, `found ${list.length} samples`);
});

test('every README sample typechecks under strict against the package types', async () => {
  // The package as an app sees it: node_modules/shadenet is this repository (its exports map and dist types).
  await mkdir(join(tmp, 'node_modules'));
  await symlink(repo, join(tmp, 'node_modules', 'shadenet'), 'dir');
  await writeFile(join(tmp, 'globals.d.ts'), globalsDts);
  const files = [join(tmp, 'globals.d.ts')];
  for (const s of list) {
    const file = join(tmp, `readme-line-${s.line}.ts`);
    await writeFile(file, s.code.replaceAll(CDN + 'dist/shadenet.js', 'shadenet/shadenet.js'));
    files.push(file);
  }
  const program = ts.createProgram(files, {
    strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler, lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    types: [], skipLibCheck: true,
  });
  const problems = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${d.file.fileName.replace(tmp + '/', '')}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
  assert.deepEqual(problems, [], 'README samples (named by their line in README.md) compile');
});

test('every README sample runs in Chromium', { timeout: 240_000 }, async () => {
  for (const s of list.filter((s) => s.run)) {
    const source = ts.transpileModule(s.code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 } }).outputText
      .replaceAll(`'shadenet'`, `'/dist/index.js'`)
      .replaceAll(CDN, '/');
    const page = await browser.newPage();
    await page.route(`${site}/readme/**`, (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === '/readme/') return route.fulfill({ contentType: 'text/html', body: '<!doctype html>' });
      if (path === '/readme/globals.js') return route.fulfill({ contentType: 'text/javascript', body: globalsJs });
      return route.fulfill({ contentType: 'text/javascript', body: `import '/readme/globals.js';\n${source}` });
    });
    try {
      await page.goto(`${site}/readme/`);
      const outcome = await page.evaluate((url) => import(url).then(() => 'ok', (e) => String(e && e.stack || e)), `${site}/readme/sample.js`);
      assert.equal(outcome, 'ok', `the README sample at line ${s.line} runs`);
    } finally {
      await page.close();
    }
  }
});
