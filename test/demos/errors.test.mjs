// Failures are shown on the page in words.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemos, screenshot } from './browser.mjs';

let demos;
before(async () => (demos = await startDemos()));
after(() => demos.close());

async function openFailing(path, route, fulfill) {
  const page = await demos.browser.newPage();
  await page.route(route, (r) => r.fulfill(fulfill));
  await page.goto(`${demos.base}/${path}`);
  await page.waitForSelector('#errors p', { timeout: 60000 });
  return page;
}

test('a missing base model is reported on the page', async () => {
  const page = await openFailing('draw.html', '**/models/digits-base.safetensors', { status: 404, body: 'not found' });
  assert.match(await page.textContent('#errors'), /Something went wrong: could not load the base model \(.*digits-base\.safetensors: HTTP 404\)/);
  await screenshot(page, 'error-missing-model');
  await page.close();
});

test('a corrupt base model is reported on the page', async () => {
  const page = await openFailing('personalize.html', '**/models/digits-base.safetensors', { status: 200, body: Buffer.from('this is not a safetensors file') });
  assert.match(await page.textContent('#errors'), /Something went wrong: .*safetensors/i);
  await page.close();
});

test('missing digits data is reported on the page, saying how to build it', async () => {
  const page = await openFailing('mnist.html', '**/data/mnist.bin', { status: 404, body: 'not found' });
  assert.match(await page.textContent('#errors'), /could not load the digits .*HTTP 404.*npm start/);
  await page.close();
});
