// Tests run in real headless Chromium with WebGPU on SwiftShader (see
// test/chromium.mjs). Nothing downloads a browser.
import { playwrightLauncher } from '@web/test-runner-playwright';
import { defaultReporter } from '@web/test-runner';
import { fileURLToPath } from 'node:url';
import { serve } from './demos/serve.mjs';
import { chromeArgs, executablePath } from './test/chromium.mjs';

/** Prints per-file counts, then 'N passed, N failed' alone on the last line, for CI. */
function totalsReporter() {
  const perFile = [];
  const count = (suite, c) => {
    for (const t of suite.tests) (t.passed ? c.passed++ : t.skipped ? 0 : c.failed++);
    for (const s of suite.suites) count(s, c);
  };
  return {
    reportTestFileResults({ testFile, sessionsForTestFile }) {
      const c = { passed: 0, failed: 0 };
      for (const s of sessionsForTestFile) {
        if (s.testResults) count(s.testResults, c);
        // A file that failed to load or threw outside a test counts as a failure.
        if (!s.passed && (!s.testResults || s.errors?.length)) c.failed += Math.max(1, s.errors?.length ?? 0);
      }
      perFile.push([testFile.replace(process.cwd() + '/', ''), c]);
    },
    onTestRunFinished() {
      const total = perFile.reduce((t, [, c]) => ({ passed: t.passed + c.passed, failed: t.failed + c.failed }), { passed: 0, failed: 0 });
      const lines = perFile.map(([f, c]) => `  ${f}: ${c.passed} passed, ${c.failed} failed`);
      setTimeout(() => console.log(`\n${lines.join('\n')}\n${total.passed} passed, ${total.failed} failed`), 0);
    },
  };
}

/**
 * Every page is cross-origin isolated (COOP + COEP), so the wasm backend's threads
 * (SharedArrayBuffer memory shared with helper workers) are what the tests run;
 * test/nowasm-worker.js is served under a CSP without 'wasm-unsafe-eval', as a strict site would.
 */
async function headers(ctx, next) {
  await next();
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  ctx.set('Cross-Origin-Embedder-Policy', 'require-corp');
  if (ctx.path.endsWith('/test/nowasm-worker.js')) ctx.set('Content-Security-Policy', "script-src 'self'");
}

/**
 * A second origin for the tests: the repository served with CORS on another loopback port,
 * as a CDN would serve the package. Tests import its address from /cross-origin.js.
 */
function crossOriginServer() {
  let server;
  return {
    name: 'cross-origin-server',
    async serverStart() {
      server = await serve(0, { bases: [fileURLToPath(new URL('.', import.meta.url))] });
    },
    serve(context) {
      if (context.path === '/cross-origin.js') return { body: `export default 'http://127.0.0.1:${server.address().port}';`, type: 'js' };
    },
    serverStop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Server commands for fault tests, called from the page with executeServerCommand
 * (@web/test-runner-commands): 'crash-gpu-process' sends the DevTools protocol's
 * Browser.crashGpuProcess (headless Chromium refuses chrome://gpucrash). Chromium
 * restarts the GPU process; WebGPU devices open at the time are lost.
 */
function faultCommands() {
  return {
    name: 'fault-commands',
    async executeCommand({ command, session }) {
      if (command !== 'crash-gpu-process') return undefined;
      const cdp = await session.browser.browser.newBrowserCDPSession();
      try {
        await cdp.send('Browser.crashGpuProcess');
      } finally {
        await cdp.detach();
      }
      return true;
    },
  };
}

export default {
  middleware: [headers],
  files: process.env.TEST_FILES ? process.env.TEST_FILES.split(',') : ['test/**/*.test.js'],
  nodeResolve: true,
  concurrency: 1,
  browserStartTimeout: 120000,
  testsStartTimeout: 120000,
  testsFinishTimeout: 1200000,
  testFramework: { config: { timeout: 300000 } },
  browsers: [
    playwrightLauncher({
      product: 'chromium',
      launchOptions: { executablePath, headless: true, args: chromeArgs },
    }),
  ],
  plugins: [crossOriginServer(), faultCommands()],
  reporters: [defaultReporter(), totalsReporter()],
};
