// Every training demo also runs on the CPU backend (a few steps each).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemos, openPage, screenshot } from './browser.mjs';

let demos;
before(async () => (demos = await startDemos()));
after(() => demos.close());

const cpu = (page) => `${demos.base}/${page}?backend=cpu`;

test('MNIST on the CPU backend: the chart fills, stop says stopped', async () => {
  const { page, log } = await openPage(demos.browser, cpu('mnist.html'));
  assert.equal(await page.textContent('#backend'), 'cpu');
  await page.click('#start');
  await page.waitForFunction(() => window.chartPoints() >= 3, null, { timeout: 60000 });
  await page.click('#stop');
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Stopped'), null, { timeout: 60000 });
  await screenshot(page, 'mnist-cpu');
  assert.deepEqual(log.errors, []);
});

test('sequences on the CPU backend: loss points and predictions', async () => {
  const { page, log } = await openPage(demos.browser, cpu('sequences.html'));
  assert.equal(await page.textContent('#backend'), 'cpu');
  await page.click('#train');
  await page.waitForFunction(() => window.plotPoints().losses >= 2, null, { timeout: 90000 });
  await page.click('#stop');
  await page.waitForFunction(() => /^Stopped at step/.test(document.getElementById('status').textContent), null, { timeout: 30000 });
  const plotted = await page.evaluate(() => window.plotPoints());
  assert.equal(plotted.predicted, 40);
  assert.equal(plotted.ahead, 30);
  assert.ok(Number.isFinite(plotted.lastLoss));
  await screenshot(page, 'sequences-cpu');
  assert.deepEqual(log.errors, []);
});

test('personalization on the CPU backend: a round trains and is saved', async () => {
  const { page, log } = await openPage(demos.browser, cpu('personalize.html'));
  assert.equal(await page.textContent('#backend'), 'cpu');
  const box = await page.locator('#pad').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + 0.15 * box.height);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2, box.y + 0.85 * box.height, { steps: 8 });
  await page.mouse.up();
  await page.click('#labels button[data-label="1"]');
  await page.click('#train');
  await page.waitForFunction(() => /Round 1 saved on this device/.test(document.getElementById('status').textContent), null, { timeout: 60000 });
  await screenshot(page, 'personalize-cpu');
  await page.click('#forget');
  await page.waitForFunction(() => /Forgotten/.test(document.getElementById('status').textContent));
  assert.deepEqual(log.errors, []);
});
