// Every op: WebGPU and wasm against the CPU oracle on random inputs (odd
// sizes, broadcasting, size 0), and every backward rule against central
// finite differences. The cases live in ops-cases.js, shared with the Node tier.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { finiteDifferenceMismatches, opCases, resultMismatch, rngFor, runAll } from './ops-cases.js';
import { expectClose, randomData, sizeOf } from './util.js';

const CASES = opCases(sn);

// Both kernel variants run here: 'workgroup' (tiled matmul, tree reductions: what GPUs use)
// and 'direct' (what software adapters such as SwiftShader use).
describe('ops: WebGPU (both kernel variants) against the CPU oracle', function () {
  const gpu = {};
  let cpu;
  before(async () => {
    for (const kernels of ['workgroup', 'direct']) {
      await sn.init({ backend: 'webgpu', kernels });
      gpu[kernels] = await runAll(sn, CASES);
    }
    await sn.init({ backend: 'cpu' });
    cpu = await runAll(sn, CASES);
  });

  for (const [name] of CASES) for (const kernels of ['workgroup', 'direct']) {
    it(`${name} (${kernels})`, () => {
      const mismatch = resultMismatch(name, gpu[kernels][name], cpu[name]);
      if (mismatch) expect.fail(mismatch);
    });
  }
});

// The test pages are cross-origin isolated (web-test-runner.config.mjs), so threads: 2
// runs GEMM on a helper worker too; threads: 1 is the path of pages that are not.
describe('ops: wasm (1 and 2 threads) against the CPU oracle', function () {
  const wasm = {};
  let cpu;
  before(async () => {
    for (const threads of [1, 2]) {
      await sn.init({ backend: 'wasm', threads });
      expect(sn.backendInfo()).to.include({ backend: 'wasm', threads });
      wasm[threads] = await runAll(sn, CASES);
    }
    await sn.init({ backend: 'cpu' });
    cpu = await runAll(sn, CASES);
  });

  // GEMMs large enough to be split over threads (over 4M multiply-adds; the op cases above are not).
  const LARGE = [
    ['matmul 301x257 @ 257x263', [[301, 257], [257, 263]], (a, b) => a.matmul(b)],
    ['matmul transposed, batched 3x131x129 @ 3x129x133', [[3, 129, 131], [3, 133, 129]], (a, b) => a.transpose(1, 2).matmul(b.transpose(1, 2))],
    ['linear relu 129x513 -> 131, bias', [[129, 513], [131, 513], [131]], (x, w, b) => sn.nn.functional.linear(x, w, b, { activation: 'relu' })],
  ];
  it('large GEMMs: 2 threads give results identical to 1 thread, and agree with the oracle', async () => {
    const results = {};
    for (const backend of ['cpu', 'wasm:1', 'wasm:2']) {
      const [name, threads] = backend.split(':');
      await sn.init({ backend: name, ...(threads ? { threads: +threads } : {}) });
      results[backend] = [];
      for (const [label, shapes, fn] of LARGE) {
        const rng = rngFor(label);
        const out = fn(...shapes.map((shape) => sn.tensor(randomData(rng, sizeOf(shape)), shape)));
        results[backend].push(await out.data());
      }
    }
    LARGE.forEach(([label], i) => {
      expect(results['wasm:2'][i], `${label}: 2 threads against 1`).to.deep.equal(results['wasm:1'][i]);
      expectClose(results['wasm:1'][i], results.cpu[i], { atol: 1e-3, rtol: 1e-3, label });
    });
  });

  for (const [name] of CASES) for (const threads of [1, 2]) {
    it(`${name} (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const mismatch = resultMismatch(name, wasm[threads][name], cpu[name]);
      if (mismatch) expect.fail(mismatch);
    });
  }
});

for (const backend of ['cpu', 'wasm']) describe(`backward rules against finite differences (${backend})`, function () {
  before(() => sn.init({ backend }));
  for (const c of CASES) {
    const [name, , , differentiable = true] = c;
    if (!differentiable) continue;
    it(name, async () => {
      expect(await finiteDifferenceMismatches(sn, c)).to.deep.equal([]);
    });
  }
});

// Elementwise backward rules are derived from the forward expression
// (worker/ops/derive.ts); where PyTorch's own rule gives an exact value the
// derivation must too: no 0 * inf from an untaken branch, ties split evenly.
for (const backend of ['cpu', 'wasm', 'webgpu']) describe(`derived elementwise gradients at the edges (${backend})`, function () {
  before(() => sn.init({ backend }));

  const gradOf = async (values, fn) => {
    const x = sn.tensor(values, undefined, { requiresGrad: true });
    fn(x).sum().backward();
    return Array.from(await x.grad.data());
  };

  it('elu and leakyRelu: the branch not taken contributes an exact 0 (exp(100) is inf)', async () => {
    expectClose(await gradOf([100, 1, -1, -100], (x) => x.elu()), [1, 1, Math.exp(-1), 0], { atol: 1e-6, rtol: 1e-6, label: 'elu' });
    expect(await gradOf([1e30, -1e30, 2, -2], (x) => x.leakyRelu(0.1))).to.deep.equal([1, Math.fround(0.1), 1, Math.fround(0.1)]);
  });

  it('pow: d/db of 0^b is 0 (PyTorch), d/da as usual', async () => {
    const a = sn.tensor([0, 2], undefined, { requiresGrad: true });
    const b = sn.tensor([2, 3], undefined, { requiresGrad: true });
    a.pow(b).sum().backward();
    expectClose(await a.grad.data(), [0, 12], { atol: 1e-5, rtol: 1e-6, label: 'd/da' });
    expectClose(await b.grad.data(), [0, 8 * Math.log(2)], { atol: 1e-5, rtol: 1e-6, label: 'd/db' });
  });

  it('maximum and minimum of a tensor with itself: the halves of a tie add back up to 1', async () => {
    expect(await gradOf([3, -2, 0], (x) => x.maximum(x))).to.deep.equal([1, 1, 1]);
    expect(await gradOf([3, -2, 0], (x) => x.minimum(x).mul(2))).to.deep.equal([2, 2, 2]);
  });

  it('a broadcast scalar operand sums its gradient; a reversed scalar negates', async () => {
    const a = sn.tensor([[1, 2, 3], [4, 5, 6]], undefined, { requiresGrad: true });
    const b = sn.tensor([2], undefined, { requiresGrad: true });
    a.sub(b).rsub(10).sum().backward();
    expect(Array.from(await a.grad.data())).to.deep.equal([-1, -1, -1, -1, -1, -1]);
    expect(Array.from(await b.grad.data())).to.deep.equal([6]);
  });
});
