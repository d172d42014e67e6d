// The package as users get it: `npm pack`, installed offline into a fresh app,
// built with Vite (the pinned devDependency) and run in Chromium; and the
// installed files loaded by a plain page from another origin, as from a CDN.
// Run after a build (npm test builds first): node --test test/package/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { serve } from '../../demos/serve.mjs';
import { chromeArgs, executablePath } from '../chromium.mjs';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));

let tmp, packed, app, browser;
const servers = [];
const origin = (server) => `http://127.0.0.1:${server.address().port}`;
const serveDir = async (dir) => {
  const server = await serve(0, { bases: [dir] });
  servers.push(server);
  return origin(server);
};

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'shadenet-package-'));
  // dist/ is already built; prepack would build it again (checked below that it does).
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: repo });
  [packed] = JSON.parse(stdout);
  app = join(tmp, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // The package has no dependencies, so nothing here needs a registry.
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', join(tmp, packed.filename)], { cwd: app });
  browser = await chromium.launch({ executablePath, headless: true, args: chromeArgs });
});

after(async () => {
  await browser?.close();
  for (const s of servers) s.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A page's script: trains y = 2x - 1 and leaves what happened in window.result. */
const trainScript = (specifier) => `
import * as sn from ${JSON.stringify(specifier)};
try {
  await sn.init();
  sn.manualSeed(1);
  const x = sn.tensor([[0], [1], [2], [3], [4], [5], [6], [7]]);
  const y = x.mul(2).sub(1);
  const model = sn.sequential([sn.layers.dense({ units: 1, inputShape: [1] })]);
  model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
  const { history } = await model.fit(x, y, { epochs: 20, batchSize: 4 });
  window.result = { first: history.loss[0], last: history.loss.at(-1) };
} catch (e) {
  window.result = { error: String(e && e.stack || e) };
}
`;

/** Opens url, waits for its training script; returns its result and the URLs of the workers it started. */
async function openAndTrain(url) {
  const page = await browser.newPage();
  const workers = [];
  page.on('worker', (w) => workers.push(w.url()));
  const log = [];
  page.on('pageerror', (e) => log.push(`error: ${e.message}`));
  page.on('console', (m) => log.push(`console: ${m.text()}`));
  try {
    await page.goto(url);
    await page.waitForFunction(() => window.result, null, { timeout: 90_000 }).catch(() => assert.fail(`no result from ${url}; page log: ${log.join('; ')}`));
    const result = await page.evaluate(() => window.result);
    assert.equal(result.error, undefined, result.error);
    assert.ok(result.last < result.first, `loss fell: ${result.first} -> ${result.last}`);
    return { result, workers };
  } finally {
    await page.close();
  }
}

test('the tarball holds exactly the runtime, LICENSE and no dependencies', async () => {
  const files = packed.files.map((f) => f.path).sort();
  for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/worker.js', 'dist/shadenet.js', 'dist/index.d.ts', 'dist/shadenet.d.ts', 'dist/types/lib/index.d.ts']) {
    assert.ok(files.includes(f), `${f} is packed (files: ${files.join(', ')})`);
  }
  const allowed = /^(LICENSE|README\.md|package\.json|dist\/[\w-]+\.(js|js\.map|d\.ts)|dist\/types\/(lib|worker)\/[\w/-]+\.d\.ts)$/;
  assert.deepEqual(files.filter((f) => !allowed.test(f)), [], 'nothing beyond the runtime, its maps and types');
  assert.deepEqual(files.filter((f) => /test/.test(f)), [], 'no test bundles');

  const installed = join(app, 'node_modules', 'shadenet');
  for (const f of files.filter((f) => f.endsWith('.map'))) {
    const map = JSON.parse(await readFile(join(installed, f), 'utf8'));
    assert.equal(map.sourcesContent?.length, map.sources.length, `${f} embeds its sources`);
    assert.ok(map.sourcesContent.every((s) => typeof s === 'string' && s.length > 0), `${f} embeds every source`);
  }
  const pkg = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8'));
  assert.equal(pkg.dependencies, undefined, 'comlink and idb-keyval are bundled, not dependencies');
  assert.match(pkg.scripts.prepack, /npm run build/);
  assert.equal(pkg.exports['.'].default, './dist/index.js');
  assert.equal(pkg.license, 'MIT');
  assert.match(await readFile(join(installed, 'LICENSE'), 'utf8'), /MIT License/);
});

test('installed into a Vite app, it builds, trains in Chromium, and the worker loads from the built asset', { timeout: 120_000 }, async () => {
  await writeFile(join(app, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
  await writeFile(join(app, 'main.js'), trainScript('shadenet'));
  await build({ root: app, configFile: false, logLevel: 'warn', build: { outDir: 'dist' } });
  const assets = await readdir(join(app, 'dist', 'assets'));
  const workerAsset = assets.find((f) => /^worker.*\.js$/.test(f));
  assert.ok(workerAsset, `the build emits the worker as an asset (assets: ${assets.join(', ')})`);

  const site = await serveDir(join(app, 'dist'));
  const { workers } = await openAndTrain(`${site}/`);
  assert.deepEqual(workers, [`${site}/assets/${workerAsset}`]);
});

test('a plain page loads the installed dist/shadenet.js and dist/index.js from another origin and trains', { timeout: 120_000 }, async () => {
  const cdn = await serveDir(join(app, 'node_modules', 'shadenet'));
  const pages = join(tmp, 'pages');
  await mkdir(pages);
  for (const file of ['shadenet.js', 'index.js']) {
    await writeFile(join(pages, `${file}.html`), `<!doctype html><script type="module">${trainScript(`${cdn}/dist/${file}`)}</script>`);
  }
  const site = await serveDir(pages);
  assert.notEqual(site, cdn);
  for (const file of ['shadenet.js', 'index.js']) {
    const { workers } = await openAndTrain(`${site}/${file}.html`);
    // A worker cannot start from another origin's script; both start from a blob: URL of the page's origin.
    assert.equal(workers.length, 1);
    assert.match(workers[0], new RegExp(`^blob:${site}/`));
  }
});
