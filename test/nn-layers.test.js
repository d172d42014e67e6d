// sn.nn layers: PyTorch 1.13 fixtures (outputs, input and parameter grads,
// state after a training step) on both backends; finite differences for the
// backward of conv, pooling and normalization; WebGPU against the CPU oracle;
// dropout, state dict layout, repr and default init.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, expectFiniteDifferenceGradients, mulberry32, randomData, sizeOf } from './util.js';

const fixtures = await (await fetch(new URL('./fixtures/torch.json', import.meta.url))).json();
const LAYER_CASES = [
  'Linear', 'Conv2d.stride2.pad1', 'Conv2d.kernel2x3', 'MaxPool2d.k2', 'MaxPool2d.k3.s2.p1', 'LayerNorm',
  'BatchNorm1d.train', 'BatchNorm1d.eval', 'Embedding.paddingIdx0', 'GELU', 'GELU.tanh',
  'Softmax.dim1', 'Softmax.dim1.3d', 'LogSoftmax.dim1', 'LogSoftmax.dim1.3d',
].map((name) => fixtures.layers[name]);

/** A fixture tensor {shape, dtype, data} as a shadenet tensor. */
const T = (t, opts = {}) => sn.tensor(t.data, t.shape, { dtype: t.dtype, ...opts });
const TOL = { atol: 1e-5, rtol: 1e-4 };

/** The module a fixture describes: PyTorch's positional args, then the options (Softmax's dim is positional here). */
function build(c) {
  if (c.module === 'Softmax' || c.module === 'LogSoftmax') return new sn.nn[c.module](c.options.dim);
  return new sn.nn[c.module](...c.args, c.options);
}

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`layers against PyTorch (${backend})`, () => {
    before(() => sn.init({ backend }));

    for (const c of LAYER_CASES) {
      it(c.name, async () => {
        const m = build(c);
        m.loadStateDict(Object.fromEntries(Object.entries(c.stateDict).map(([k, t]) => [k, T(t)])));
        m.train(c.training);
        const isInt = c.input.dtype === 'int32';
        const x = T(c.input, { requiresGrad: !isInt });
        const out = m.forward(x);
        expect(out.shape).to.deep.equal(c.outputs.output.shape);
        out.mul(T(c.gradWeight)).sum().backward();
        expectClose(await out.data(), c.outputs.output.data, { ...TOL, label: `${c.name} output` });
        if (!isInt) expectClose(await x.grad.data(), c.inputGrad.data, { ...TOL, label: `${c.name} inputGrad` });
        const params = m.namedParameters();
        expect(params.map(([k]) => k)).to.deep.equal(Object.keys(c.paramGrads));
        for (const [k, p] of params) expectClose(await p.grad.data(), c.paramGrads[k].data, { ...TOL, label: `${c.name} grad ${k}` });
        const after = c.stateDictAfter ?? c.stateDict;
        const sd = m.stateDict();
        expect(Object.keys(sd)).to.deep.equal(Object.keys(after));
        for (const [k, t] of Object.entries(after)) {
          expect(sd[k].dtype, `${k} dtype`).to.equal(t.dtype);
          expectClose(await sd[k].data(), t.data, { ...TOL, label: `${c.name} state ${k}` });
        }
      });
    }
  });
}

// ---- finite differences ----------------------------------------------------------

/** Values spaced at least 0.05 apart, shuffled: a 1e-2 nudge never changes which element is a window's max. */
function distinct(rng, n) {
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return Float32Array.from(v);
}

