// PyTorch's calling convention for every public constructor: the positional
// arguments in PyTorch's order land where PyTorch puts them, then one
// camelCase options object; one argument too many, an unknown option, the
// same argument twice or a value of the wrong kind throws a TypeError.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';

const isClass = (v) => typeof v === 'function' && /^class\b/.test(Function.prototype.toString.call(v));
const params = () => [sn.zeros([2], { requiresGrad: true })];
const optimizer = () => new sn.optim.SGD(params(), 0.1);
const dataset = () => new sn.data.TensorDataset(sn.zeros([5, 2]));
const layer = () => new sn.nn.TransformerEncoderLayer(4, 2, 8, 0);

// [constructor, its full PyTorch positional arguments, check of what landed, a wrong-kind argument list]
const CASES = {
  'nn.Linear': [[3, 1, false], (m) => { expect(m.bias).to.equal(null); expect(m.weight.shape).to.deep.equal([1, 3]); }, [3, 1, 'no']],
  'nn.Sequential': [[new sn.nn.ReLU(), new sn.nn.Tanh()], (m) => expect(m.length).to.equal(2), [new sn.nn.ReLU(), 3]],
  'nn.ReLU': [[true], (m) => expect(m.inplace).to.equal(true), [1]],
  'nn.Sigmoid': [[], () => {}, [1]],
  'nn.Tanh': [[], () => {}, [1]],
  'nn.GELU': [['tanh'], (m) => expect(m.approximate).to.equal('tanh'), [true]],
  'nn.Softmax': [[0], (m) => expect(m.dim).to.equal(0), ['1']],
  'nn.LogSoftmax': [[-1], (m) => expect(m.dim).to.equal(-1), [0.5]],
  'nn.Flatten': [[0, 1], (m) => {
    expect([m.startDim, m.endDim]).to.deep.equal([0, 1]);
    expect(m.forward(sn.zeros([2000, 1])).shape).to.deep.equal([2000]);
  }, ['0']],
  'nn.LSTM': [[10, 20, 2, false, true, 0.5, true, 0], (m) => {
    expect([m.numLayers, m.bias, m.batchFirst, m.dropout, m.bidirectional]).to.deep.equal([2, false, true, 0.5, true]);
    expect(Object.keys(m.stateDict())).to.include('weight_hh_l1_reverse');
  }, [10, 20, 2.5]],
  'nn.GRU': [[10, 20, 2, false, true, 0.25, true], (m) => expect([m.numLayers, m.bias, m.batchFirst, m.dropout, m.bidirectional]).to.deep.equal([2, false, true, 0.25, true]), [10, 20, '2']],
  'nn.RNN': [[10, 20, 3, 'relu', false, true, 0.1, true], (m) => expect([m.numLayers, m.nonlinearity, m.bias, m.batchFirst, m.dropout, m.bidirectional]).to.deep.equal([3, 'relu', false, true, 0.1, true]), [10, 20, 1, 7]],
  'nn.Conv2d': [[1, 32, 3, 2, 1, 2, 1, false, 'zeros'], (m) => {
    expect([m.stride, m.padding, m.dilation, m.bias]).to.deep.equal([[2, 2], [1, 1], [2, 2], null]);
  }, [1, 32, 3, 'two']],
  'nn.MaxPool2d': [[3, 2, 1, 1, false, false], (m) => expect([m.stride, m.padding, m.dilation]).to.deep.equal([2, 1, 1]), [3, [2, 2, 2]]],
  'nn.LayerNorm': [[4, 1e-3, false], (m) => { expect(m.eps).to.equal(1e-3); expect(m.weight).to.equal(null); }, [4, '1e-3']],
  'nn.BatchNorm1d': [[4, 1e-3, null, false, false], (m) => expect([m.eps, m.momentum, m.affine, m.trackRunningStats]).to.deep.equal([1e-3, null, false, false]), [4, 1e-3, 0.1, 'yes']],
  'nn.Dropout': [[0.3, true], (m) => expect([m.p, m.inplace]).to.deep.equal([0.3, true]), ['0.3']],
  'nn.Embedding': [[10, 3, 0], (m) => expect(m.paddingIdx).to.equal(0), [10, 3, 0.5]],
  'nn.MSELoss': [[null, null, 'sum'], (m) => expect(m.reduction).to.equal('sum'), ['sum']],
  'nn.L1Loss': [[false, null, 'mean'], (m) => expect(m.reduction).to.equal('sum'), [1]],
  'nn.HuberLoss': [['sum', 0.5], (m) => expect([m.reduction, m.delta]).to.deep.equal(['sum', 0.5]), [0.5]],
  'nn.NLLLoss': [[sn.ones([3]), null, 1, null, 'sum'], (m) => { expect(m.weight.shape).to.deep.equal([3]); expect([m.ignoreIndex, m.reduction]).to.deep.equal([1, 'sum']); }, [[1, 2, 3]]],
  'nn.CrossEntropyLoss': [[sn.ones([3]), null, 2, null, 'none', 0.1], (m) => {
    expect(m.weight.shape).to.deep.equal([3]);
    expect([m.ignoreIndex, m.reduction, m.labelSmoothing]).to.deep.equal([2, 'none', 0.1]);
  }, ['mean']],
  'nn.BCELoss': [[sn.ones([2]), null, false, 'mean'], (m) => { expect(m.weight.shape).to.deep.equal([2]); expect(m.reduction).to.equal('none'); }, [0.5]],
  'nn.BCEWithLogitsLoss': [[null, null, null, 'sum', sn.ones([2])], (m) => { expect(m.pos_weight.shape).to.deep.equal([2]); expect(m.reduction).to.equal('sum'); }, [null, null, null, 'sum', 2]],
  'nn.MultiheadAttention': [[8, 2, 0.1, false, false, false, 3, 5, true], (m) => {
    expect([m.dropout, m.kdim, m.vdim, m.batchFirst, m.in_proj_bias]).to.deep.equal([0.1, 3, 5, true, null]);
  }, [8, 2, '0.1']],
  'nn.TransformerEncoderLayer': [[4, 2, 8, 0.2, 'gelu', 1e-3, true, true], (m) => {
    expect(m.options).to.deep.equal({ dimFeedforward: 8, dropout: 0.2, activation: 'gelu', layerNormEps: 1e-3, batchFirst: true, normFirst: true });
    expect(m.linear1.weight.shape).to.deep.equal([8, 4]);
  }, [4, 2, 8, 0.2, 3]],
  'nn.TransformerEncoder': [[layer(), 2, new sn.nn.LayerNorm(4), false], (m) => { expect(m.layers.length).to.equal(2); expect(m.norm).to.be.instanceOf(sn.nn.LayerNorm); }, [layer(), 2, 'norm']],
  'nn.Parameter': [[sn.zeros([2]), false], (m) => expect(m.requiresGrad).to.equal(false), null],
  'nn.Buffer': [[sn.zeros([2])], (m) => expect(m.shape).to.deep.equal([2]), null],
  'optim.SGD': [[params(), 0.1, 0.9, 0.1, 0.01, false], (o) => {
    expect(o.paramGroups[0]).to.include({ lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, nesterov: false });
  }, [params(), '0.1']],
  'optim.Adam': [[params(), 0.1, [0.8, 0.9], 1e-6, 0.01, true], (o) => {
    expect(o.paramGroups[0]).to.deep.include({ lr: 0.1, betas: [0.8, 0.9], eps: 1e-6, weightDecay: 0.01, amsgrad: true });
  }, [params(), 0.1, 0.9]],
  'optim.AdamW': [[params(), 0.2, [0.8, 0.9], 1e-6, 0.5, true], (o) => {
    expect(o.paramGroups[0]).to.deep.include({ lr: 0.2, betas: [0.8, 0.9], eps: 1e-6, weightDecay: 0.5, amsgrad: true });
  }, [params(), 0.1, [0.9, 0.99], 'eps']],
  'optim.RMSprop': [[params(), 0.1, 0.9, 1e-6, 0.01, 0.5, true], (o) => {
    expect(o.paramGroups[0]).to.include({ lr: 0.1, alpha: 0.9, eps: 1e-6, weightDecay: 0.01, momentum: 0.5, centered: true });
  }, [params(), 0.1, 0.9, 1e-6, 0.01, 0.5, 'yes']],
  'optim.Adagrad': [[params(), 0.1, 0.01, 0.02, 0.3, 1e-8], (o) => {
    expect(o.paramGroups[0]).to.include({ lr: 0.1, lrDecay: 0.01, weightDecay: 0.02, initialAccumulatorValue: 0.3, eps: 1e-8 });
  }, [params(), 0.1, true]],
  'optim.Adadelta': [[params(), 0.5, 0.8, 1e-5, 0.01], (o) => expect(o.paramGroups[0]).to.include({ lr: 0.5, rho: 0.8, eps: 1e-5, weightDecay: 0.01 }), [params(), '1']],
  'optim.lrScheduler.StepLR': [[optimizer(), 3, 0.5], (s) => expect([s.stepSize, s.gamma]).to.deep.equal([3, 0.5]), [optimizer(), '3']],
  'optim.lrScheduler.ExponentialLR': [[optimizer(), 0.9], (s) => expect(s.gamma).to.equal(0.9), [optimizer(), [0.9]]],
  'optim.lrScheduler.CosineAnnealingLR': [[optimizer(), 10, 0.01], (s) => expect([s.tMax, s.etaMin]).to.deep.equal([10, 0.01]), [optimizer(), 10, '0']],
  'data.TensorDataset': [[sn.zeros([5, 2]), sn.zeros([5])], (d) => expect(d.length).to.equal(5), [sn.zeros([5]), [1, 2]]],
  'data.DataLoader': [[dataset(), 64, true, null, null, 0, null, false, true], (l) => expect([l.batchSize, l.shuffle, l.dropLast]).to.deep.equal([64, true, true]), [dataset(), '64']],
};

