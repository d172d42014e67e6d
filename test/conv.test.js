// The conv2d op and its kernels (forward, grad input, grad weight): PyTorch
// 1.13 fixtures on every backend (test/fixtures/make_conv.py), WebGPU and
// wasm against the CPU oracle on odd sizes in both layouts (NCHW for sn.nn,
// NHWC with Keras's kernel for sn.layers), finite differences for the
// backward rules, and clear errors for bad arguments.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, expectFiniteDifferenceGradients, mulberry32, randomData, sizeOf } from './util.js';

const fixtures = await (await fetch(new URL('./fixtures/conv.json', import.meta.url))).json();
const T = (t, opts = {}) => sn.tensor(t.data, t.shape, opts);
const TOL = { atol: 2e-5, rtol: 1e-4 };

// 'webgpu' runs the direct kernels this software adapter gets, 'webgpu:workgroup' the tiled ones GPUs get.
for (const backend of ['webgpu', 'webgpu:workgroup', 'wasm', 'cpu']) {
  describe(`conv2d against PyTorch (${backend})`, () => {
    before(() => initBackend(backend));
    for (const c of fixtures.cases) {
      it(c.name, async () => {
        const x = T(c.input, { requiresGrad: true });
        const w = T(c.weight, { requiresGrad: true });
        const b = c.bias ? T(c.bias, { requiresGrad: true }) : null;
        const y = sn.nn.functional.conv2d(x, w, b, c.options);
        expect(y.shape).to.deep.equal(c.output.shape);
        y.mul(T(c.gradWeight)).sum().backward();
        expectClose(await y.data(), c.output.data, { ...TOL, label: 'output' });
        expectClose(await x.grad.data(), c.inputGrad.data, { ...TOL, label: 'input grad' });
        expectClose(await w.grad.data(), c.weightGrad.data, { ...TOL, label: 'weight grad' });
        if (b) expectClose(await b.grad.data(), c.biasGrad.data, { ...TOL, label: 'bias grad' });
      });
    }
  });
}

/** Initialises a backend named as 'webgpu:workgroup' (kind, then kernel variant). */
const initBackend = (backend) => {
  const [kind, kernels] = backend.split(':');
  return sn.init({ backend: kind, ...(kernels && { kernels }) });
};

/** The named tensors `fn(rng)` returns, read. */
async function readAll(fn) {
  const out = fn(mulberry32(7));
  return Object.fromEntries(await Promise.all(Object.entries(out).map(async ([k, t]) => [k, { shape: t.shape, data: await t.data() }])));
}

function expectSame(name, backend, got, ref) {
  for (const [k, r] of Object.entries(ref)) {
    expect(got[k].shape, `${name} ${k} shape (${backend})`).to.deep.equal(r.shape);
    expectClose(got[k].data, r.data, { atol: 1e-4, rtol: 1e-4, label: `${name} ${k} (${backend} vs cpu)` });
  }
}

/** Runs `fn(rng)` (which returns named tensors to read) on each backend and compares every result with the CPU's. */
async function againstOracle(name, fn, backends = ['webgpu', 'wasm']) {
  const results = {};
  for (const backend of ['cpu', ...backends]) {
    await initBackend(backend);
    results[backend] = await readAll(fn);
  }
  for (const backend of backends) expectSame(name, backend, results[backend], results.cpu);
}

/** A random tensor that requires grad. */
const param = (rng, shape) => sn.tensor(randomData(rng, sizeOf(shape)), shape, { requiresGrad: true });

