import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startDemos, screenshot } from './browser.mjs';

let demos;
before(async () => (demos = await startDemos()));
after(() => demos.close());

const done = (frame) => frame.waitForFunction(() => /done$/.test(document.getElementById('out').textContent), null, { timeout: 60000 });

test('embed: one small page with one module script trains a tiny model, also inside an iframe', async () => {
  const html = await readFile(new URL('../../demos/embed.html', import.meta.url), 'utf8');
  assert.equal(html.match(/<script type="module">/g).length, 1);
  assert.ok(html.length < 3000, `small enough to paste: ${html.length} bytes`);

  const context = await demos.browser.newContext({ viewport: { width: 460, height: 320 } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  // A docs page from another origin that only holds the iframe.
  await page.setContent(`<h3>Docs page</h3><iframe src="${demos.base}/embed.html?backend=cpu" width="420" height="230" style="border:1px solid #ccc"></iframe>`);
  const frame = page.frames().find((f) => f.url().includes('embed.html'));
  await done(frame);
  const text = await frame.textContent('#out');
  assert.match(text, /^backend cpu, epoch 150: loss/);
  // It learned XOR: outputs on the right side of 0.5.
  const outputs = [...text.matchAll(/→ (\d\.\d\d)/g)].map((m) => Number(m[1]));
  assert.deepEqual(outputs.map((p) => p > 0.5), [false, true, true, false], text);
  await screenshot(page, 'embed-iframe');
  assert.deepEqual(errors, []);

  const own = await context.newPage();
  await own.goto(`${demos.base}/embed.html`);
  await done(own);
  assert.match(await own.textContent('#out'), /^backend wasm/); // 'auto' on SwiftShader, a software adapter
  assert.match(await own.textContent('#code'), /^import \* as sn from '\.\/dist\/index\.js';/);
  await context.close();
});
