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