// [name, input [N, C, H, W], weight [O, C/groups, kH, kW], options, bias]: edges of every 4x4 and 8x8 thread block
// (channels and widths that are not multiples of 4), strides that skip pixels, groups.
const NCHW_CASES = [
  ['37x53, 3 -> 7 channels, 3x3, padding 1', [2, 3, 37, 53], [7, 3, 3, 3], { padding: 1 }, true],
  ['5x7, stride 2, padding 1, dilation [2, 1]', [3, 3, 5, 7], [5, 3, 3, 2], { stride: 2, padding: 1, dilation: [2, 1] }, true],
  ['stride [3, 2], kernel larger than the stride, no bias', [2, 6, 11, 9], [9, 6, 4, 3], { stride: [3, 2] }, false],
  ['groups 3, 6 -> 9 channels', [2, 6, 8, 10], [9, 2, 3, 3], { groups: 3, padding: [0, 2] }, true],
  ['depthwise, 5 channels, stride 2', [1, 5, 9, 13], [5, 1, 3, 3], { groups: 5, stride: 2, padding: 1 }, true],
  ['13x11, 3 -> 5 channels, stride 2, padding 1, dilation 2', [1, 3, 13, 11], [5, 3, 3, 3], { stride: 2, padding: 1, dilation: 2 }, true],
  // Over 64 output channels and 64 sums per grad-weight element: several 64x64 tiles and K panels.
  ['70 output channels, batch 3 (several tiles each way)', [3, 4, 9, 10], [70, 4, 3, 3], { padding: 1 }, true],
  // GEMMs of at least 64 8x8 blocks in every mode run the direct kernels' 8x8 thread blocks (codegen.ts convBlock).
  ['8x8 thread blocks in every mode: 70 channels, stride [2, 1], dilation [1, 2], padding 1', [2, 8, 19, 17], [70, 8, 3, 3], { stride: [2, 1], dilation: [1, 2], padding: 1 }, true],
  ['8x8 thread blocks in every mode, groups 2, 8 -> 130 channels', [2, 8, 19, 17], [130, 4, 3, 3], { groups: 2 }, true],
  // A 3 x 18 grad weight over 3 x 50 rows: on WebGPU its sum is cut into chunks added after.
  ['few output tiles, 3 x 50 rows (grad weight in chunks on WebGPU)', [3, 2, 52, 7], [3, 2, 3, 3], {}, true],
];

/** An NCHW case's output and gradients. */
const nchwCase = ([, xs, ws, options, bias]) => (rng) => {
  const x = param(rng, xs);
  const w = param(rng, ws);
  const b = bias ? param(rng, [ws[0]]) : null;
  const y = sn.nn.functional.conv2d(x, w, b, options);
  y.mul(sn.tensor(randomData(rng, y.size), y.shape)).sum().backward();
  return { y, gx: x.grad, gw: w.grad, ...(b && { gb: b.grad }) };
};

describe('conv2d kernels against the CPU oracle (NCHW)', () => {
  for (const c of NCHW_CASES) it(c[0], () => againstOracle(c[0], nchwCase(c)));
});

// [name, input [N, H, W, C], Keras conv2d args]: the kernel reads NHWC and the [kH, kW, in, out] kernel in place.
const NHWC_CASES = [
  ["'same', stride 2 (the extra row and column after), relu in the store", [2, 9, 7, 3], { filters: 6, kernelSize: [3, 4], strides: 2, padding: 'same', activation: 'relu' }],
  ['valid, dilation 2, tanh in the store', [1, 11, 10, 5], { filters: 4, kernelSize: 3, dilationRate: 2, activation: 'tanh' }],
  ['sigmoid in the store, no bias', [3, 6, 6, 2], { filters: 5, kernelSize: 2, useBias: false, activation: 'sigmoid' }],
  ['gelu after the kernel', [2, 5, 8, 4], { filters: 3, kernelSize: [2, 3], padding: 'same', activation: 'gelu' }],
  ['1 -> 4 channels over 4 x 40 rows (grad weight in chunks on WebGPU)', [4, 40, 9, 1], { filters: 4, kernelSize: 3, activation: 'relu' }],
];

/** A built Keras conv2d layer with random weights and its output and grads for input x. */
function kerasConv(rng, xs, args) {
  const layer = sn.layers.conv2d(args);
  const x = param(rng, xs);
  layer.apply(x);
  layer.setWeights(layer.getWeights().map((w) => randomData(rng, w.size)));
  const y = layer.apply(x);
  y.mul(sn.tensor(randomData(rng, y.size), y.shape)).sum().backward();
  return { layer, x, y };
}

/** An NHWC case's output and gradients. */
const nhwcCase = ([, xs, args]) => (rng) => {
  const { layer, x, y } = kerasConv(rng, xs, args);
  return { y, gx: x.grad, gk: layer.kernel.grad, ...(layer.bias && { gb: layer.bias.grad }) };
};

