// nn.MultiheadAttention, TransformerEncoderLayer and TransformerEncoder
// against PyTorch 1.13 fixtures (outputs, attention weights, input and
// parameter gradients) on both backends, under each attention lowering
// (sn.init({ attention })): fused and composed; masks, layouts and argument errors.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose } from './util.js';

const { cases } = await (await fetch(new URL('./fixtures/attention.json', import.meta.url))).json();
const T = (t, opts = {}) => sn.tensor(t.data, t.shape, { dtype: t.dtype, ...opts });
const TOL = { atol: 2e-5, rtol: 2e-4 };

function build(c) {
  if (c.module === 'TransformerEncoder') {
    const [dModel, nhead, opts] = c.args[0].layer;
    return new sn.nn.TransformerEncoder(new sn.nn.TransformerEncoderLayer(dModel, nhead, opts), c.args[1], { norm: new sn.nn.LayerNorm(...c.options.norm) });
  }
  return new sn.nn[c.module](...c.args, c.options);
}

/** Forward options: fixture masks as tensors, {causal: L} as generateSquareSubsequentMask(L). */
const callOptions = (call) => Object.fromEntries(Object.entries(call).map(([k, v]) =>
  [k, v?.causal ? sn.nn.generateSquareSubsequentMask(v.causal) : v?.shape ? T(v) : v]));

for (const [backend, attention] of [['webgpu', 'composed'], ['webgpu', 'fused'], ['cpu', 'composed'], ['cpu', 'fused']]) {
  describe(`attention against PyTorch (${backend}, attention ${attention})`, () => {
    before(() => sn.init({ backend, attention }));

    for (const c of Object.values(cases)) {
      it(c.name, async () => {
        const m = build(c);
        m.loadStateDict(Object.fromEntries(Object.entries(c.stateDict).map(([k, t]) => [k, T(t)])));
        expect(Object.keys(m.stateDict())).to.deep.equal(Object.keys(c.stateDict));
        const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, t]) => [k, T(t, { requiresGrad: true })]));
        const result = m.forward(...Object.values(inputs), callOptions(c.call));
        const outs = Array.isArray(result) ? { output: result[0], weights: result[1] } : { output: result };
        if (!c.outputs.weights && Array.isArray(result)) expect(result[1]).to.equal(null);
        const names = Object.keys(c.outputs);
        names.map((k) => outs[k].mul(T(c.gradWeights[k])).sum()).reduce((a, b) => a.add(b)).backward();
        for (const k of names) {
          expect(outs[k].shape, k).to.deep.equal(c.outputs[k].shape);
          expectClose(await outs[k].data(), c.outputs[k].data, { ...TOL, label: `${c.name} ${k}` });
        }
        for (const [k, t] of Object.entries(inputs)) expectClose(await t.grad.data(), c.inputGrads[k].data, { ...TOL, label: `${c.name} grad ${k}` });
        const params = m.namedParameters();
        expect(params.map(([k]) => k)).to.deep.equal(Object.keys(c.paramGrads));
        for (const [k, p] of params) expectClose(await p.grad.data(), c.paramGrads[k].data, { ...TOL, label: `${c.name} grad ${k}` });
      });
    }
  });
}

