// Shared set-up for the demo tests: the demo server on a free loopback port and
// headless Chromium with WebGPU on SwiftShader, as the other browser tests use.
import { mkdir } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import { serve } from '../../demos/serve.mjs';
import { buildDemoAssets } from '../../demos/build.mjs';

export const artifacts = new URL('../../test-artifacts/', import.meta.url);

const webgpuArgs = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader'];
const baseArgs = ['--no-sandbox', '--js-flags=--expose-gc', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Headless Chromium; without `webgpu` it is a browser where WebGPU is off (Linux Chromium's default). */
export const launchBrowser = ({ webgpu = true } = {}) =>
  chromium.launch({ executablePath: process.env.CHROME_PATH || '/usr/bin/chromium', headless: true, args: [...(webgpu ? webgpuArgs : []), ...baseArgs] });

/** Starts the server and the browser; returns { base, browser, close }. */
export async function startDemos() {
  await buildDemoAssets();
  await mkdir(artifacts, { recursive: true });
  const server = await serve(0, { isolated: true }); // as `npm start` serves them
  const browser = await launchBrowser();
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    browser,
    async close() {
      await browser.close();
      server.close();
    },
  };
}

const opened = new Set();

/** Closes what openPage opened, so finished demos stop using the CPU. */
export async function closePages() {
  await Promise.all([...opened].map((c) => c.close()));
  opened.clear();
}

/**
 * A new page (in a fresh context unless one is given) that records console errors,
 * page errors, every request, and the main thread's long tasks (window.__longTasks,
 * observed from before the page's own scripts run).
 */
export async function openPage(browser, url, context) {
  if (!context) {
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    opened.add(context);
  }
  const page = await context.newPage();
  const log = { errors: [], requests: [] };
  page.on('console', (m) => m.type() === 'error' && log.errors.push(m.text()));
  page.on('pageerror', (e) => log.errors.push(String(e)));
  page.on('request', (r) => log.requests.push(r.url()));
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const t of list.getEntries()) window.__longTasks.push({ start: t.startTime, duration: t.duration });
    }).observe({ type: 'longtask' });
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60000 });
  return { page, log, context };
}

/** Saves a screenshot of the page under test-artifacts/. */
export const screenshot = (page, name) => page.screenshot({ path: new URL(`${name}.png`, artifacts).pathname, fullPage: true });

/**
 * Runs fn() while Chrome traces the page; returns the page's main-thread tasks as
 * { wall, cpu } in ms. `cpu` is the main thread's own CPU time in the task: what the
 * page's code cost. `wall` also counts time the OS gave the CPU to others (SwiftShader
 * runs the GPU on the same cores), which is what the Long Tasks API reports.
 */
export async function mainThreadTasks(browser, page, fn) {
  await browser.startTracing(page, { categories: ['toplevel', 'disabled-by-default-devtools.timeline'] });
  let buffer;
  try {
    await fn();
  } finally {
    buffer = await browser.stopTracing();
  }
  const trace = JSON.parse(buffer.toString()).traceEvents;
  const mains = trace.filter((e) => e.name === 'thread_name' && e.args.name === 'CrRendererMain');
  // The page's renderer: the one whose main thread ran the most tasks.
  const tasks = mains.map((m) => trace.filter((e) => e.pid === m.pid && e.tid === m.tid && e.ph === 'X' && e.name === 'ThreadControllerImpl::RunTask'));
  return tasks.sort((a, b) => b.length - a.length)[0].map((e) => ({ wall: e.dur / 1000, cpu: (e.tdur ?? 0) / 1000 }));
}

/** Draws a polyline on the page's #pad with the mouse; points are fractions of the pad's size. */
export async function stroke(page, points) {
  const box = await page.locator('#pad').boundingBox();
  const at = ([x, y]) => [box.x + x * box.width, box.y + y * box.height];
  await page.mouse.move(...at(points[0]));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 6 });
  await page.mouse.up();
}
