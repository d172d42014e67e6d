// Every op: WebGPU against the CPU oracle on random inputs (odd sizes,
// broadcasting, size 0), and every backward rule against central finite
// differences.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, mulberry32, randomData, sizeOf } from './util.js';

// [name, inputs as [shape, kind], fn, differentiable = true]; kind as in randomData;
// 'int:N' inputs are int32 and never differentiated.
const NO_GRAD = false;
const CASES = [
  // elementwise, unary
  ['neg', [[[37, 53]]], (a) => a.neg()],
  ['abs', [[[5, 7], 'away']], (a) => a.abs()],
  ['exp', [[[4, 9]]], (a) => a.exp()],
  ['log', [[[4, 9], 'positive']], (a) => a.log()],
  ['sqrt', [[[4, 9], 'positive']], (a) => a.sqrt()],
  ['sin', [[[13]]], (a) => a.sin()],
  ['cos', [[[13]]], (a) => a.cos()],
  ['square', [[[3, 5]]], (a) => a.square()],
  ['relu', [[[6, 7], 'away']], (a) => a.relu()],
  ['sigmoid', [[[6, 7]]], (a) => a.sigmoid()],
  ['tanh', [[[6, 7]]], (a) => a.tanh()],
  ['gelu', [[[6, 7]]], (a) => a.gelu()],
  ['softplus', [[[6, 7]]], (a) => a.softplus()],
  ['elu', [[[6, 7], 'away']], (a) => a.elu()],
  ['leakyRelu', [[[6, 7], 'away']], (a) => a.leakyRelu(0.1)],
  ['clamp', [[[6, 7], 'away']], (a) => a.clamp(-0.5, 0.9)],
  // elementwise, binary with broadcasting and scalars
  ['add 37x53 + 53', [[[37, 53]], [[53]]], (a, b) => a.add(b)],
  ['sub 4x1x5 - 3x1', [[[4, 1, 5]], [[3, 1]]], (a, b) => a.sub(b)],
  ['mul 2x3x4 * 1x3x1', [[[2, 3, 4]], [[1, 3, 1]]], (a, b) => a.mul(b)],
  ['div', [[[5, 6]], [[6], 'away']], (a, b) => a.div(b)],
  ['pow tensor^tensor', [[[5, 6], 'positive'], [[5, 6]]], (a, b) => a.pow(b)],
  ['pow ^2 (negative base)', [[[5, 6]]], (a) => a.pow(2)],
  ['maximum', [[[5, 6]], [[6]]], (a, b) => a.maximum(b)],
  ['minimum', [[[5, 6]], [[5, 1]]], (a, b) => a.minimum(b)],
  ['scalar ops', [[[4, 5]]], (a) => a.add(2).mul(-1.5).sub(0.25).div(3)],
  ['rsub rdiv', [[[4, 5], 'away']], (a) => a.rsub(1).add(a.rdiv(2))],
  ['compare', [[[6, 7]], [[7]]], (a, b) => a.gt(b).add(a.le(b).mul(2)).add(a.eq(a)).add(b.ne(0)), NO_GRAD],
  ['where', [[[6, 7]], [[6, 7]], [[7]]], (c, a, b) => sn.where(c.gt(0), a, b)],
  ['1x1', [[[1, 1]], [[1, 1]]], (a, b) => a.mul(b).add(a)],
  // reductions
  ['sum all', [[[7, 11, 5]]], (a) => a.sum()],
  ['sum dim 1', [[[7, 11, 5]]], (a) => a.sum(1)],
  ['sum dims keepdim', [[[7, 11, 5]]], (a) => a.sum([0, 2], true)],
  ['sum long row', [[[3, 300]]], (a) => a.sum(-1)],
  ['mean dim -1', [[[7, 11, 5]]], (a) => a.mean(-1)],
  ['max dim 1', [[[7, 11, 5]]], (a) => a.max(1)],
  ['max all', [[[7, 11, 5]]], (a) => a.max()],
  ['min dim 0 keepdim', [[[7, 11, 5]]], (a) => a.min(0, true)],
  ['argmax dim 1', [[[7, 11, 5]]], (a) => a.argmax(1), NO_GRAD],
  ['argmin dim 2', [[[7, 11, 5]]], (a) => a.argmin(2), NO_GRAD],
  ['argmax flat', [[[7, 11, 5]]], (a) => a.argmax(), NO_GRAD],
  ['softmax dim -1', [[[5, 37]]], (a) => a.softmax(-1)],
  ['softmax dim 0', [[[5, 37]]], (a) => a.softmax(0)],
  ['logSoftmax dim 1 (3-D)', [[[3, 7, 4]]], (a) => a.logSoftmax(1)],
  ['softmax large logits', [[[4, 9]]], (a) => a.mul(1000).softmax(1)],
  // matmul
  ['matmul 37x29 @ 29x53', [[[37, 29]], [[29, 53]]], (a, b) => a.matmul(b)],
  ['matmul 1x1', [[[1, 1]], [[1, 1]]], (a, b) => a.matmul(b)],
  ['matmul K=70 (not a tile multiple)', [[[9, 70]], [[70, 67]]], (a, b) => a.matmul(b)],
  ['matmul batched 3x5x7 @ 3x7x4', [[[3, 5, 7]], [[3, 7, 4]]], (a, b) => a.matmul(b)],
  ['matmul broadcast 2x1x5x6 @ 3x6x4', [[[2, 1, 5, 6]], [[3, 6, 4]]], (a, b) => a.matmul(b)],
  ['matmul batch @ matrix', [[[4, 5, 6]], [[6, 3]]], (a, b) => a.matmul(b)],
  ['matmul 1-D @ 2-D', [[[6]], [[6, 4]]], (a, b) => a.matmul(b)],
  ['matmul 2-D @ 1-D', [[[5, 6]], [[6]]], (a, b) => a.matmul(b)],
  ['matmul 1-D @ 1-D', [[[6]], [[6]]], (a, b) => a.matmul(b)],
  ['matmul transposed operands', [[[7, 5]], [[6, 7]]], (a, b) => a.T.matmul(b.T)],
  // linear: matmul + bias + activation in one kernel; weight [out, in]
  ['linear 37x29, weight 53x29, bias', [[[37, 29]], [[53, 29]], [[53]]], (x, w, b) => sn.nn.functional.linear(x, w, b)],
  ['linear without bias', [[[37, 29]], [[53, 29]]], (x, w) => sn.nn.functional.linear(x, w)],
  ['linear batched 3x5x7', [[[3, 5, 7]], [[4, 7]], [[4]]], (x, w, b) => sn.nn.functional.linear(x, w, b)],
  ['linear 1-D input', [[[6]], [[4, 6]], [[4]]], (x, w, b) => sn.nn.functional.linear(x, w, b)],
  ['linear weight as a transposed view', [[[5, 6]], [[6, 4]], [[4]]], (x, w, b) => sn.nn.functional.linear(x, w.T, b)],
  // (The name seeds the data: these pre-activations stay clear of relu's kink at finite-difference steps.)
  ['linear relu 6x5', [[[6, 5], 'away'], [[7, 5], 'away'], [[7], 'away']], (x, w, b) => sn.nn.functional.linear(x, w, b, { activation: 'relu' })],
  ['linear sigmoid', [[[6, 5]], [[7, 5]], [[7]]], (x, w, b) => sn.nn.functional.linear(x, w, b, { activation: 'sigmoid' })],
  ['linear tanh batched', [[[3, 5, 7]], [[4, 7]], [[4]]], (x, w, b) => sn.nn.functional.linear(x, w, b, { activation: 'tanh' })],
  ['linear gelu', [[[6, 5]], [[7, 5]], [[7]]], (x, w, b) => sn.nn.functional.linear(x, w, b, { activation: 'gelu' })],
  ['linear relu without bias, odd sizes', [[[37, 29], 'away'], [[53, 29], 'away']], (x, w) => sn.nn.functional.linear(x, w, null, { activation: 'relu' })],
  // movement
  ['reshape', [[[6, 10]]], (a) => a.reshape(3, -1, 2).mul(2)],
  ['permute then add', [[[2, 3, 4]], [[4, 3, 2]]], (a, b) => a.permute(2, 1, 0).add(b)],
  ['transpose', [[[5, 7]]], (a) => a.transpose(0, 1).mul(a.T)],
  ['expand', [[[3, 1]]], (a) => a.expand(3, 4).mul(1)],
  ['slice with step', [[[9, 8]]], (a) => a.slice(0, 1, 8, 3).slice(1, -5)],
  ['index -1', [[[4, 3, 5]]], (a) => a.index(-1)],
  ['index dim 1', [[[4, 3, 5]]], (a) => a.index(1, 1)],
  ['cat dim 1', [[[2, 3]], [[2, 5]], [[2, 1]]], (a, b, c) => sn.cat([a, b, c], 1)],
  ['cat with empty', [[[2, 3]], [[0, 3]]], (a, b) => sn.cat([a, b], 0)],
  ['stack dim 1', [[[2, 3]], [[2, 3]]], (a, b) => sn.stack([a, b], 1)],
  ['flatten unsqueeze squeeze', [[[2, 3, 4]]], (a) => a.flatten(1).unsqueeze(0).squeeze(0).mul(1)],
  ['gather dim 1', [[[4, 6]], [[4, 5], 'int:6']], (a, i) => a.gather(1, i)],
  ['gather dim 0 with repeats', [[[3, 4]], [[7, 4], 'int:3']], (a, i) => a.gather(0, i)],
  ['indexSelect dim 0 with repeats', [[[5, 3]], [[7], 'int:5']], (a, i) => a.indexSelect(0, i)],
  ['indexSelect dim 1', [[[2, 6, 3]], [[4], 'int:6']], (a, i) => a.indexSelect(1, i)],
  ['clone', [[[3, 4]]], (a) => a.clone()],
  ['size 0 sum', [[[0, 3]]], (a) => a.sum(0), NO_GRAD],
  // int32
  ['int32 arithmetic', [[[3, 4], 'int:9'], [[4], 'int:5']], (a, b) => a.add(b).mul(2).sub(a).maximum(b), NO_GRAD],
  ['int32 sum and cast', [[[3, 4], 'int:9']], (a) => a.sum(1).float().div(2), NO_GRAD],
];