// [name, input shapes, fn(...tensors)]; inputs are random normal unless the case says 'distinct'.
const FD_CASES = [
  ['conv2d stride 2, padding 1, dilation 1x2', [[2, 2, 5, 6], [3, 2, 3, 2], [3]],
    (x, w, b) => sn.nn.functional.conv2d(x, w, b, { stride: 2, padding: 1, dilation: [1, 2] })],
  ["conv2d padding 'same', even kernel, unbatched", [[2, 4, 5], [2, 2, 2, 2]], (x, w) => sn.nn.functional.conv2d(x, w, null, { padding: 'same' })],
  ['maxPool2d kernel 3, stride 2, padding 1 (overlapping)', [[1, 2, 5, 7]], (x) => sn.nn.functional.maxPool2d(x, 3, { stride: 2, padding: 1 }), 'distinct'],
  ['maxPool2d kernel [2, 3], stride 1, dilation 2', [[1, 1, 5, 6]], (x) => sn.nn.functional.maxPool2d(x, [2, 3], { stride: 1, dilation: 2 }), 'distinct'],
  ['layerNorm over [2, 3] with weight and bias', [[4, 2, 3], [2, 3], [2, 3]], (x, w, b) => sn.nn.functional.layerNorm(x, [2, 3], w, b)],
  ['batchNorm training [N, C, L]', [[4, 3, 5], [3], [3]], (x, w, b) => sn.nn.functional.batchNorm(x, null, null, w, b, { training: true })],
  ['batchNorm training [N, C] with running stats', [[6, 3]], (x) => sn.nn.functional.batchNorm(x, sn.zeros([3]), sn.ones([3]), null, null, { training: true })],
  ['gelu tanh', [[5, 7]], (x) => sn.nn.functional.gelu(x, { approximate: 'tanh' })],
  ['pad', [[2, 3, 4]], (x) => sn.nn.functional.pad(x, [1, 2, 0, 3], 0.5)],
  ['binaryCrossEntropy (input and target)', [[4, 3], [4, 3]], (p, t) => sn.nn.functional.binaryCrossEntropy(p.sigmoid(), t.sigmoid(), { reduction: 'none' })],
];