describe('attention: modules and errors', () => {
  before(() => sn.init({ backend: 'cpu' }));

  it('has PyTorch parameter names, shapes and initial values', async () => {
    const m = new sn.nn.MultiheadAttention(8, 2);
    const sd = m.stateDict();
    expect(Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.shape]))).to.deep.equal({
      in_proj_weight: [24, 8], in_proj_bias: [24], 'out_proj.weight': [8, 8], 'out_proj.bias': [8],
    });
    // xavier_uniform_: bound sqrt(6 / (8 + 24)); biases start at zero.
    const w = await sd.in_proj_weight.data();
    expect(Math.max(...w.map(Math.abs))).to.be.below(Math.sqrt(6 / 32)).and.above(0.3);
    expect([...(await sd.in_proj_bias.data()), ...(await sd['out_proj.bias'].data())].every((v) => v === 0)).to.equal(true);
    const separate = new sn.nn.MultiheadAttention(8, 2, { kdim: 3, vdim: 5, bias: false });
    expect(Object.keys(separate.stateDict())).to.deep.equal(['q_proj_weight', 'k_proj_weight', 'v_proj_weight', 'out_proj.weight']);
    expect(String(m)).to.equal('MultiheadAttention(\n  (out_proj): NonDynamicallyQuantizableLinear(in_features=8, out_features=8, bias=True)\n)');
  });

  it('encoder layers start as copies of the given layer and train independently', async () => {
    const layer = new sn.nn.TransformerEncoderLayer(4, 2, { dimFeedforward: 6 });
    const enc = new sn.nn.TransformerEncoder(layer, 3);
    expect(enc.layers.length).to.equal(3);
    const keys = Object.keys(enc.stateDict());
    expect(keys[0]).to.equal('layers.0.self_attn.in_proj_weight');
    expect(keys.at(-1)).to.equal('layers.2.norm2.bias');
    const a = await enc.layers[0].linear1.weight.data();
    const b = await enc.layers[2].linear1.weight.data();
    expect([...a]).to.deep.equal([...b]);
    expect([...a]).to.deep.equal([...(await layer.linear1.weight.data())]);
    expect(enc.layers[0].linear1.weight.id).to.not.equal(enc.layers[2].linear1.weight.id);
  });

  it('bool masks given as nested arrays equal int32 masks; fully blocked keys get zero weight', async () => {
    sn.manualSeed(3);
    const m = new sn.nn.MultiheadAttention(4, 1);
    const x = sn.randn([3, 1, 4]);
    const nested = [[false, true, true], [false, false, true], [false, false, false]];
    const [, w1] = m.forward(x, x, x, { attnMask: nested });
    const [, w2] = m.forward(x, x, x, { attnMask: sn.tensor(nested.flat().map(Number), [3, 3], { dtype: 'int32' }) });
    const d1 = await w1.data();
    expect([...d1]).to.deep.equal([...(await w2.data())]);
    expect([d1[1], d1[2], d1[5]]).to.deep.equal([0, 0, 0]);
    expect(d1[0]).to.equal(1);
  });

  it('dropout on the weights only in training mode', async () => {
    sn.manualSeed(1);
    const m = new sn.nn.MultiheadAttention(4, 2, { dropout: 0.5 });
    const x = sn.randn([6, 2, 4]);
    const [, trainW] = m.forward(x, x, x, { averageAttnWeights: false });
    const zeros = [...(await trainW.data())].filter((v) => v === 0).length;
    expect(zeros).to.be.above(20);
    m.eval();
    const [, evalW] = m.forward(x, x, x, { averageAttnWeights: false });
    const rows = await evalW.sum(-1).data();
    expectClose(rows, new Float32Array(rows.length).fill(1), { atol: 1e-6, label: 'eval rows sum to 1' });
  });

  it('rejects bad shapes, options and extra arguments clearly', () => {
    const m = new sn.nn.MultiheadAttention(8, 2, { batchFirst: true });
    const x = sn.randn([2, 5, 8]);
    expect(() => m.forward(x, sn.randn([2, 5, 6]), x)).to.throw(sn.ShapeError, /feature sizes 8, 8, 8.*key \[2, 5, 6\]/);
    expect(() => m.forward(x, x, x, { keyPaddingMask: sn.zeros([5, 2], { dtype: 'int32' }) })).to.throw(sn.ShapeError, /keyPaddingMask \[5, 2\] must be \[2, 5\]/);
    expect(() => m.forward(x, x, x, { attnMask: sn.zeros([5, 4]) })).to.throw(sn.ShapeError, /attnMask \[5, 4\] must be \[L, S\] = \[5, 5\]/);
    expect(() => m.forward(x, x, x, { key_padding_mask: null })).to.throw(TypeError, /unknown option key_padding_mask/);
    expect(() => m.forward(x, x, x, sn.zeros([2, 5]))).to.throw(TypeError, /argument 4 must be an options object/);
    expect(() => new sn.nn.MultiheadAttention(8, 3)).to.throw(RangeError, /divisible/);
    expect(() => new sn.nn.MultiheadAttention(8, 2, '0.1')).to.throw(TypeError, /dropout must be a number/);
    expect(() => new sn.nn.MultiheadAttention(8, 2, 0, true, true)).to.throw(RangeError, /addBiasKv is not supported/);
    expect(() => new sn.nn.TransformerEncoderLayer(8, 2, { activation: 'swish' })).to.throw(RangeError, /activation/);
    expect(() => new sn.nn.TransformerEncoderLayer(8, 2, {}, 3)).to.throw(TypeError, /options object must be the last/);
  });
});