const rngFor = (name) => mulberry32([...name].reduce((h, ch) => (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0, 7));

/** Inputs and a random output weighting for a case, identical on both backends. */
function caseData(name, specs, fn) {
  const rng = rngFor(name);
  const inputs = specs.map(([shape, kind = 'normal']) => ({ shape, kind, data: randomData(rng, sizeOf(shape), kind) }));
  return { inputs, rng };
}

const makeInputs = (inputs, requiresGrad) =>
  inputs.map(({ shape, kind, data }) => sn.tensor(data, shape, { dtype: kind.startsWith('int') ? 'int32' : 'float32', requiresGrad: requiresGrad && !kind.startsWith('int') }));

/** Runs every case on the current backend: outputs, and gradients of sum(out * w). */
async function runAll() {
  const results = {};
  for (const [name, specs, fn] of CASES) {
    const { inputs, rng } = caseData(name, specs, fn);
    const plain = fn(...makeInputs(inputs, false));
    const entry = { out: await plain.data(), shape: [...plain.shape], dtype: plain.dtype };
    if (plain.dtype === 'float32' && inputs.some((i) => !i.kind.startsWith('int'))) {
      const ts = makeInputs(inputs, true);
      const out = fn(...ts);
      if (out.requiresGrad) {
        const w = sn.tensor(randomData(rng, out.size), out.shape);
        out.mul(w).sum().backward();
        entry.grads = await Promise.all(ts.map((t) => (t.grad ? t.grad.data() : null)));
        entry.w = w;
      }
    }
    results[name] = entry;
  }
  return results;
}

// Both kernel variants run here: 'workgroup' (tiled matmul, tree reductions: what GPUs use)
// and 'direct' (what software adapters such as SwiftShader use).
describe('ops: WebGPU (both kernel variants) against the CPU oracle', function () {
  const gpu = {};
  let cpu;
  before(async () => {
    for (const kernels of ['workgroup', 'direct']) {
      await sn.init({ backend: 'webgpu', kernels });
      gpu[kernels] = await runAll();
    }
    await sn.init({ backend: 'cpu' });
    cpu = await runAll();
  });

  for (const [name] of CASES) for (const kernels of ['workgroup', 'direct']) {
    it(`${name} (${kernels})`, () => {
      const g = gpu[kernels][name];
      const c = cpu[name];
      expect(g.shape).to.deep.equal(c.shape);
      expect(g.dtype).to.equal(c.dtype);
      const tol = { atol: 1e-4, rtol: 1e-4, label: `${name} forward` };
      expectClose(g.out, c.out, tol);
      expect(!!g.grads).to.equal(!!c.grads);
      (c.grads ?? []).forEach((cg, i) => {
        if (cg === null) return expect(g.grads[i]).to.equal(null);
        expectClose(g.grads[i], cg, { ...tol, label: `${name} grad ${i}` });
      });
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
      wasm[threads] = await runAll();
    }
    await sn.init({ backend: 'cpu' });
    cpu = await runAll();
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
      const g = wasm[threads][name];
      const c = cpu[name];
      expect(g.shape).to.deep.equal(c.shape);
      expect(g.dtype).to.equal(c.dtype);
      const tol = { atol: 1e-4, rtol: 1e-4, label: `${name} forward` };
      expectClose(g.out, c.out, tol);
      expect(!!g.grads).to.equal(!!c.grads);
      (c.grads ?? []).forEach((cg, i) => {
        if (cg === null) return expect(g.grads[i]).to.equal(null);
        expectClose(g.grads[i], cg, { ...tol, label: `${name} grad ${i}` });
      });
    });
  }
});

