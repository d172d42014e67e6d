// Loss modules against PyTorch 1.13 (test/fixtures/torch.json): every case's
// output and input gradient, on both backends; options the fixtures do not
// cover (class weights, posWeight, unbatched input) against plain-JS
// references; and a user-defined loss Module that trains.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose } from './util.js';

const fixtures = await (await fetch(new URL('./fixtures/torch.json', import.meta.url))).json();
const CASES = Object.values(fixtures.losses);

/** A fixture tensor {shape, dtype, data} as a shadenet tensor. */
const T = (t, opts = {}) => sn.tensor(t.data, t.shape, { dtype: t.dtype, ...opts });
const TOL = { atol: 1e-5, rtol: 1e-4 };

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`losses against PyTorch (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('covers every fixture case', () => {
      expect(CASES.length).to.equal(45);
    });

    for (const c of CASES) {
      it(c.name, async () => {
        const loss = new sn.nn[c.loss](c.options);
        const x = T(c.input, { requiresGrad: true });
        const out = loss.forward(x, T(c.target));
        expect(out.shape).to.deep.equal(c.output.shape);
        (c.inputGradOf === 'output' ? out : out.sum()).backward();
        expectClose(await out.data(), c.output.data, { ...TOL, label: `${c.name} output` });
        expectClose(await x.grad.data(), c.inputGrad.data, { ...TOL, label: `${c.name} inputGrad` });
      });
    }
  });
}

// ---- plain-JS references for options without fixtures -----------------------

const logSoftmaxRows = (x, n, c) => {
  const out = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const row = Array.from(x.slice(i * c, (i + 1) * c));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    row.forEach((v, j) => (out[i * c + j] = v - lse));
  }
  return out;
};

/** PyTorch 1.13's weighted cross-entropy with ignore_index and label smoothing, 'mean' reduction. */
function crossEntropyRef(x, target, weight, ignoreIndex, eps, n, c) {
  const logp = logSoftmaxRows(x, n, c);
  let nll = 0;
  let smooth = 0;
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    if (target[i] === ignoreIndex) continue;
    const w = weight[target[i]];
    nll -= w * logp[i * c + target[i]];
    for (let j = 0; j < c; j++) smooth -= weight[j] * logp[i * c + j];
    wsum += w;
  }
  return (1 - eps) * (nll / wsum) + (eps / c) * (smooth / wsum);
}

describe('loss options without fixtures (cpu)', () => {
  before(() => sn.init({ backend: 'cpu' }));

  it('CrossEntropyLoss with class weights, ignoreIndex and labelSmoothing', async () => {
    const x = [0.3, -1.2, 2.0, 0.5, 0.1, -0.4, 1.5, 0.2, -2.0, -0.7, 0.9, 0.0, 1.1, 1.0, -0.3];
    const target = [2, 0, 1, 0, 1];
    const weight = [0.5, 2.0, 1.5];
    const loss = new sn.nn.CrossEntropyLoss({ weight: sn.tensor(weight), ignoreIndex: 0, labelSmoothing: 0.2 });
    expect(Object.keys(loss.stateDict())).to.deep.equal(['weight']);
    const out = loss.forward(sn.tensor(x, [5, 3]), sn.tensor(target, [5], { dtype: 'int32' }));
    expectClose([await out.item()], [crossEntropyRef(x, target, weight, 0, 0.2, 5, 3)], { ...TOL, label: 'weighted CE' });
    // Without smoothing it reduces to the weighted NLL of the log-softmax.
    const nll = new sn.nn.NLLLoss({ weight: sn.tensor(weight), ignoreIndex: 0 }).forward(sn.tensor(x, [5, 3]).logSoftmax(1), sn.tensor(target, [5], { dtype: 'int32' }));
    expectClose([await nll.item()], [crossEntropyRef(x, target, weight, 0, 0, 5, 3)], { ...TOL, label: 'weighted NLL' });
  });

  it('CrossEntropyLoss on an unbatched [C] input with a [] target', async () => {
    const x = [0.3, -1.2, 2.0];
    const out = new sn.nn.CrossEntropyLoss({ reduction: 'none' }).forward(sn.tensor(x), sn.tensor(1, [], { dtype: 'int32' }));
    expect(out.shape).to.deep.equal([]);
    expectClose([await out.item()], [-logSoftmaxRows(x, 1, 3)[1]], { ...TOL, label: 'unbatched CE' });
  });

  it('BCEWithLogitsLoss with posWeight and weight', async () => {
    const x = [-2.5, -0.3, 0.0, 0.7, 3.1, -1.0];
    const t = [0, 1, 1, 0, 1, 0.25];
    const pw = [3, 0.5];
    const w = [2, 1];
    const out = new sn.nn.BCEWithLogitsLoss({ posWeight: sn.tensor(pw), weight: sn.tensor(w), reduction: 'sum' })
      .forward(sn.tensor(x, [3, 2]), sn.tensor(t, [3, 2]));
    const sig = (v) => 1 / (1 + Math.exp(-v));
    const expected = x.reduce((s, v, i) => s - w[i % 2] * (pw[i % 2] * t[i] * Math.log(sig(v)) + (1 - t[i]) * Math.log(1 - sig(v))), 0);
    expectClose([await out.item()], [expected], { ...TOL, label: 'BCEWithLogits posWeight' });
  });

  it('BCELoss stays finite at probabilities 0 and 1 (logs clamped at -100)', async () => {
    const out = new sn.nn.BCELoss({ reduction: 'none' }).forward(sn.tensor([0, 1, 0, 1]), sn.tensor([1, 0, 0, 1]));
    expectClose(await out.data(), [100, 100, 0, 0], { ...TOL, label: 'clamped BCE' });
  });

  it('rejects mismatched targets and bad reductions at the call', () => {
    expect(() => new sn.nn.CrossEntropyLoss().forward(sn.zeros([4, 3]), sn.zeros([5], { dtype: 'int32' }))).to.throw(sn.ShapeError, /\[4, 3\]/);
    expect(() => new sn.nn.MSELoss({ reduction: 'avg' })).to.throw(/reduction/);
  });
});

describe('a custom loss Module built from tensor ops (cpu)', () => {
  before(() => sn.init({ backend: 'cpu' }));

  // Weighted squared error: mean(w * (x - y)^2), whose gradient is 2 w (x - y) / n.
  class WeightedMSE extends sn.nn.Module {
    constructor(weights) {
      super();
      this.w = weights;
    }
    forward(input, target) {
      return input.sub(target).square().mul(this.w).mean();
    }
  }

  it('gives the closed-form gradient and trains a parameter to the target', async () => {
    const w = [1, 2, 0.5, 3];
    const y = [0.5, -1, 2, 0];
    const lossFn = new WeightedMSE(sn.tensor(w));
    const target = sn.tensor(y);
    let p = sn.tensor([0, 0, 0, 0], [4], { requiresGrad: true });
    const losses = [];
    for (let step = 0; step < 30; step++) {
      const loss = lossFn.forward(p, target);
      loss.backward();
      if (step === 0) expectClose(await p.grad.data(), y.map((v, i) => (2 * w[i] * (0 - v)) / 4), { ...TOL, label: 'grad' });
      losses.push(await loss.item());
      p = sn.noGrad(() => p.sub(p.grad)).requiresGrad_();
    }
    for (let i = 1; i < losses.length; i++) expect(losses[i]).to.be.below(losses[i - 1]);
    expectClose(await p.data(), y, { atol: 1e-3, rtol: 0, label: 'trained parameter' });
  });
});
