// Lazy elementwise fusion: kernels per step, and every fused path against the unfused oracle.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, expectFiniteDifferenceGradients, mulberry32, randomData } from './util.js';

/** Kernels dispatched while fn runs (after a sync on both sides). */
async function kernelsOf(fn) {
  await sn.sync();
  const before = (await sn.memory()).kernels;
  await fn();
  await sn.sync();
  return (await sn.memory()).kernels - before;
}

function seedData(n) {
  const x = new Float32Array(n * 784).map((_, i) => ((i * 7919) % 255) / 255);
  const y = new Float32Array(n * 10);
  for (let i = 0; i < n; i++) y[i * 10 + (i % 10)] = 1;
  return { x: sn.tensor(x, [n, 784]), y: sn.tensor(y, [n, 10]) };
}

describe('kernels per seed-MLP training step', function () {
  this.timeout(120000);
  for (const backend of ['webgpu', 'wasm']) {
    it(`fit and the PyTorch-style loop run ${backend === 'webgpu' ? '15 and 9' : '14 and 8'} kernels per step (${backend})`, async () => {
      await sn.init({ backend });
      const n = 256;
      const { x, y } = seedData(n);
      const model = sn.sequential([
        sn.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }),
        sn.layers.dense({ units: 10, activation: 'softmax' }),
      ]);
      model.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
      await model.fit(x, y, { epochs: 1, batchSize: 128 });
      const fit2 = await kernelsOf(() => model.fit(x, y, { epochs: 1, batchSize: 128 }));
      const fit4 = await kernelsOf(() => model.fit(x, y, { epochs: 2, batchSize: 128 }));
      const fitPerStep = (fit4 - fit2) / 2;

      const net = new sn.nn.Sequential(new sn.nn.Linear(784, 128), new sn.nn.ReLU(), new sn.nn.Linear(128, 10));
      const opt = new sn.optim.Adam(net.parameters(), { lr: 1e-3 });
      const crit = new sn.nn.CrossEntropyLoss();
      const labels = sn.tensor(Int32Array.from({ length: 64 }, (_, i) => i % 10), [64], { dtype: 'int32' });
      const xb = x.slice(0, 0, 64);
      const step = () => { opt.zeroGrad(); const loss = crit.forward(net.forward(xb), labels); loss.backward(); opt.step(); return loss; };
      await step().item();
      const loopPerStep = await kernelsOf(() => step().item());
      // Unfused, these were 41.5 and 38 (bench/NOTES.md); lazy fusion with step plans made them 30.5 and 25.
      // The fused softmax cross-entropy and accuracy, GEMM operand prologues and dropping the unread softmax
      // output: a fit step's plan runs 18 kernels (two of them copy the batch's x and y), plus 8 per epoch
      // (the shuffle's 4, the sums' 1, the epoch's read 3) over its 2 steps; the PyTorch-style step 14.
      // The multi-tensor Adam (2 kernels on cpu/wasm, 3 on WebGPU, where the large weight has a kernel of its own)
      // made them 19 and 11 (20 and 12 on WebGPU); each Linear's bias gradient inside its weight-gradient GEMM, 17 and 9 (18 and 10);
      // fit's launches reading the batch's rows in the data rather than copies of them, fit 15 (16); the cross-entropy
      // forward kernel writing the gradient too (no backward kernel), 14 and 8 (15 and 9).
      expect(fitPerStep).to.equal(backend === 'webgpu' ? 15 : 14);
      expect(loopPerStep).to.equal(backend === 'webgpu' ? 9 : 8);
    });
  }
});

const t = (rng, shape, kind) => sn.tensor(randomData(rng, shape.reduce((a, b) => a * b, 1), kind), shape);

/**
 * Whole programs: each returns tensors to read. Run with fusion on (cpu, wasm, webgpu) and
 * against the same program with fusion off on the CPU backend (every op its own kernel).
 */