describe('Keras conv2d (NHWC) kernels', () => {
  for (const c of NHWC_CASES) it(`${c[0]}: WebGPU and wasm against the CPU oracle`, () => againstOracle(c[0], nhwcCase(c)));

  it('equals the NCHW convolution of the permuted input and kernel, with the same padding, forward and backward', async () => {
    await sn.init({ backend: 'cpu' });
    const rng = mulberry32(5);
    const { layer, x, y } = kerasConv(rng, [2, 9, 7, 3], { filters: 6, kernelSize: [3, 4], strides: 2, padding: 'same', activation: 'relu' });
    // Keras 'same' at stride 2 on 9x7 with a 3x4 kernel pads [1, 1] rows and [1, 2] columns.
    const xr = x.detach().permute(0, 3, 1, 2).requiresGrad_();
    const k = layer.kernel.detach().permute(3, 2, 0, 1).requiresGrad_();
    const ref = sn.nn.functional.conv2d(sn.nn.functional.pad(xr, [1, 2, 1, 1]), k, layer.bias.detach(), { stride: 2 }).relu().permute(0, 2, 3, 1);
    expect(ref.shape).to.deep.equal(y.shape);
    expectClose(await y.data(), await ref.data(), { atol: 1e-5, rtol: 1e-5, label: 'NHWC vs NCHW output' });
  });
});

// The tiled kernels GPUs get, on this software adapter: one engine for every case, since
// SwiftShader takes seconds to compile each of their pipelines.
describe('conv2d tiled (workgroup) kernels against the CPU oracle, both layouts', function () {
  const cases = [...NCHW_CASES.map((c) => [c[0], nchwCase(c)]), ...NHWC_CASES.map((c) => [c[0], nhwcCase(c)])];
  const results = { cpu: {}, gpu: {} };
  before(async () => {
    for (const [backend, into] of [['cpu', results.cpu], ['webgpu:workgroup', results.gpu]]) {
      await initBackend(backend);
      for (const [name, fn] of cases) into[name] = await readAll(fn);
    }
  });
  for (const [name] of cases) it(name, () => expectSame(name, 'webgpu:workgroup', results.gpu[name], results.cpu[name]));
});

// [name, input shapes, fn(...tensors)]: random normal inputs (conv is bilinear, so no kinks to avoid).
const FD_CASES = [
  ['grouped, stride 2, padding 1, dilation [1, 2]', [[2, 4, 7, 8], [6, 2, 3, 2], [6]],
    (x, w, b) => sn.nn.functional.conv2d(x, w, b, { stride: 2, padding: 1, dilation: [1, 2], groups: 2 })],
  ['stride 3 (pixels no window reads get zero gradient)', [[1, 2, 8, 7], [3, 2, 2, 2]], (x, w) => sn.nn.functional.conv2d(x, w, null, { stride: 3 })],
];

describe('conv2d backward against finite differences (cpu)', () => {
  before(() => sn.init({ backend: 'cpu' }));
  const EPS = 1e-2;
  const PROBES = 10;
  for (const [name, shapes, fn] of FD_CASES) {
    it(name, async () => {
      const rng = mulberry32(name.length);
      const datas = shapes.map((s) => randomData(rng, sizeOf(s)));
      await expectFiniteDifferenceGradients(sn, name, shapes, datas, fn, { rng, eps: EPS, probes: PROBES, tol: 1e-2 });
    });
  }
});

describe('conv2d: bad arguments', () => {
  before(() => sn.init({ backend: 'cpu' }));
  it('names both shapes when channels and groups do not fit, and refuses int32 input', () => {
    const F = sn.nn.functional;
    expect(() => F.conv2d(sn.zeros([1, 4, 5, 5]), sn.zeros([3, 3, 3, 3]), null, { groups: 2 })).to.throw(sn.ShapeError, /\[1, 4, 5, 5\].*\[3, 3, 3, 3\].*groups=2/);
    expect(() => F.conv2d(sn.zeros([1, 4, 5, 5]), sn.zeros([3, 2, 3, 3]), null, { groups: 2 })).to.throw(sn.ShapeError, /do not fit with groups=2/);
    expect(() => F.conv2d(sn.zeros([1, 2, 5, 5]), sn.zeros([3, 2, 3, 3]), sn.zeros([4]))).to.throw(sn.ShapeError, /bias \[4\] must be \[3\]/);
    expect(() => F.conv2d(sn.zeros([1, 2, 5, 5], { dtype: 'int32' }), sn.zeros([3, 2, 3, 3]))).to.throw(sn.ShapeError, /float32/);
    expect(() => F.conv2d(sn.zeros([1, 2, 5, 5]), sn.zeros([3, 2, 3, 3]), null, { groups: 1.5 })).to.throw(RangeError, /groups must be a positive integer/);
    expect(() => new sn.nn.Conv2d(4, 6, 3, { groups: 4 })).to.throw(RangeError, /multiples of groups=4/);
    expect(new sn.nn.Conv2d(4, 8, 3, { groups: 4 }).weight.shape).to.deep.equal([8, 1, 3, 3]);
  });
});
