import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemos, openPage, screenshot } from './browser.mjs';

let demos;
before(async () => (demos = await startDemos()));
after(() => demos.close());

test('sequences: the LSTM trains on padded variable-length waves; loss and predictions are plotted; the code is shown', async () => {
  const { page, log } = await openPage(demos.browser, `${demos.base}/sequences.html`);
  assert.match(await page.textContent('#code'), /class SineNet extends sn\.nn\.Module/);
  await page.click('#train');
  await page.waitForFunction(() => window.plotPoints().losses >= 4, null, { timeout: 90000 });
  await page.click('#stop');
  await page.waitForFunction(() => /^Stopped at step/.test(document.getElementById('status').textContent), null, { timeout: 30000 });
  const plotted = await page.evaluate(() => window.plotPoints());
  // Every step of the held-out wave has a one-step prediction, and the 30 generated steps follow.
  assert.equal(plotted.predicted, 40);
  assert.equal(plotted.ahead, 30);
  assert.ok(plotted.lastLoss < plotted.firstLoss / 2, `the loss falls: ${plotted.firstLoss} -> ${plotted.lastLoss}`);
  await screenshot(page, 'sequences');
  assert.deepEqual(log.errors, []);
});
