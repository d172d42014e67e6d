// `npm run bench`: runs shadenet and TensorFlow.js side by side in headless
// Chromium (same page, same data) and prints the ratios: the GPU section
// (bench/index.html: WebGPU against TF.js webgpu) and the CPU section
// (bench/cpu.html: our wasm backend against TF.js wasm, threads on both).
// `npm run bench -- --node [--backend=cpu|wasm|webgpu] [case] [kernels]` runs
// the GPU section's cases in Node instead (bench/node.mjs).
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from '../demos/serve.mjs';
import { swiftShaderEnv } from '../test/swiftshader-env.mjs';

const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const [first, second] = positional;
const unknown = flags.filter((f) => f !== '--node' && !(flags.includes('--node') && f.startsWith('--backend=')));
if (unknown.length) throw new Error(`bench: unknown option ${unknown.join(' ')} (options: --node, and with it --backend=cpu|wasm|webgpu|auto)`);

function printTable(header, results) {
  console.log(`\n${header}\ncase                                               shadenet        tfjs    ratio (tfjs / shadenet)`);
  for (const r of results) {
    console.log(`${r.name.padEnd(50)} ${r.ours.toFixed(1).padStart(8)} ${r.unit} ${r.tfjs.toFixed(1).padStart(8)} ${r.unit}   ${(r.tfjs / r.ours).toFixed(2)}x`);
  }
}

/** The line of node.mjs's output that carries its results. */
const RESULTS = 'bench-results ';

/** Node: a child process, so that Dawn sees the Vulkan environment from its start. */
function runNode() {
  const backend = flags.find((f) => f.startsWith('--backend='))?.slice('--backend='.length) ?? 'auto';
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./node.mjs', import.meta.url)), backend, first ?? '', second ?? 'auto'], {
      env: { ...process.env, ...swiftShaderEnv() },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let pending = '';
    let out = null;
    child.stdout.on('data', (d) => {
      const lines = (pending + d).split('\n');
      pending = lines.pop();
      for (const line of lines) {
        if (line.startsWith(RESULTS)) out = JSON.parse(line.slice(RESULTS.length));
        else console.log(line);
      }
    });
    child.on('exit', (code) => (code === 0 && out ? resolve(printTable(out.header, out.results)) : reject(new Error(`bench/node.mjs exited with code ${code}`))));
  });
}

if (flags.includes('--node')) {
  await runNode();
  process.exit(0);
}

const server = await serve(0, { isolated: true });
const { port } = server.address();
const browser = await chromium.launch({
  executablePath: process.env.CHROME_PATH || '/usr/bin/chromium',
  headless: true,
  args: ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader',
    '--enable-unsafe-swiftshader', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});

/** Runs one bench page until it publishes window.benchResults, then prints its table. */
async function runPage(path, query) {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(m.text()));
  page.on('response', (r) => { if (r.status() >= 400) console.log(`${r.status()}: ${r.url()}`); });
  await page.goto(`http://127.0.0.1:${port}/bench/${path}?${new URLSearchParams(query)}`);
  const out = await page.waitForFunction(() => window.benchResults, null, { timeout: 30 * 60 * 1000, polling: 1000 }).then((h) => h.jsonValue());
  await page.close();
  const { header, results } = Array.isArray(out) ? { header: '', results: out } : out;
  printTable(header, results);
  return results;
}

/** numpy's float32 matmul (OpenBLAS sgemm here) at 1024, in GFLOP/s; null without numpy. */
function openBlasGflops() {
  const script = 'import numpy as np, time\nn=1024\na=np.random.rand(n,n).astype(np.float32); b=np.random.rand(n,n).astype(np.float32)\na@b\nt=time.perf_counter(); r=20\nfor _ in range(r): a@b\nprint(2*n**3*r/(time.perf_counter()-t)/1e9)';
  const out = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
  return out.status === 0 ? Number(out.stdout.trim()) : null;
}

try {
  // Arguments: ['gpu'] [case: mlp, mlp32, matmul, lstm, torch, stall, convnet, attention] [kernels: workgroup, direct], or
  // 'cpu' [case: mlp128, mlp32, lstm, convnet, matmul, all] [threads]; none runs both sections.
  const args = [...positional];
  const section = args[0] === 'cpu' || args[0] === 'gpu' ? args.shift() : args.length ? 'gpu' : null;
  const [only, option] = args;
  if (section !== 'cpu') await runPage('index.html', { ...(only && { only }), ...(option && { kernels: option }) });
  if (section !== 'gpu') {
    const results = await runPage('cpu.html', { ...(only && only !== 'all' && { only }), ...(option && { threads: option }) });
    const ours = results.find((r) => r.name.startsWith('matmul 1024'))?.gflops;
    const blas = openBlasGflops();
    if (ours && blas) console.log(`\nmatmul 1024: shadenet wasm ${ours.toFixed(1)} GFLOP/s, numpy/OpenBLAS sgemm ${blas.toFixed(1)} GFLOP/s on the same cores: ${(100 * ours / blas).toFixed(0)}%`);
    else if (ours) console.log('\n(numpy is not installed: no OpenBLAS comparison)');
  }
} finally {
  await browser.close();
  server.close();
}