for (const backend of ['cpu', 'wasm']) describe(`backward rules against finite differences (${backend})`, function () {
  before(() => sn.init({ backend }));
  const EPS = 1e-2;
  const PROBES = 6;

  for (const [name, specs, fn, differentiable = true] of CASES) {
    if (!differentiable) continue;
    it(name, async () => {
      const { inputs, rng } = caseData(name, specs, fn);
      const ts = makeInputs(inputs, true);
      const out = fn(...ts);
      expect(out.requiresGrad, 'output requires grad').to.equal(true);
      const wData = randomData(rng, out.size);
      const w = sn.tensor(wData, out.shape);
      out.mul(w).sum().backward();
      const loss = (datas) => fn(...makeInputs(datas.map((data, i) => ({ ...inputs[i], data })), false)).mul(w).sum();
      // Every perturbed loss is queued first and read back in one go.
      const grads = await Promise.all(ts.map((t) => (t.grad ? t.grad.data() : null)));
      const probes = [];
      const losses = [];
      inputs.forEach((inp, i) => {
        // Inputs that only reach the output through a non-differentiable op (where's condition) get no grad.
        if (grads[i] === null) return;
        const n = inp.data.length;
        for (let p = 0; p < Math.min(PROBES, n); p++) {
          const j = Math.floor(rng() * n);
          for (const sign of [1, -1]) {
            const datas = inputs.map((x) => x.data.slice());
            datas[i][j] += sign * EPS;
            losses.push(loss(datas));
          }
          probes.push([i, j]);
        }
      });
      expect(probes.length, 'probed elements').to.be.greaterThan(0);
      const values = await sn.stack(losses).data();
      probes.forEach(([i, j], p) => {
        const numeric = (values[2 * p] - values[2 * p + 1]) / (2 * EPS);
        const analytic = grads[i][j];
        const ok = Math.abs(numeric - analytic) <= 2e-2 + 2e-2 * Math.abs(numeric);
        if (!ok) expect.fail(`${name}: d/d input${i}[${j}]: analytic ${analytic}, numeric ${numeric}`);
      });
    });
  }
});