const PROGRAMS = [
  ['a chain of maps over 37x53 with broadcasting', (rng) => {
    const a = t(rng, [37, 53]), b = t(rng, [53]), c = t(rng, [37, 1]);
    const y = a.mul(b).add(c).relu().sub(a.exp().mul(0.1)).div(b.abs().add(1)).tanh().mul(c).neg().add(a.abs().sqrt());
    return [y, y.mul(y).sub(c)];
  }],
  ['views of lazy results feed maps: transpose, slices, expand, reshape, select', (rng) => {
    const a = t(rng, [37, 53]), d = t(rng, [53, 37]);
    const u = a.mul(2).add(1);
    return [
      u.transpose(0, 1).mul(d),
      u.slice(0, 3, 30, 2).add(1),
      u.slice(1, 5, 40).exp(),
      u.unsqueeze(0).expand([3, 37, 53]).add(t(rng, [3, 1, 53])),
      u.reshape([53, 37]).sub(d),
      u.reshape([37 * 53]).slice(0, 10, 1000, 3).mul(3),
      u.reshape([37, 1, 53]).add(t(rng, [1, 4, 53])).permute(2, 0, 1).sub(1),
      u.index(5).mul(u.index(6)),
      u.reshape([53, 37]).transpose(0, 1).add(a),
    ];
  }],
  ['one lazy result read through a view that composes and one that does not', (rng) => {
    const q = t(rng, [37, 53]).mul(t(rng, [53]));
    // Reshaping q merges a broadcast dim of its input: that view cannot be read through the recipe.
    return [q.mul(q.reshape([53, 37]).T), q.reshape([1961]).add(1), q.sum()];
  }],
  ['reductions of fused maps', (rng) => {
    const a = t(rng, [37, 53]), b = t(rng, [37, 53]), c = t(rng, [37, 1]);
    const d = a.sub(b);
    return [a.mul(b).sum(), d.mul(d).mean(), a.mul(c).sum(0), a.add(c).exp().max(1), a.mul(-1).argmax(1), a.mul(c).transpose(0, 1).sum(1, true), a.add(1).softmax(-1), a.mul(2).logSoftmax(0)];
  }],
  ['matmul and linear read lazy operands', (rng) => {
    const a = t(rng, [37, 53]), e = t(rng, [53, 29]), w = t(rng, [31, 53]), b = t(rng, [31]);
    const F = sn.nn.functional;
    return [a.mul(2).matmul(e.add(1)), a.relu().matmul(e.T.mul(3).T), F.linear(a.tanh(), w, b).add(1).relu(), F.linear(a, w.mul(0.5), b.add(2))];
  }],
  ['matmul on 8x8 thread blocks (outputs of 64 or more blocks): lazy operands, transposed and batched, and the epilogue', (rng) => {
    const a = t(rng, [67, 45]), e = t(rng, [45, 71]), w = t(rng, [71, 45]), b = t(rng, [71]), x = t(rng, [3, 45, 67]);
    const F = sn.nn.functional;
    return [a.mul(2).matmul(e.add(1)), a.relu().matmul(e.T.mul(3).T), F.linear(a.tanh(), w, b).add(1).relu(), x.transpose(1, 2).exp().matmul(e.sub(1))];
  }],
  ['batched matmul operands computed as the GEMM reads them: broadcast batch, int32, too many inputs to inline', (rng) => {
    const a = t(rng, [3, 37, 29]), b = t(rng, [29, 31]), c = t(rng, [37, 29]), d = t(rng, [29]), e = t(rng, [31]);
    const i = sn.arange(0, 29 * 31, 1, { dtype: 'int32' }).reshape([29, 31]);
    const many = a.mul(c).add(d).mul(t(rng, [3, 1, 29])).sub(t(rng, [37, 1])).relu();
    // An operand that reads no tensor (a lazy constant) leaves the other's storages first.
    return [a.relu().matmul(b.mul(e)), c.tanh().matmul(i.mul(2)), many.matmul(b.add(1)), a.mul(2).matmul(a.transpose(1, 2).add(1)), sn.ones([5, 29]).matmul(b.mul(2))];
  }],
  ['in-place writes to a lazy result\'s input: readers see the old values', async (rng) => {
    const x = t(rng, [31, 31]);
    const y = x.mul(2);
    x.add_(1);
    const s = t(rng, [31, 31]);
    const tr = s.transpose(0, 1).mul(2);
    s.add_(tr);
    const p = t(rng, [31, 31]);
    const step = p.sub(p.mul(0.1));
    p.copy_(step);
    const q = t(rng, [31, 31]);
    const before = q.add(0);
    q.mul_(3);
    q.sub_(q.mul(0.5));
    return [y, x, tr, s, step, p, before, q];
  }],
  ['gradients through fused chains', (rng) => {
    const a = t(rng, [37, 53]).requiresGrad_(), b = t(rng, [53]).requiresGrad_(), c = t(rng, [37, 1]).requiresGrad_();
    a.mul(b).add(c).tanh().mul(a.sigmoid()).sub(c.exp()).square().mean().backward();
    return [a.grad, b.grad, c.grad];
  }],
  ['long chains and shared subexpressions stay bounded', (rng) => {
    let y = t(rng, [37, 53]);
    for (let i = 0; i < 40; i++) y = y.mul(0.5).add(y.mul(0.25)).add(y.abs().mul(0.25));
    let z = t(rng, [29]);
    for (let i = 0; i < 60; i++) z = z.mul(0.9).add(0.1);
    return [y, z];
  }],
  ['int32 chains and casts', () => {
    const i = sn.arange(0, 2035, 1, { dtype: 'int32' }).reshape([37, 55]);
    const j = i.mul(3).add(1).sub(i.mul(2));
    return [j, j.float().mul(0.5).add(j.float()), j.float().mul(0.5).int()];
  }],
  ['fused softmax cross-entropy and accuracy (53 rows, 37 classes)', (rng) => {
    const F = sn.nn.functional;
    const x = t(rng, [53, 37]).requiresGrad_();
    const labels = sn.tensor(randomData(rng, 53, 'int:37'), [53], { dtype: 'int32' });
    const probs = t(rng, [53, 37]).softmax(1);
    const weight = t(rng, [37], 'positive');
    const loss = F.crossEntropy(x.mul(1.5), labels, { weight, labelSmoothing: 0.1 }).add(F.crossEntropy(x, probs, { reduction: 'sum' }).mul(0.01));
    loss.backward();
    return [loss, x.grad, F.crossEntropy(x, labels, { reduction: 'none' }), sn.tidy(() => x.detach()).argmax(1)];
  }],
  ['a PyTorch-style training loop (Adam), three steps', async (rng) => {
    sn.manualSeed(3);
    const net = new sn.nn.Sequential(new sn.nn.Linear(53, 31), new sn.nn.ReLU(), new sn.nn.Linear(31, 7));
    const opt = new sn.optim.Adam(net.parameters(), { lr: 1e-2 });
    const x = t(rng, [37, 53]);
    const labels = sn.tensor(Int32Array.from({ length: 37 }, (_, i) => i % 7), [37], { dtype: 'int32' });
    const losses = [];
    for (let i = 0; i < 3; i++) {
      opt.zeroGrad();
      const loss = new sn.nn.CrossEntropyLoss().forward(net.forward(x), labels);
      loss.backward();
      opt.step();
      losses.push(loss);
    }
    return [...losses, ...net.parameters()];
  }],
];

