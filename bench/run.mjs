// `npm run bench`: runs shadenet and TensorFlow.js side by side in one
// headless Chromium page (same adapter, same data) and prints the ratios.
import { chromium } from 'playwright-core';
import { serve } from '../demos/serve.mjs';

const server = await serve(0);
const { port } = server.address();
const browser = await chromium.launch({
  executablePath: process.env.CHROME_PATH || '/usr/bin/chromium',
  headless: true,
  args: ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader',
    '--enable-unsafe-swiftshader', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(m.text()));
  // Optional arguments: a case name (mlp, matmul, lstm) and the kernel variants (workgroup, direct).
  const query = new URLSearchParams({ ...(process.argv[2] && { only: process.argv[2] }), ...(process.argv[3] && { kernels: process.argv[3] }) });
  await page.goto(`http://127.0.0.1:${port}/bench/index.html?${query}`);
  const results = await page.waitForFunction(() => window.benchResults, null, { timeout: 30 * 60 * 1000, polling: 1000 }).then((h) => h.jsonValue());
  console.log('\ncase                                   shadenet      tfjs    ratio (tfjs / shadenet)');
  for (const r of results) {
    console.log(`${r.name.padEnd(38)} ${r.ours.toFixed(1).padStart(8)} ${r.unit} ${r.tfjs.toFixed(1).padStart(8)} ${r.unit}   ${(r.tfjs / r.ours).toFixed(2)}x`);
  }
} finally {
  await browser.close();
  server.close();
}