/** Every class under the namespaces, as 'nn.Linear' etc. */
function publicConstructors() {
  const names = [];
  for (const [ns, obj] of [['nn', sn.nn], ['optim', sn.optim], ['optim.lrScheduler', sn.optim.lrScheduler], ['data', sn.data]]) {
    for (const [k, v] of Object.entries(obj)) {
      // Abstract bases (Module, Optimizer, LRScheduler) are not constructed by users.
      if (isClass(v) && !['Module', 'Optimizer', 'LRScheduler'].includes(k)) names.push(`${ns}.${k}`);
    }
  }
  return names;
}

const resolve = (name) => name.split('.').reduce((o, k) => o[k], sn);

// The cases' tensors are made at load time, so this file keeps the default engine (no sn.init).
describe('PyTorch positional arguments', () => {
  it('every public constructor has a case here', () => {
    const missing = publicConstructors().filter((n) => !(n in CASES));
    expect(missing, 'constructors without a positional-argument case').to.deep.equal([]);
  });

  for (const [name, [args, check, wrong]] of Object.entries(CASES)) {
    it(`${name}: positional arguments land; extra or wrong-kind arguments throw`, () => {
      const Ctor = resolve(name);
      check(new Ctor(...args));
      if (name === 'nn.Sequential' || name === 'data.TensorDataset') {
        // Variadic in PyTorch too: any number of modules or tensors, each checked.
        expect(() => new Ctor(...wrong)).to.throw(TypeError);
        return;
      }
      if (!wrong) return;
      expect(() => new Ctor(...args, {}, 1), 'one argument too many').to.throw(TypeError);
      expect(() => new Ctor(...wrong), `wrong kind: ${String(wrong.at(-1))}`).to.throw(TypeError, /must be|options object|at most|takes/);
    });
  }

  it('options objects name their arguments; unknown, snake_case or duplicated ones throw', () => {
    expect(new sn.nn.LSTM(10, 20, { numLayers: 2, batchFirst: true }).numLayers).to.equal(2);
    expect(new sn.nn.LSTM(10, 20, 2, { batchFirst: true }).batchFirst).to.equal(true);
    expect(new sn.nn.Conv2d(3, 16, 3, { stride: 2, padding: 1 }).stride).to.deep.equal([2, 2]);
    expect(new sn.optim.Adam(params(), { lr: 0.1 }).paramGroups[0].lr).to.equal(0.1);
    expect(new sn.data.DataLoader(dataset(), { batchSize: 2 }).batchSize).to.equal(2);
    expect(() => new sn.nn.LSTM(10, 20, { num_layers: 2 })).to.throw(TypeError, /unknown option 'num_layers'/);
    expect(() => new sn.nn.LSTM(10, 20, 2, { numLayers: 3 })).to.throw(TypeError, /numLayers given both/);
    expect(() => new sn.nn.Linear(3, { bias: false })).to.throw(TypeError, /outFeatures must be a non-negative integer/);
    expect(() => new sn.nn.Linear(3, 1, { bias: false }, true)).to.throw(TypeError, /options object must be the last/);
    expect(() => new sn.nn.Conv2d(1, 2, 3, 1, 0, 1, 2)).to.throw(RangeError, /must both be multiples of groups=2/);
    expect(new sn.nn.MaxPool2d(2, 2, 0, 1, false, true).ceilMode).to.equal(true);
    expect(() => new sn.nn.MaxPool2d(2, 2, 0, 1, true)).to.throw(RangeError, /returnIndices/);
    expect(() => new sn.nn.Softmax()).to.throw(TypeError, /pass dim/);
  });

  it('MSELoss warns once when the target broadcasts against the input', async () => {
    const warnings = [];
    const original = console.warn;
    console.warn = (msg) => warnings.push(msg);
    try {
      const loss = new sn.nn.MSELoss();
      loss.forward(sn.zeros([7, 1]), sn.zeros([7]));
      loss.forward(sn.zeros([7, 1]), sn.zeros([7]));
      loss.forward(sn.zeros([7]), sn.zeros([7]));
    } finally {
      console.warn = original;
    }
    expect(warnings).to.deep.equal(['mseLoss: using a target size ([7]) that is different to the input size ([7, 1]). This will likely lead to incorrect results due to broadcasting. Please ensure they have the same size.']);
  });
});
