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
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 8 });
  await page.mouse.up();
}

for (const backend of ['webgpu', 'cpu']) {
  test(`draw a digit on ${backend}: a stroke is classified as it is drawn`, async () => {
    const { page, log } = await openPage(demos.browser, `${demos.base}/draw.html?backend=${backend}`);
    assert.equal(await page.textContent('#backend'), backend);
    // A vertical bar is a 1 to any model trained on MNIST.
    await stroke(page, [[0.5, 0.15], [0.5, 0.85]]);
    await page.waitForFunction(() => window.lastPrediction?.digit === 1 && /looks like a 1/.test(document.getElementById('status').textContent), null, { timeout: 30000 });
    const { probs } = await page.evaluate(() => window.lastPrediction);
    assert.ok(Math.abs(probs.reduce((a, b) => a + b) - 1) < 1e-4, 'ten probabilities that sum to 1');
    // The bars show them.
    const widths = await page.$$eval('#bars .bar', (bars) => bars.map((b) => parseFloat(b.style.width)));
    assert.equal(widths.length, 10);
    assert.ok(Math.abs(widths[1] - probs[1] * 100) < 0.1);
    // A zero: a loop drawn in one stroke.
    await page.click('#clear');
    const loop = Array.from({ length: 25 }, (_, i) => [0.5 + 0.25 * Math.sin((i / 24) * 2 * Math.PI), 0.5 - 0.33 * Math.cos((i / 24) * 2 * Math.PI)]);
    await stroke(page, loop);
    await page.waitForFunction(() => window.lastPrediction?.digit === 0, null, { timeout: 30000 });
    await screenshot(page, `draw-${backend}`);
    assert.deepEqual(log.errors, []);
  });
}
