import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemos, openPage, screenshot } from './browser.mjs';

let demos;
before(async () => (demos = await startDemos()));
after(() => demos.close());

test('/ lists every demo with a thumbnail, shows the backend, and the switch carries over to the demos', async () => {
  const { page, log } = await openPage(demos.browser, `${demos.base}/`);
  assert.equal(await page.textContent('#backend'), 'webgpu');
  const demosListed = await page.$$eval('.demos li', (items) => items.map((li) => [li.querySelector('a').getAttribute('href'), !!li.querySelector('svg')]));
  assert.deepEqual(demosListed, ['mnist.html', 'draw.html', 'personalize.html', 'sequences.html', 'embed.html'].map((h) => [h, true]));
  await screenshot(page, 'index');
  await page.click('a[data-backend="cpu"]');
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.textContent('#backend'), 'cpu');
  assert.equal(await page.getAttribute('.demos a', 'href'), 'mnist.html?backend=cpu');
  assert.equal(await page.getAttribute('a[data-backend="cpu"]', 'class'), 'on');
  // Every listed page is served.
  for (const href of await page.$$eval('.demos a', (as) => as.map((a) => a.href))) {
    assert.equal((await page.request.get(href)).status(), 200, href);
  }
  assert.deepEqual(log.errors, []);
});

test('the demos are served from demos/ and dist/ only: node_modules is never requested', async () => {
  const { page, log } = await openPage(demos.browser, `${demos.base}/draw.html`);
  await page.close();
  const paths = log.requests.map((u) => new URL(u).pathname);
  assert.ok(paths.includes('/dist/index.js') && paths.includes('/models/digits-base.safetensors'), paths.join(' '));
  assert.deepEqual(paths.filter((p) => p.includes('node_modules')), []);
});