async function runPrograms() {
  const out = {};
  for (const [name, fn] of PROGRAMS) {
    const ts = await fn(mulberry32([...name].reduce((h, ch) => (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0, 7)));
    out[name] = await Promise.all(ts.map((x) => x.data()));
  }
  return out;
}

describe('fusion: whole programs against the unfused CPU oracle', function () {
  this.timeout(120000);
  const runs = {};
  before(async () => {
    await sn.init({ backend: 'cpu', fuse: false });
    runs.oracle = await runPrograms();
    for (const backend of ['cpu', 'wasm', 'webgpu']) {
      await sn.init({ backend });
      runs[backend] = await runPrograms();
    }
  });
  for (const [name] of PROGRAMS) for (const backend of ['cpu', 'wasm', 'webgpu']) {
    it(`${name} (${backend})`, () => {
      const got = runs[backend][name];
      const want = runs.oracle[name];
      expect(got.length).to.equal(want.length);
      got.forEach((g, i) => expectClose(Array.from(g), Array.from(want[i]), { atol: 1e-4, rtol: 1e-4, label: `${name} [${i}]` }));
    });
  }
});

describe('fit plans read each batch\'s rows where they are in the data', function () {
  this.timeout(180000);
  const stepPlans = (on) => sn._runtime().call((e) => e._stepPlans(on));
  /** A fresh model's weights and history after fit, with step plans on or off. */
  const train = async (plans, make, x, y, opts) => {
    await stepPlans(plans);
    sn.manualSeed(4);
    const model = make();
    const history = await model.fit(x, y, opts);
    await stepPlans(true);
    return { history: history.history, weights: await Promise.all(model.getWeights().map((w) => w.data())) };
  };
  const rng = mulberry32(23);
  const n = 53;
  const features = randomData(rng, n * 37);
  const labels = Float32Array.from({ length: n }, () => Math.floor(rng() * 11));
  const CASES = [
    ['sparse labels [N]', () => sn.tensor(labels, [n]), 'sparse_categorical_crossentropy'],
    ['sparse labels [N, 1]', () => sn.tensor(labels, [n, 1]), 'sparse_categorical_crossentropy'],
    ['one-hot labels', () => sn.tensor(Float32Array.from({ length: n * 11 }, (_, i) => +(labels[Math.floor(i / 11)] === i % 11)), [n, 11]), 'categorical_crossentropy'],
  ];
  for (const backend of ['webgpu', 'wasm', 'cpu']) {
    for (const [name, makeY, loss] of CASES) {
      it(`${name}, shuffled and not, a remainder batch, validation: the same as op by op (${backend})`, async () => {
        await sn.init({ backend });
        const x = sn.tensor(features, [n, 37]);
        const y = makeY();
        const make = () => {
          const m = sn.sequential([sn.layers.dense({ units: 29, activation: 'relu', inputShape: [37] }), sn.layers.dense({ units: 11, activation: 'softmax' })]);
          m.compile({ optimizer: 'adam', loss, metrics: ['accuracy'] });
          return m;
        };
        for (const shuffle of [false, true]) {
          const opts = { epochs: 3, batchSize: 8, validationSplit: 0.2, shuffle };
          const off = await train(false, make, x, y, opts);
          const on = await train(true, make, x, y, opts);
          expect(on.history).to.deep.equal(off.history);
          on.weights.forEach((w, i) => expect(Array.from(w), `weight ${i}`).to.deep.equal(Array.from(off.weights[i])));
        }
      });
    }
  }
});

describe('bias gradients inside the weight-gradient GEMM', function () {
  this.timeout(180000);
  const F = sn.nn.functional;
  // Each case: a Linear layer's forward, a loss weighting every output, and the gradients.
  const CASES = [
    ['37x53 -> 29, relu fused (the gradient a prologue of the GEMM), input gradient too', (rng) => {
      const x = t(rng, [37, 53]).requiresGrad_(), w = t(rng, [29, 53]).requiresGrad_(), b = t(rng, [29]).requiresGrad_();
      F.linear(x, w, b, { activation: 'relu' }).mul(t(rng, [37, 29])).sum().backward();
      return [x.grad, w.grad, b.grad];
    }],
    ['batch 1, tanh (pre-activation recomputed), weight [in, out] as Keras holds it', (rng) => {
      const x = t(rng, [1, 53]), k = t(rng, [53, 29]).requiresGrad_(), b = t(rng, [29]).requiresGrad_();
      F.linear(x, k.T, b, { activation: 'tanh' }).mul(t(rng, [1, 29])).sum().backward();
      return [k.grad, b.grad];
    }],
    ['3-D input (rows folded), a gradient read through a transpose, no activation', (rng) => {
      const x = t(rng, [3, 7, 53]), w = t(rng, [61, 53]).requiresGrad_(), b = t(rng, [61]).requiresGrad_();
      F.linear(x, w, b).transpose(1, 2).mul(t(rng, [3, 61, 7])).sum().backward();
      return [w.grad, b.grad];
    }],
    ['the output gradient a computed buffer read transposed (a strided operand)', (rng) => {
      const x = t(rng, [37, 53]), w = t(rng, [29, 53]).requiresGrad_(), b = t(rng, [29]).requiresGrad_();
      F.linear(x, w, b).T.matmul(t(rng, [37, 5])).mul(t(rng, [29, 5])).sum().backward();
      return [w.grad, b.grad];
    }],
    ['bias-less, and a bias whose weight is frozen', (rng) => {
      const x = t(rng, [37, 53]), w = t(rng, [29, 53]).requiresGrad_(), v = t(rng, [29, 53]), b = t(rng, [29]).requiresGrad_();
      F.linear(x, w).add(F.linear(x, v, b)).square().sum().backward();
      return [w.grad, b.grad];
    }],
    ['a seed-MLP step shape: 128 rows, 784 -> 128 -> 10 with cross-entropy', (rng) => {
      const net = new sn.nn.Sequential(new sn.nn.Linear(784, 128), new sn.nn.ReLU(), new sn.nn.Linear(128, 10));
      const labels = sn.tensor(Int32Array.from({ length: 128 }, (_, i) => (i * 7) % 10), [128], { dtype: 'int32' });
      new sn.nn.CrossEntropyLoss().forward(net.forward(t(rng, [128, 784])), labels).backward();
      return net.parameters().map((p) => p.grad);
    }],
  ];
  const runCases = async () => {
    const out = [];
    for (const [name, fn] of CASES) {
      sn.manualSeed(5);
      const ts = fn(mulberry32([...name].reduce((h, ch) => (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0, 11)));
      out.push(await Promise.all(ts.map((g) => g.data())));
    }
    return out;
  };
  const runs = {};
  const SETUPS = [['cpu'], ['wasm'], ['webgpu', 'direct'], ['webgpu', 'workgroup']];
  before(async () => {
    await sn.init({ backend: 'cpu', fuse: false });
    runs.oracle = await runCases();
    for (const [backend, kernels] of SETUPS) {
      await sn.init({ backend, ...(kernels ? { kernels } : {}) });
      runs[`${backend} ${kernels ?? ''}`] = await runCases();
    }
  });
  CASES.forEach(([name], c) => SETUPS.forEach(([backend, kernels]) => {
    it(`${name} (${backend} ${kernels ?? ''})`, () => {
      const got = runs[`${backend} ${kernels ?? ''}`][c];
      runs.oracle[c].forEach((want, i) => expectClose(Array.from(got[i]), Array.from(want), { atol: 1e-4, rtol: 1e-4, label: `${name} [${i}]` }));
    });
  }));

  it('finite differences through the fused weight and bias gradients (webgpu)', async () => {
    await sn.init({ backend: 'webgpu' });
    const rng = mulberry32(17);
    await expectFiniteDifferenceGradients(sn, 'linear relu', [[9, 13], [11, 13], [11]], [randomData(rng, 117), randomData(rng, 143), randomData(rng, 11)],
      (x, w, b) => F.linear(x, w, b, { activation: 'relu' }), { rng, eps: 1e-2, probes: 4, tol: 2e-2 });
  });

  it('a Linear layer\'s bias gradient costs no kernel of its own', async () => {
    await sn.init({ backend: 'wasm' });
    const backwardKernels = async (withBias) => {
      const x = sn.randn([37, 53]), w = sn.randn([29, 53], { requiresGrad: true }), b = sn.randn([29], { requiresGrad: true });
      const y = withBias ? F.linear(x, w, b) : F.linear(x, w);
      await y.data();
      // b.grad is not read: reading a grad handle copies it out of the backward's result, a kernel either way.
      return kernelsOf(async () => { y.sum().backward(); await w.grad.data(); });
    };
    expect(await backwardKernels(true)).to.equal(await backwardKernels(false));
  });
});

describe('fusion: kernel counts', function () {
  const chain = () => {
    const a = t(mulberry32(1), [37, 53]);
    const b = t(mulberry32(2), [53]);
    return a.mul(b).add(1).relu().mul(a).sub(b).abs().add(0.5).sqrt().mul(2).neg().sum();
  };
  for (const backend of ['cpu', 'wasm', 'webgpu']) {
    it(`a chain of 10 elementwise ops then a sum runs as at most 2 kernels (${backend})`, async () => {
      await sn.init({ backend: 'cpu', fuse: false });
      const want = await chain().item();
      await sn.init({ backend });
      let got;
      const ran = await kernelsOf(async () => { got = await chain().item(); });
      expect(ran).to.be.at.most(2);
      expectClose([got], [want], { atol: 1e-3, rtol: 1e-5 });
    });
  }
});

/**
 * The fused softmax cross-entropy (2-D scores) against the composed one, which the same call takes
 * for scores [N, C, 1]: losses and gradients, PyTorch's options, 53 rows of 37 classes.
 */
describe('fused softmax cross-entropy and accuracy', function () {
  this.timeout(120000);
  const F = () => sn.nn.functional;
  const N = 53, C = 37;
  const CASES = [
    ['class targets', {}],
    ['class weights', { weight: true }],
    ['ignore_index hits, weights', { weight: true, ignoreIndex: 3 }],
    ['label smoothing, weights, ignore_index', { weight: true, ignoreIndex: 5, labelSmoothing: 0.2 }],
    ['reduction sum', { reduction: 'sum', labelSmoothing: 0.1 }],
    ['reduction none, weights', { reduction: 'none', weight: true, ignoreIndex: 1 }],
    ['reduction none, summed (a constant incoming gradient)', { reduction: 'none', summed: true }],
    ['probability targets, smoothing, weights', { probs: true, weight: true, labelSmoothing: 0.3 }],
    ['probability targets, reduction none', { probs: true, reduction: 'none' }],
  ];
  /** Loss and its input gradient, fused (2-D) or composed (through a trailing dim of 1). */
  async function lossAndGrad(rng, opts, composed) {
    const xd = randomData(rng, N * C);
    const target = opts.probs
      ? sn.tensor(randomData(rng, N * C), [N, C]).softmax(1)
      : sn.tensor(randomData(rng, N, `int:${C}`).map((v, i) => (opts.ignoreIndex !== undefined && i % 4 === 0 ? opts.ignoreIndex : v)), [N], { dtype: 'int32' });
    const weight = opts.weight ? sn.tensor(randomData(rng, C, 'positive'), [C]) : null;
    const x = sn.tensor(xd, [N, C], { requiresGrad: true });
    const o = { weight, reduction: opts.reduction ?? 'mean', labelSmoothing: opts.labelSmoothing ?? 0, ...(opts.ignoreIndex !== undefined ? { ignoreIndex: opts.ignoreIndex } : {}) };
    const loss = composed ? F().crossEntropy(x.unsqueeze(2), target.unsqueeze(opts.probs ? 2 : 1), o).reshape(o.reduction === 'none' ? [N] : []) : F().crossEntropy(x, target, o);
    // A non-constant incoming gradient for 'none', the seed otherwise.
    (o.reduction === 'none' ? (opts.summed ? loss : loss.mul(sn.arange(N).float().mul(0.1))).sum() : loss).backward();
    return [await loss.data(), await x.grad.data()];
  }
  for (const backend of ['cpu', 'wasm', 'webgpu']) {
    for (const [name, opts] of CASES) {
      it(`${name}: loss and gradient equal the composed ones (${backend})`, async () => {
        await sn.init({ backend });
        const [fl, fg] = await lossAndGrad(mulberry32(11), opts, false);
        const [cl, cg] = await lossAndGrad(mulberry32(11), opts, true);
        expectClose(Array.from(fl), Array.from(cl), { atol: 1e-5, rtol: 1e-5, label: 'loss' });
        expectClose(Array.from(fg), Array.from(cg), { atol: 1e-6, rtol: 1e-4, label: 'grad' });
      });
    }
    it(`the gradient matches finite differences (${backend})`, async () => {
      await sn.init({ backend });
      const rng = mulberry32(5);
      const labels = sn.tensor(randomData(rng, 13, 'int:7').map((v, i) => (i === 2 ? -100 : v)), [13], { dtype: 'int32' });
      const weight = sn.tensor(randomData(rng, 7, 'positive'), [7]);
      await expectFiniteDifferenceGradients(sn, 'crossEntropy', [[13, 7]], [randomData(rng, 13 * 7)],
        (x) => F().crossEntropy(x, labels, { weight, labelSmoothing: 0.15 }), { rng, eps: 1e-2, probes: 12, tol: 2e-3 });
    });
    it(`an out-of-range target names the loss (${backend})`, async () => {
      await sn.init({ backend });
      const loss = F().crossEntropy(sn.zeros([2, 3]), sn.tensor([1, 7], [2], { dtype: 'int32' }));
      let err;
      try { await loss.item(); } catch (e) { err = e; }
      expect(err?.message).to.match(/^crossEntropy: target 7 is out of range for 3 classes/);
    });
    it(`Keras cross-entropies and accuracy from a softmax layer's logits equal their formulas (${backend})`, async () => {
      await sn.init({ backend });
      const rng = mulberry32(9);
      const model = sn.sequential([sn.layers.dense({ units: C, activation: 'softmax', inputShape: [11] })]);
      const xs = sn.tensor(randomData(rng, N * 11), [N, 11]);
      const logits = xs.matmul(model.layers[0].getWeights()[0]).add(model.layers[0].getWeights()[1]);
      // Every other label is the predicted class, so accuracy is neither 0 nor 1.
      const top = await logits.argmax(-1).data();
      const idx = randomData(rng, N, `int:${C}`).map((c, i) => (i % 2 ? top[i] : c));
      const oneHot = new Float32Array(N * C);
      idx.forEach((c, i) => { oneHot[i * C + c] = 1; });
      const y = sn.tensor(oneHot, [N, C]);
      const wantLoss = await logits.logSoftmax(-1).mul(y).sum(-1).mean().neg().item();
      const wantAcc = await logits.softmax(-1).argmax(-1).eq(sn.tensor(idx, [N], { dtype: 'int32' })).float().mean().item();
      expect(wantAcc).to.be.above(0.4);
      const sparse = [sn.tensor(Float32Array.from(idx), [N, 1]), sn.tensor(Float32Array.from(idx), [N]), sn.tensor(idx, [N], { dtype: 'int32' })];
      for (const [loss, labels] of [['categoricalCrossentropy', y], ...sparse.map((l) => ['sparseCategoricalCrossentropy', l])]) {
        model.compile({ optimizer: 'sgd', loss, metrics: ['accuracy'] });
        const got = await model.evaluate(xs, labels);
        expectClose([got.loss, got.accuracy], [wantLoss, wantAcc], { atol: 1e-5, rtol: 1e-5, label: `${loss} ${labels.dtype} ${labels.shape}` });
      }
    });
  }
});