const rngFor = (name) => mulberry32([...name].reduce((h, ch) => (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0, 11));

describe('layer backward against finite differences (cpu)', () => {
  before(() => sn.init({ backend: 'cpu' }));
  const EPS = 1e-2;
  const PROBES = 8;

  for (const [name, shapes, fn, kind] of FD_CASES) {
    it(name, async () => {
      const rng = rngFor(name);
      const datas = shapes.map((s, i) => (kind === 'distinct' && i === 0 ? distinct(rng, sizeOf(s)) : randomData(rng, sizeOf(s))));
      await expectFiniteDifferenceGradients(sn, name, shapes, datas, fn, { rng, eps: EPS, probes: PROBES, tol: 2e-2 });
    });
  }
});

// ---- WebGPU against the CPU oracle -------------------------------------------------

describe('conv and pooling: WebGPU against the CPU oracle', () => {
  const rng = mulberry32(99);
  const xData = randomData(rng, 2 * 3 * 7 * 9);
  const wData = randomData(rng, 4 * 3 * 3 * 2);
  const bData = randomData(rng, 4);
  const gData = randomData(rng, 2 * 4 * 2 * 6);

  async function run(backend) {
    await sn.init({ backend });
    const x = sn.tensor(xData, [2, 3, 7, 9], { requiresGrad: true });
    const w = sn.tensor(wData, [4, 3, 3, 2], { requiresGrad: true });
    const b = sn.tensor(bData, [4], { requiresGrad: true });
    const y = sn.nn.functional.conv2d(x, w, b, { stride: [2, 1], padding: [1, 2], dilation: [1, 2] });
    const z = sn.nn.functional.maxPool2d(y.relu(), 3, { stride: 2, padding: 1 });
    z.mul(sn.tensor(gData, z.shape)).sum().backward();
    return { shape: z.shape, y: await y.data(), z: await z.data(), gx: await x.grad.data(), gw: await w.grad.data(), gb: await b.grad.data() };
  }

  it('conv2d (N=2, C=3, 7x9, stride [2,1], padding [1,2], dilation [1,2]) then maxPool2d agree, forward and backward', async () => {
    const gpu = await run('webgpu');
    const cpu = await run('cpu');
    expect(gpu.shape).to.deep.equal([2, 4, 2, 6]);
    expect(cpu.shape).to.deep.equal(gpu.shape);
    for (const k of ['y', 'z', 'gx', 'gw', 'gb']) expectClose(gpu[k], cpu[k], { atol: 1e-4, rtol: 1e-4, label: k });
  });
});

// ---- behaviour ---------------------------------------------------------------

describe('Dropout', () => {
  const masks = {};
  for (const backend of ['webgpu', 'wasm', 'cpu']) {
    it(`zeroes about p of the elements and scales the rest in train mode, identity in eval (${backend})`, async () => {
      await sn.init({ backend });
      sn.manualSeed(7);
      const d = new sn.nn.Dropout(0.3);
      const x = sn.full([100, 100], 2, { requiresGrad: true });
      const y = d.forward(x);
      y.sum().backward();
      const out = await y.data();
      const zeros = out.filter((v) => v === 0).length / out.length;
      expect(zeros).to.be.within(0.27, 0.33);
      for (const v of out) if (v !== 0) expect(v).to.be.closeTo(2 / 0.7, 1e-6);
      // The gradient is the same mask and scale.
      expectClose(await x.grad.data(), out.map((v) => v / 2), { label: 'dropout grad' });
      masks[backend] = out;

      d.eval();
      expect(Array.from(await d.forward(x).data())).to.deep.equal(Array.from({ length: 10000 }, () => 2));
      expect(() => new sn.nn.Dropout(1.5)).to.throw(RangeError);
    });
  }

  it('draws the same mask for the same seed, on both backends, and a different one for another seed', async () => {
    expect(Array.from(masks.webgpu)).to.deep.equal(Array.from(masks.cpu));
    const d = new sn.nn.Dropout(0.5);
    const draw = async (seed) => { sn.manualSeed(seed); return Array.from(await d.forward(sn.ones([64])).data()); };
    const a = await draw(3);
    expect(await draw(3)).to.deep.equal(a);
    expect(await draw(4)).to.not.deep.equal(a);
  });
});

describe('nn layers: state, options and repr (cpu)', () => {
  before(() => sn.init({ backend: 'cpu' }));

  it("stateDict keys, shapes and dtypes follow PyTorch's", () => {
    const m = new sn.nn.Sequential(new sn.nn.Embedding(10, 4), new sn.nn.Conv2d(3, 8, [3, 2]), new sn.nn.BatchNorm1d(5), new sn.nn.Conv2d(1, 2, 1, { bias: false }));
    const sd = m.stateDict();
    const layout = Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, [t.shape, t.dtype]]));
    expect(layout).to.deep.equal({
      '0.weight': [[10, 4], 'float32'],
      '1.weight': [[8, 3, 3, 2], 'float32'],
      '1.bias': [[8], 'float32'],
      '2.weight': [[5], 'float32'],
      '2.bias': [[5], 'float32'],
      '2.running_mean': [[5], 'float32'],
      '2.running_var': [[5], 'float32'],
      '2.num_batches_tracked': [[], 'int32'],
      '3.weight': [[2, 1, 1, 1], 'float32'],
    });
    expect(m.parameters().length).to.equal(6);
  });

  it('toString matches PyTorch', () => {
    const m = new sn.nn.Sequential(
      new sn.nn.Conv2d(3, 8, 3, { stride: 2, padding: 1 }), new sn.nn.ReLU(), new sn.nn.MaxPool2d(2),
      new sn.nn.Conv2d(8, 4, [2, 3], { dilation: 2, bias: false }), new sn.nn.Flatten(), new sn.nn.Dropout(0.25),
      new sn.nn.Linear(16, 10), new sn.nn.LayerNorm(10), new sn.nn.GELU({ approximate: 'tanh' }));
    expect(m.toString()).to.equal(`Sequential(
  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
  (1): ReLU()
  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (3): Conv2d(8, 4, kernel_size=(2, 3), stride=(1, 1), dilation=(2, 2), bias=False)
  (4): Flatten(start_dim=1, end_dim=-1)
  (5): Dropout(p=0.25, inplace=False)
  (6): Linear(in_features=16, out_features=10, bias=True)
  (7): LayerNorm((10,), eps=1e-05, elementwise_affine=True)
  (8): GELU(approximate='tanh')
)`);
    const m2 = new sn.nn.Sequential(new sn.nn.Embedding(100, 16, { paddingIdx: 0 }), new sn.nn.BatchNorm1d(16, { momentum: null }),
      new sn.nn.LayerNorm([2, 16], { eps: 1e-3, elementwiseAffine: false }), new sn.nn.Conv2d(1, 1, 4, { padding: 'same' }));
    expect(m2.toString()).to.equal(`Sequential(
  (0): Embedding(100, 16, padding_idx=0)
  (1): BatchNorm1d(16, eps=1e-05, momentum=None, affine=True, track_running_stats=True)
  (2): LayerNorm((2, 16), eps=0.001, elementwise_affine=False)
  (3): Conv2d(1, 1, kernel_size=(4, 4), stride=(1, 1), padding=same)
)`);
  });

  it('default init matches PyTorch (fixtures.init bounds and spread)', async () => {
    for (const name of ['Linear', 'Conv2d', 'Embedding']) {
      const c = fixtures.init[name];
      sn.manualSeed(1);
      const m = new sn.nn[c.module](...c.args, c.options);
      for (const [k, p] of m.namedParameters()) {
        const ref = c.params[k];
        expect(p.shape, `${name}.${k} shape`).to.deep.equal(ref.shape);
        const v = await p.data();
        const mean = v.reduce((s, x) => s + x, 0) / v.length;
        const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1));
        if (ref.bound !== null) for (const x of v) expect(Math.abs(x), `${name}.${k} within bound`).to.be.at.most(ref.bound);
        // Large tensors: PyTorch's spread and (uniform ones) a bound that is filled, within sampling noise.
        if (v.length >= 100) {
          expect(std, `${name}.${k} std`).to.be.closeTo(ref.std, ref.std * 0.1);
          if (ref.bound !== null) expect(Math.max(...v.map(Math.abs)), `${name}.${k} fills the bound`).to.be.above(ref.bound * 0.95);
        }
      }
    }
    const e = new sn.nn.Embedding(6, 3, { paddingIdx: -1 });
    expect(e.paddingIdx).to.equal(5);
    expect(Array.from((await e.weight.data()).slice(15))).to.deep.equal([0, 0, 0]);
  });

  it('Embedding accumulates the gradient of repeated indices and never into paddingIdx', async () => {
    const e = new sn.nn.Embedding(4, 2, { paddingIdx: 3 });
    const out = e.forward(sn.tensor([[1, 3], [1, 2]], undefined, { dtype: 'int32' }));
    expect(out.shape).to.deep.equal([2, 2, 2]);
    out.mul(sn.tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2])).sum().backward();
    expect(Array.from(await e.weight.grad.data())).to.deep.equal([0, 0, 6, 8, 7, 8, 0, 0]);
  });

  it('BatchNorm1d: momentum null keeps a cumulative average; without running stats eval uses the batch', async () => {
    const bn = new sn.nn.BatchNorm1d(2, { momentum: null, affine: false });
    bn.forward(sn.tensor([[1, 2], [3, 6]]));
    bn.forward(sn.tensor([[5, 0], [7, 2]]));
    const sd = bn.stateDict();
    expect(Object.keys(sd)).to.deep.equal(['running_mean', 'running_var', 'num_batches_tracked']);
    // Batch means [2, 4] and [6, 1]; unbiased variances [2, 8] and [2, 2].
    expectClose(await sd.running_mean.data(), [4, 2.5], { label: 'running_mean' });
    expectClose(await sd.running_var.data(), [2, 5], { label: 'running_var' });
    expect(await sd.num_batches_tracked.item()).to.equal(2);

    const free = new sn.nn.BatchNorm1d(2, { trackRunningStats: false }).eval();
    expect(free.stateDict()).to.have.keys(['weight', 'bias']);
    const y = await free.forward(sn.tensor([[1, 2], [3, 6]])).data();
    expectClose(y, [-1, -1, 1, 1], { atol: 1e-4, label: 'batch stats in eval' });
  });

  it("Conv2d padding 'same' keeps the size (odd padding after) and equals explicit padding", async () => {
    const conv = new sn.nn.Conv2d(2, 3, [2, 4], { padding: 'same' });
    const x = sn.randn([1, 2, 5, 6]);
    const y = conv.forward(x);
    expect(y.shape).to.deep.equal([1, 3, 5, 6]);
    const ref = sn.nn.functional.conv2d(sn.nn.functional.pad(x, [1, 2, 0, 1]), conv.weight, conv.bias);
    expectClose(await y.data(), await ref.data(), { label: 'same padding' });
  });

  it('shape errors name the shapes at the call', () => {
    expect(() => new sn.nn.Conv2d(3, 4, 3).forward(sn.zeros([1, 2, 5, 5]))).to.throw(sn.ShapeError, /\[1, 2, 5, 5\]/);
    expect(() => new sn.nn.Conv2d(1, 1, 5).forward(sn.zeros([1, 1, 3, 3]))).to.throw(sn.ShapeError, /\[1, 1, 3, 3\]/);
    expect(() => new sn.nn.LayerNorm(4).forward(sn.zeros([2, 5]))).to.throw(sn.ShapeError, /\[2, 5\]/);
    expect(() => new sn.nn.BatchNorm1d(4).forward(sn.zeros([1, 4]))).to.throw(sn.ShapeError, /more than 1 value/);
    expect(() => new sn.nn.MaxPool2d(2, { padding: 2 })).to.throw(RangeError, /half the kernel/);
  });
});
