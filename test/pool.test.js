// The pool2d op (max and average pooling, one kernel each way): PyTorch 1.13
// fixtures on every backend (test/fixtures/make_pool.py: ties go to the first
// max, -Infinity padding, ceil_mode, dilation, count_include_pad), WebGPU and
// wasm against the CPU oracle on odd sizes in both layouts (NCHW for sn.nn,
// NHWC for sn.layers), finite differences for the backward, and errors.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, expectFiniteDifferenceGradients, mulberry32, randomData, sizeOf } from './util.js';

const fixtures = await (await fetch(new URL('./fixtures/pool.json', import.meta.url))).json();
const T = (t, opts = {}) => sn.tensor(t.data, t.shape, opts);
const TOL = { atol: 1e-5, rtol: 1e-5 };
const F = sn.nn.functional;
const pool = (op, x, kernel, options) => (op === 'max' ? F.maxPool2d(x, kernel, options) : F.avgPool2d(x, kernel, options));

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`pool2d against PyTorch (${backend})`, () => {
    before(() => sn.init({ backend }));
    for (const c of fixtures.cases) {
      it(c.name, async () => {
        const x = T(c.input, { requiresGrad: true });
        const y = pool(c.op, x, c.kernel, c.options);
        expect(y.shape).to.deep.equal(c.output.shape);
        y.mul(T(c.gradOutput)).sum().backward();
        expectClose(await y.data(), c.output.data, { ...TOL, label: 'output' });
        expectClose(await x.grad.data(), c.inputGrad.data, { ...TOL, label: 'input grad' });
      });
    }
  });
}

/** The named tensors `fn(rng)` returns, read. */
async function readAll(fn) {
  const out = fn(mulberry32(3));
  return Object.fromEntries(await Promise.all(Object.entries(out).map(async ([k, t]) => [k, { shape: t.shape, data: await t.data() }])));
}

/** Runs `fn(rng)` on each backend and compares every result with the CPU's. */
async function againstOracle(name, fn) {
  await sn.init({ backend: 'cpu' });
  const ref = await readAll(fn);
  for (const backend of ['webgpu', 'wasm']) {
    await sn.init({ backend });
    const got = await readAll(fn);
    for (const [k, r] of Object.entries(ref)) {
      expect(got[k].shape, `${name} ${k} shape (${backend})`).to.deep.equal(r.shape);
      expectClose(got[k].data, r.data, { atol: 1e-5, rtol: 1e-5, label: `${name} ${k} (${backend} vs cpu)` });
    }
  }
}

const param = (rng, shape) => sn.tensor(randomData(rng, sizeOf(shape)), shape, { requiresGrad: true });

/** y = fn(x) and x's gradient of sum(y * random). */
const withGrad = (xs, fn) => (rng) => {
  const x = param(rng, xs);
  const y = fn(x);
  y.mul(sn.tensor(randomData(rng, y.size), y.shape)).sum().backward();
  return { y, gx: x.grad };
};

// Odd sizes: batch 3, 5 channels, 37x53 images, windows that overhang the edges.
const ORACLE_CASES = [
  ['max 3x3 stride 2 padding 1, [3, 5, 37, 53]', [3, 5, 37, 53], (x) => F.maxPool2d(x, 3, { stride: 2, padding: 1 })],
  ['max 2x2 ceil_mode, [3, 5, 37, 53]', [3, 5, 37, 53], (x) => F.maxPool2d(x, 2, { ceilMode: true })],
  ['avg [3, 2] stride [2, 3] padding 1 count_include_pad false, ceil_mode, [3, 5, 37, 53]', [3, 5, 37, 53], (x) => F.avgPool2d(x, [3, 2], { stride: [2, 3], padding: 1, countIncludePad: false, ceilMode: true })],
  ['max of a strided input (a channel slice, transposed), dilation 2', [2, 6, 13, 11], (x) => F.maxPool2d(x.slice(1, 1, 5).transpose(2, 3), [3, 2], { stride: 1, dilation: 2 })],
  ['max 2x2 dilation 2 stride 3 padding 1 (windows with gaps, gaps between windows)', [3, 5, 37, 53], (x) => F.maxPool2d(x, 2, { stride: 3, dilation: 2, padding: 1 })],
  ['avg 2x2 stride 3 padding 1 (pixels no window covers)', [3, 5, 37, 53], (x) => F.avgPool2d(x, 2, { stride: 3, padding: 1 })],
  ['avg over [2, 3, 2, 9, 7] (leading dims folded)', [2, 3, 2, 9, 7], (x) => F.avgPool2d(x, 2, { padding: 1 })],
];

describe('pool2d kernels against the CPU oracle (NCHW)', () => {
  for (const [name, xs, fn] of ORACLE_CASES) it(name, () => againstOracle(name, withGrad(xs, fn)));
});

/** A Keras pooling layer over NHWC x. */
const keras = (kind, args, xs) => (rng) => {
  const layer = sn.layers[kind](args);
  const x = param(rng, xs);
  const y = layer.apply(x);
  y.mul(sn.tensor(randomData(rng, y.size), y.shape)).sum().backward();
  return { y, gx: x.grad };
};

