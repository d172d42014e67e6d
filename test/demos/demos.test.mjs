// Every demo, driven in headless Chromium (WebGPU on SwiftShader) by Playwright:
// one server and one browser for the whole file. Screenshots go to test-artifacts/.
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startDemos, launchBrowser, openPage, closePages, screenshot, mainThreadTasks, stroke } from './browser.mjs';

let demos;
before(async () => (demos = await startDemos()));
afterEach(closePages);
after(() => demos.close());

describe('the index', () => {
  test('/ lists every demo with a thumbnail, shows the backend, and the switch carries over to the demos', async () => {
    const { page, log } = await openPage(demos.browser, `${demos.base}/`);
    // 'auto': whichever backend the engine picked, and why.
    assert.match(await page.textContent('#backend'), /^(webgpu|wasm|cpu)$/);
    assert.match(await page.textContent('#backend-reason'), /^\(.+\)$/);
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
});

describe('draw a digit', () => {
  for (const backend of ['webgpu', 'wasm', 'cpu']) {
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
});

describe('MNIST in the background', () => {
  test('MNIST trains in the background: chart points, short main-thread tasks, pause, stop says stopped, save and load', async () => {
    const { page, log } = await openPage(demos.browser, `${demos.base}/mnist.html?backend=webgpu`);
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
    // The loaded model trains on.
    const before = await page.evaluate(() => window.chartPoints());
    await page.click('#start');
    await page.waitForFunction((n) => window.chartPoints() > n, before, { timeout: 60000 });
    await page.click('#stop');
    const steps = await page.evaluate(() => window.chartSteps());
    assert.ok(steps.every((x, i) => i === 0 || x > steps[i - 1]), `the chart's steps only increase: ${steps}`);
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Stopped'), null, { timeout: 60000 });
    await screenshot(page, 'mnist');
    assert.deepEqual(log.errors, []);
    assert.deepEqual(log.requests.filter((u) => u.includes('node_modules')), []);

    // The draw demo offers the model saved here (same origin, same IndexedDB) and classifies with it.
    const draw = await openPage(demos.browser, `${demos.base}/draw.html`, page.context());
    await draw.page.selectOption('#model', 'mnist');
    await draw.page.waitForFunction(() => /Using the model you saved on the MNIST page/.test(document.getElementById('status').textContent));
    await stroke(draw.page, [[0.5, 0.15], [0.5, 0.85]]);
    await draw.page.waitForFunction(() => window.lastPrediction, null, { timeout: 30000 });
    const { probs } = await draw.page.evaluate(() => window.lastPrediction);
    assert.ok(Math.abs(probs.reduce((a, b) => a + b) - 1) < 1e-4, 'the Keras model gives ten probabilities');
    assert.deepEqual(draw.log.errors, []);
  });
});

describe('offline personalization', () => {
  // Someone's ones, written with a long flag, slightly different each time (the test draws one it did not
  // train on): the base model reads them as 9s.
  const one = (k) => [[0.25 + 0.02 * k, 0.4 - 0.02 * k], [0.55, 0.15], [0.55 - 0.02 * k, 0.85]];
  const seven = [[0.25, 0.2], [0.75, 0.2], [0.45, 0.85]];

  /** Draws, waits for the live prediction of that drawing, returns its probabilities. */
  async function predictionFor(page, points) {
    await page.click('#clear');
    await page.evaluate(() => (window.lastPrediction = null));
    await stroke(page, points);
    // The pad reports ink once per animation frame: after two frames the last segment has been reported,
    // then wait until the prediction for it has landed.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.waitForFunction(() => window.lastPrediction && window.predictionSettled(), null, { timeout: 30000 });
    return page.evaluate(() => window.lastPrediction.probs);
  }

  test('personalization: fine-tunes on drawn examples, autosaves, survives a reload, forgets; no network after load', async () => {
    const { page, log } = await openPage(demos.browser, `${demos.base}/personalize.html?backend=webgpu`);
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
});

describe('sequences', () => {
  test('sequences: the LSTM trains on padded variable-length waves in short main-thread tasks; loss and predictions are plotted; the code is shown', async () => {
    const { page, log } = await openPage(demos.browser, `${demos.base}/sequences.html?backend=webgpu`);
    assert.match(await page.textContent('#code'), /class SineNet extends sn\.nn\.Module/);
    // A PyTorch-style loop records every op on the page: its recording must stay in short tasks too.
    const tasks = await mainThreadTasks(demos.browser, page, async () => {
      await page.click('#train');
      await page.waitForFunction(() => window.plotPoints().losses >= 4, null, { timeout: 90000 });
      await page.click('#stop');
      await page.waitForFunction(() => /^Stopped at step/.test(document.getElementById('status').textContent), null, { timeout: 30000 });
    });
    const longest = Math.max(...tasks.map((t) => t.cpu));
    assert.ok(longest < 50, `longest main-thread task while training: ${longest} ms of CPU`);
    const plotted = await page.evaluate(() => window.plotPoints());
    // Every step of the held-out wave has a one-step prediction, and the 30 generated steps follow.
    assert.equal(plotted.predicted, 40);
    assert.equal(plotted.ahead, 30);
    assert.ok(plotted.lastLoss < plotted.firstLoss / 2, `the loss falls: ${plotted.firstLoss} -> ${plotted.lastLoss}`);
    await screenshot(page, 'sequences');
    assert.deepEqual(log.errors, []);
  });
});

describe('embed', () => {
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
    assert.match(await own.textContent('#code'), /^import \* as sn from '\.\/dist\/shadenet\.js';/);
    await context.close();
  });
});

// Every training demo also runs on the two CPU backends (a few steps each).
for (const backend of ['wasm', 'cpu']) {
  describe(`on the ${backend} backend`, () => {
    const url = (page) => `${demos.base}/${page}?backend=${backend}`;

    test(`MNIST on ${backend}: the chart fills, stop says stopped`, async () => {
      const { page, log } = await openPage(demos.browser, url('mnist.html'));
      assert.equal(await page.textContent('#backend'), backend);
      await page.click('#start');
      await page.waitForFunction(() => window.chartPoints() >= 3, null, { timeout: 60000 });
      await page.click('#stop');
      await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Stopped'), null, { timeout: 60000 });
      await screenshot(page, `mnist-${backend}`);
      assert.deepEqual(log.errors, []);
    });

    test(`sequences on ${backend}: loss points and predictions`, async () => {
      const { page, log } = await openPage(demos.browser, url('sequences.html'));
      assert.equal(await page.textContent('#backend'), backend);
      await page.click('#train');
      await page.waitForFunction(() => window.plotPoints().losses >= 1, null, { timeout: 90000 });
      await page.click('#stop');
      await page.waitForFunction(() => /^Stopped at step/.test(document.getElementById('status').textContent), null, { timeout: 30000 });
      const plotted = await page.evaluate(() => window.plotPoints());
      assert.equal(plotted.predicted, 40);
      assert.equal(plotted.ahead, 30);
      assert.ok(Number.isFinite(plotted.lastLoss));
      await screenshot(page, `sequences-${backend}`);
      assert.deepEqual(log.errors, []);
    });

    test(`personalization on ${backend}: a round trains and is saved`, async () => {
      const { page, log } = await openPage(demos.browser, url('personalize.html'));
      assert.equal(await page.textContent('#backend'), backend);
      const requestsAtLoad = log.requests.length;
      await stroke(page, [[0.5, 0.15], [0.5, 0.85]]);
      await page.click('#labels button[data-label="1"]');
      await page.click('#train');
      await page.waitForFunction(() => /Round 1 saved on this device/.test(document.getElementById('status').textContent), null, { timeout: 60000 });
      await screenshot(page, `personalize-${backend}`);
      await page.click('#forget');
      await page.waitForFunction(() => /Forgotten/.test(document.getElementById('status').textContent));
      assert.deepEqual(log.requests.slice(requestsAtLoad), [], 'no network request after load');
      assert.deepEqual(log.errors, []);
    });
  });
}

describe('errors in words', () => {
  // Failures are shown on the page in words.
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

  test('asking for WebGPU where there is none says so and points at the other backends', async () => {
    const noGpu = await launchBrowser({ webgpu: false });
    try {
      const page = await noGpu.newPage();
      await page.goto(`${demos.base}/draw.html?backend=webgpu`);
      await page.waitForSelector('#errors p', { timeout: 60000 });
      assert.match(await page.textContent('#errors'), /WebGPU could not start in this browser \(.+\)\. Switch to WebAssembly or CPU above\./);
      assert.equal(await page.textContent('#backend'), 'none');
      await screenshot(page, 'error-no-webgpu');
      // 'auto' falls back and the demo works.
      await page.goto(`${demos.base}/draw.html`);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60000 });
      assert.match(await page.textContent('#backend'), /^(wasm|cpu)$/);
    } finally {
      await noGpu.close();
    }
  });

  test('missing digits data is reported on the page, saying how to build it', async () => {
    const page = await openFailing('mnist.html', '**/data/mnist.bin', { status: 404, body: 'not found' });
    assert.match(await page.textContent('#errors'), /could not load the digits .*HTTP 404.*npm start/);
    await page.close();
  });
});
