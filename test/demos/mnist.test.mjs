import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemos, openPage, screenshot, mainThreadTasks } from './browser.mjs';

let demos;
before(async () => (demos = await startDemos()));
after(() => demos.close());

test('MNIST trains in the background: chart points, short main-thread tasks, pause, stop says stopped, save and load', async () => {
  const { page, log } = await openPage(demos.browser, `${demos.base}/mnist.html`);
  assert.match(await page.textContent('#backend'), /webgpu/);
  let startedAt, endedAt;
  const tasks = await mainThreadTasks(demos.browser, page, async () => {
    startedAt = await page.evaluate(() => performance.now());
    await page.click('#start');
    // A few batch events reach the chart while training runs.
    await page.waitForFunction(() => window.chartPoints() >= 4, null, { timeout: 60000 });
    await page.click('#pause');
    await page.waitForSelector('#pause:text("Resume")');
    const pausedAt = await page.evaluate(() => window.chartPoints());
    await page.waitForTimeout(600);
    // Paused: at most the event already on its way arrives.
    assert.ok((await page.evaluate(() => window.chartPoints())) <= pausedAt + 1);
    await page.click('#pause');
    await page.waitForFunction((n) => window.chartPoints() > n + 1, pausedAt, { timeout: 60000 });
    // Enough batches that the model is clearly better than chance when loaded back.
    await page.waitForFunction(() => Number(document.getElementById('status').textContent.match(/batch (\d+) of/)?.[1]) >= 30, null, { timeout: 90000 });
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Stopped'), null, { timeout: 60000 });
    endedAt = await page.evaluate(() => performance.now());
  });
  const longest = Math.max(...tasks.map((t) => t.cpu));
  const longTasks = await page.evaluate(([a, b]) => window.__longTasks.filter((t) => t.start >= a && t.start <= b), [startedAt, endedAt]);
  const meter = await page.evaluate(() => window.stallMeter());
  console.log(`main thread while training: ${tasks.length} tasks, longest ${longest.toFixed(1)} ms of CPU; ` +
    `Long Tasks API (wall clock, includes time the OS ran other processes): ${longTasks.map((t) => t.duration).join(', ') || 'none'}; ` +
    `page meter: longest timer gap ${meter.worstGap.toFixed(0)} ms`);
  assert.ok(longest < 50, `the page's own work never holds the main thread 50 ms: longest task ${longest} ms`);
  // The page's meter counts only the tasks within training, which lies inside the test's window.
  assert.ok(meter.longTasks.length <= longTasks.length);
  await page.click('#save');
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Saved'), null, { timeout: 60000 });
  await page.click('#load');
  await page.waitForFunction(() => /held-out digits: 0\.\d+/.test(document.getElementById('status').textContent), null, { timeout: 60000 });
  const accuracy = Number((await page.textContent('#status')).match(/held-out digits: (0\.\d+)/)[1]);
  assert.ok(accuracy > 0.5, `30 batches beat chance (0.1) by far: ${accuracy}`);
  await screenshot(page, 'mnist');
  assert.deepEqual(log.errors, []);
  assert.deepEqual(log.requests.filter((u) => u.includes('node_modules')), []);

  // The draw demo offers the model saved here (same origin, same IndexedDB) and classifies with it.
  const draw = await openPage(demos.browser, `${demos.base}/draw.html`, page.context());
  await draw.page.selectOption('#model', 'mnist');
  await draw.page.waitForFunction(() => /Using the model you saved on the MNIST page/.test(document.getElementById('status').textContent));
  const box = await draw.page.locator('#pad').boundingBox();
  await draw.page.mouse.move(box.x + box.width / 2, box.y + 0.15 * box.height);
  await draw.page.mouse.down();
  await draw.page.mouse.move(box.x + box.width / 2, box.y + 0.85 * box.height, { steps: 8 });
  await draw.page.mouse.up();
  await draw.page.waitForFunction(() => window.lastPrediction, null, { timeout: 30000 });
  const { probs } = await draw.page.evaluate(() => window.lastPrediction);
  assert.ok(Math.abs(probs.reduce((a, b) => a + b) - 1) < 1e-4, 'the Keras model gives ten probabilities');
  assert.deepEqual(draw.log.errors, []);
});
