// The engine under Node: `import 'shadenet'` resolves to the Node entry, which
// runs the same engine in a worker_threads worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as sn from 'shadenet';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs a module body in a fresh Node process at the repository root; resolves with its exit code and output. */
function script(body, { execArgv = [], env = process.env } = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [...execArgv, '--input-type=module', '-e', body], { cwd: root, env, timeout: 120000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }));
  });
}

test('tensors and autograd compute on the CPU backend', async () => {
  await sn.init({ backend: 'cpu' });
  assert.equal(sn.backend(), 'cpu');
  const w = sn.tensor([[1, -2], [3, 4], [-5, 6]], undefined, { requiresGrad: true });
  const x = sn.tensor([[1, 2, 3], [4, 5, 6]]);
  const loss = x.matmul(w).relu().sum();
  loss.backward();
  // x @ w = [[-8, 24], [-11, 48]]; relu keeps column 1, so d/dw = [x column sums, masked to column 1].
  assert.equal(await loss.item(), 72);
  assert.deepEqual(await w.grad.array(), [[0, 5], [0, 7], [0, 9]]);
});

test('init({ workerUrl }) starts the Node worker from the given script', async () => {
  await sn.init({ backend: 'cpu', workerUrl: new URL('../../dist/node-worker.js', import.meta.url) });
  assert.equal(await sn.arange(5).sum().item(), 10);
  await assert.rejects(sn.init({ backend: 'cpu', workerUrl: new URL('../../dist/no-such-worker.js', import.meta.url) }), /engine worker failed/);
  await sn.init({ backend: 'cpu' });
});

test('a shape error throws at the call, naming both shapes', () => {
  assert.throws(() => sn.tensor([[1, 2, 3], [4, 5, 6]]).add(sn.zeros([4])), /\[2, 3\].*\[4\]/);
});

test('a crashed worker rejects what waits on it, naming the cause; sn.init() starts a fresh engine', async () => {
  await sn.init({ backend: 'cpu' });
  const t = sn.randn([32, 32]);
  const pending = [sn.sync(), t.matmul(t).data(), sn.memory()];
  sn._runtime()._crashWorker();
  for (const p of pending) await p.catch(() => {}); // the worker may answer some before it dies
  // The crash lands between two calls; poll until a call sees it.
  let err = null;
  for (let i = 0; i < 200 && !err; i++) err = await sn.sync().then(() => null, (e) => e);
  assert.match(err?.message ?? 'no error', /engine worker failed: .*injected engine crash.*sn\.init\(\)/s);
  await sn.init({ backend: 'cpu' });
  assert.equal(await sn.full([2], 4).sum().item(), 8);
});

test('a script that uses the engine exits on its own, with its results', async () => {
  const { code, stdout, stderr } = await script(`
    import * as sn from 'shadenet';
    console.log(await sn.ones([2, 3]).mul(2).sum().item());`);
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim(), '12');
});

test("without the optional 'webgpu' package, 'auto' runs on the WebAssembly CPU backend and 'webgpu' says why it cannot", async () => {
  const { code, stdout, stderr } = await script(`
    import * as sn from 'shadenet';
    await sn.init();
    console.log(sn.backend(), await sn.arange(4).sum().item(), sn.backendInfo().reason);
    await sn.init({ backend: 'webgpu' }).catch((e) => console.log(e.message));`, { execArgv: ['--import', './test/node/hide-webgpu.mjs'] });
  assert.equal(code, 0, stderr);
  const [first, second] = stdout.trim().split('\n');
  assert.match(first, /^wasm 6 no WebGPU \(WebGPU is not available: Node needs the optional 'webgpu' package/);
  assert.match(second, /WebGPU is not available: Node needs the optional 'webgpu' package/);
});