describe('pool2d kernels against the CPU oracle (NHWC, Keras layers)', () => {
  it("maxPooling2d [2, 3] strides 2 'same', [3, 37, 53, 5]", () => againstOracle('max same', keras('maxPooling2d', { poolSize: [2, 3], strides: 2, padding: 'same' }, [3, 37, 53, 5])));
  it("averagePooling2d 3 strides 2 'same' (the real pixels count), [3, 37, 53, 5]", () => againstOracle('avg same', keras('averagePooling2d', { poolSize: 3, strides: 2, padding: 'same' }, [3, 37, 53, 5])));

  it('NHWC pooling equals NCHW pooling of the permuted input, forward and backward', async () => {
    await sn.init({ backend: 'webgpu' });
    const rng = mulberry32(8);
    const data = randomData(rng, 3 * 9 * 7 * 5);
    const g = randomData(rng, 3 * 4 * 3 * 5);
    for (const [kind, fn] of [['maxPooling2d', F.maxPool2d], ['averagePooling2d', F.avgPool2d]]) {
      const x = sn.tensor(data, [3, 9, 7, 5], { requiresGrad: true });
      const y = sn.layers[kind]({ poolSize: 2 }).apply(x);
      y.mul(sn.tensor(g, y.shape)).sum().backward();
      const xr = sn.tensor(data, [3, 9, 7, 5]).permute(0, 3, 1, 2).requiresGrad_();
      const ref = fn(xr, 2).permute(0, 2, 3, 1);
      ref.mul(sn.tensor(g, ref.shape)).sum().backward();
      expect(y.shape).to.deep.equal([3, 4, 3, 5]);
      expectClose(await y.data(), await ref.data(), { atol: 1e-6, label: `${kind} output` });
      expectClose(await x.grad.data(), await xr.grad.permute(0, 2, 3, 1).data(), { atol: 1e-6, label: `${kind} input grad` });
    }
  });
});

describe('pool2d: one kernel each way', () => {
  for (const backend of ['webgpu', 'wasm', 'cpu']) {
    it(`max and avg: 1 kernel forward, 1 backward (${backend})`, async () => {
      await sn.init({ backend });
      const x = sn.tensor(randomData(mulberry32(1), 2 * 3 * 8 * 8), [2, 3, 8, 8], { requiresGrad: true });
      const kernels = async () => (await sn.memory()).kernels;
      /** Kernels that s.backward() runs until x's gradient is read. */
      const backwardKernels = async (s) => {
        await s.data();
        const k = await kernels();
        x.grad = null;
        s.backward();
        await x.grad.data();
        return (await kernels()) - k;
      };
      // What the sum's backward costs on its own (its gradient reaching x).
      const base = await backwardKernels(x.sum());
      for (const op of ['max', 'avg']) {
        await x.data();
        const k0 = await kernels();
        const y = pool(op, x, 2, {});
        await y.data();
        expect((await kernels()) - k0, `${op} forward kernels`).to.equal(1);
        // One pool kernel, plus the sum's lazy gradient computed into memory for it to read (alone it fuses into x's gradient).
        expect(await backwardKernels(y.sum()), `${op} backward kernels`).to.equal(base + 2);
      }
    });
  }
});

// [name, input shape, fn]: inputs are distinct so no window's max is tied (max has kinks at ties).
const FD_CASES = [
  ['max 3x3 stride 2 padding 1, ceil_mode', [1, 2, 6, 7], (x) => F.maxPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true })],
  ['avg [2, 3] stride 2 padding 1, count_include_pad false, ceil_mode', [2, 1, 5, 8], (x) => F.avgPool2d(x, [2, 3], { stride: 2, padding: 1, countIncludePad: false, ceilMode: true })],
];

function distinct(rng, n) {
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return Float32Array.from(v);
}

describe('pool2d backward against finite differences (cpu)', () => {
  before(() => sn.init({ backend: 'cpu' }));
  for (const [name, shape, fn] of FD_CASES) {
    it(name, async () => {
      const rng = mulberry32(name.length);
      await expectFiniteDifferenceGradients(sn, name, [shape], [distinct(rng, sizeOf(shape))], fn, { rng, eps: 1e-2, probes: 10, tol: 1e-2 });
    });
  }
});

describe('pool2d: bad arguments', () => {
  before(() => sn.init({ backend: 'cpu' }));
  it('names the shapes when the window does not fit, and refuses int32 input', () => {
    expect(() => F.maxPool2d(sn.zeros([1, 1, 2, 5]), 3)).to.throw(sn.ShapeError, /\[3, 3\].*\[1, 1, 2, 5\]/);
    expect(() => F.avgPool2d(sn.zeros([1, 1, 4, 4], { dtype: 'int32' }), 2)).to.throw(sn.ShapeError, /float32/);
    expect(() => F.maxPool2d(sn.zeros([4]), 2)).to.throw(sn.ShapeError, /\[\.\.\., H, W\]/);
    expect(() => F.maxPool2d(sn.zeros([1, 1, 4, 4]), 2, { padding: 2 })).to.throw(RangeError, /half the kernel/);
  });
});
