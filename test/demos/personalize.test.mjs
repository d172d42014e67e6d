import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemos, openPage, screenshot } from './browser.mjs';

let demos;
before(async () => (demos = await startDemos()));
after(() => demos.close());

/** Draws a polyline on the pad with the mouse; points are fractions of the pad's size. */
async function stroke(page, points) {
  const box = await page.locator('#pad').boundingBox();
  const at = ([x, y]) => [box.x + x * box.width, box.y + y * box.height];
  await page.mouse.move(...at(points[0]));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 6 });
  await page.mouse.up();
}

// Someone's ones, written with a long flag, slightly different each time (the test draws one it did not
// train on): the base model reads them as 9s.
const one = (k) => [[0.25 + 0.02 * k, 0.4 - 0.02 * k], [0.55, 0.15], [0.55 - 0.02 * k, 0.85]];
const seven = [[0.25, 0.2], [0.75, 0.2], [0.45, 0.85]];

/** Draws, waits for the live prediction of that drawing, returns its probabilities. */
async function predictionFor(page, points) {
  await page.click('#clear');
  await page.evaluate(() => (window.lastPrediction = null));
  await stroke(page, points);
  await page.waitForFunction(() => window.lastPrediction, null, { timeout: 30000 });
  // Let the last stroke segment's prediction land too.
  await page.waitForTimeout(300);
  return page.evaluate(() => window.lastPrediction.probs);
}

test('personalization: fine-tunes on drawn examples, autosaves, survives a reload, forgets; no network after load', async () => {
  const { page, log } = await openPage(demos.browser, `${demos.base}/personalize.html`);
  assert.match(await page.textContent('#status'), /base model/);
  const requestsAtLoad = log.requests.length;
  const baseProbs = await predictionFor(page, one(-1));
  const argmax = (p) => p.indexOf(Math.max(...p));
  assert.notEqual(argmax(baseProbs), 1, 'the base model does not know this hand yet');
  for (let k = 0; k < 3; k++) {
    await page.click('#clear');
    await stroke(page, one(k));
    await page.click('#labels button[data-label="1"]');
  }
  await stroke(page, seven);
  await page.click('#labels button[data-label="7"]');
  assert.equal(await page.locator('#examples figure').count(), 4);
  await page.click('#train');
  await page.waitForFunction(() => /Round 1 saved on this device/.test(document.getElementById('status').textContent), null, { timeout: 60000 });
  const tunedProbs = await predictionFor(page, one(-1));
  assert.equal(argmax(tunedProbs), 1, `after a round it reads the user's 1: ${tunedProbs.map((p) => p.toFixed(2))}`);
  assert.deepEqual(log.requests.slice(requestsAtLoad), [], 'no network request after load');
  await screenshot(page, 'personalize-trained');

  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.match(await page.textContent('#status'), /round 1 and your 4 examples were restored/);
  assert.equal(await page.locator('#examples figure').count(), 4);
  const afterReload = log.requests.length;
  const restoredProbs = await predictionFor(page, one(-1));
  restoredProbs.forEach((p, d) => assert.ok(Math.abs(p - tunedProbs[d]) < 1e-4, `digit ${d}: ${p} after the reload, ${tunedProbs[d]} before`));
  await screenshot(page, 'personalize-reloaded');

  await page.click('#forget');
  await page.waitForFunction(() => /Forgotten/.test(document.getElementById('status').textContent));
  assert.equal(await page.locator('#examples figure').count(), 0);
  const forgottenProbs = await predictionFor(page, one(-1));
  forgottenProbs.forEach((p, d) => assert.ok(Math.abs(p - baseProbs[d]) < 1e-4, `digit ${d}: back to the base model`));
  assert.deepEqual(log.requests.slice(afterReload), [], 'no network request after the reload finished loading');
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.match(await page.textContent('#status'), /base model/);
  assert.deepEqual(log.errors, []);
});
