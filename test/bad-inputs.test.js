// The bad-input matrix: every wrong argument a user can pass to a public
// entry point, tried on both backends. Each must give a clear error (an Error
// naming the call and what was wrong, thrown at the user's line or rejected by
// the awaited call), never a silent result, an internal message, a hang or a
// broken engine. The engine must keep working after every one.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';

/** Messages that leak internals instead of naming the user's mistake. */
const INTERNAL = /is not a function|Cannot read propert|of undefined|is not iterable|Maximum call stack|\bNaN\b.*reading|undefined \(reading/;

const smallModel = () => {
  const model = sn.sequential([sn.layers.dense({ units: 4, activation: 'relu', inputShape: [3] }), sn.layers.dense({ units: 2, activation: 'softmax' })]);
  model.compile({ optimizer: 'adam', loss: 'categorical_crossentropy' });
  return model;
};
const xy = () => ({ x: sn.randn([5, 3]), y: sn.tensor([[1, 0], [0, 1], [1, 0], [0, 1], [1, 0]]) });

/** [what is tried, a function that must throw or return a promise that rejects, what the message must say]. */
const CASES = [
  // sn.tensor and the creators take only numbers, rectangular nesting, real shapes and known dtypes.
  ['sn.tensor("abc")', () => sn.tensor('abc'), /tensor: data must be .*the string "abc"/],
  ['sn.tensor(undefined)', () => sn.tensor(undefined), /tensor: data must be .*undefined/],
  ['sn.tensor({})', () => sn.tensor({}), /tensor: data must be .*an object/],
  ['sn.tensor([1, null, 3])', () => sn.tensor([1, null, 3]), /element at \[1\] is null, not a number/],
  ['sn.tensor([1, "2"])', () => sn.tensor([1, '2']), /element at \[1\] is the string "2"/],
  ['sn.tensor ragged with the right total', () => sn.tensor([[1], [2, 3], []]), /ragged.*\[1\] has length 2.*length 1/],
  ['sn.tensor ragged depth', () => sn.tensor([[1, 2], 3]), /ragged.*\[1\] is number 3/],
  ['sn.tensor with a hole', () => sn.tensor([[1, 2], [3, ,]]), /element at \[1, 1\] is undefined, not a number/],
  ['sn.tensor deep element', () => sn.tensor([[[1], [2]], [[3], ['x']]]), /element at \[1, 1, 0\] is the string "x"/],
  ['sn.tensor ragged deep', () => sn.tensor([[[1], [2]], [[3], [4, 5]]]), /ragged.*\[1, 1\] has length 2.*length 1/],
  ['sn.tensor shape [-2, -2]', () => sn.tensor([1, 2, 3, 4], [-2, -2]), /tensor: shape must be a list of non-negative integers, got \[-2, -2\]/],
  ['sn.tensor shape [0.5, 4]', () => sn.tensor([1, 2], [0.5, 4]), /non-negative integers, got \[0.5, 4\]/],
  ["dtype 'float64'", () => sn.tensor([1], undefined, { dtype: 'float64' }), /dtype must be 'float32' or 'int32', got the string "float64"/],
  ['int32 3e9', () => sn.tensor([3e9], undefined, { dtype: 'int32' }), /value 3000000000 .*int32 without overflow/],
  ['int32 NaN', () => sn.tensor([1, NaN], undefined, { dtype: 'int32' }), /value NaN .*int32/],
  ['options not an object', () => sn.tensor([1, 2], undefined, 'float32'), /tensor: options must be an options object/],
  ["sn.full([2], 'x')", () => sn.full([2], 'x'), /full: fill value must be a number, got the string "x"/],
  ['sn.full int32 1e10', () => sn.full([2], 1e10, { dtype: 'int32' }), /value 10000000000 .*int32 without overflow/],
  ["sn.zeros('abc')", () => sn.zeros('abc'), /full: shape must be a list of non-negative integers, got the string "abc"/],
  ['sn.randn([2, NaN])', () => sn.randn([2, NaN]), /random: shape must be .*\[2, NaN\]/],
  ['sn.ones([-1])', () => sn.ones([-1]), /shape must be a list of non-negative integers, got \[-1\]/],
  ["sn.arange('a')", () => sn.arange('a'), /arange: end must be a finite number, got the string "a"/],
  ['sn.arange(0, 5, 0)', () => sn.arange(0, 5, 0), /arange: step must be nonzero/],
  // Sizes past the device's limits are refused before anything is allocated, naming bytes and the limit.
  ['sn.zeros([1e9])', () => sn.zeros([1e9]), /a tensor of shape \[1000000000\] needs 4,000,000,000 bytes, more than this engine's largest buffer \([\d,]+ bytes/],
  ['sn.arange(3e9)', () => sn.arange(3e9), /arange: a tensor of shape \[3000000000\] needs 12,000,000,000 bytes/],
  ['sn.tensor typed array over the limit', () => sn.zeros([2 ** 20, 2 ** 20]).reshape(-1), /needs 4,398,046,511,104 bytes/],
  ['modelFromJSON with units 1e9', () => {
    const json = smallModel().toJSON();
    json.config.layers[0].config.units = 1e9;
    return sn.modelFromJSON(json);
  }, /needs [\d,]+ bytes, more than this engine's largest buffer/],
  // Ops take Tensors (or numbers where documented).
  ['t.matmul(2)', () => sn.ones([2, 2]).matmul(2), /matmul: expected Tensor arguments, got number 2/],
  ['sn.cat([t, 5])', () => sn.cat([sn.ones([2]), 5]), /cat: expected Tensor arguments, got number 5/],
  ['sn.cat(t)', () => sn.cat(sn.ones([2])), /cat: expected a list of Tensors, got a Tensor/],
  ['sn.stack([t, "x"])', () => sn.stack([sn.ones([2]), 'x']), /stack: expected a list of Tensors, got the string "x"/],
  ['sn.stack([])', () => sn.stack([]), /stack: expected a non-empty list/],
  ["t.add('1')", () => sn.ones([2]).add('1'), /add: expected a Tensor or a number, got string/],
  ['t.pow(null)', () => sn.ones([2]).pow(null), /pow: expected a Tensor or a number/],
  ['t.gather(0, float index)', () => sn.ones([3]).gather(0, sn.zeros([2])), /gather: index must be int32, got float32/],
  ['t.sum(1.5)', () => sn.ones([2, 3]).sum(1.5), /dim 1.5 is out of range/],
  ['t.transpose(0, 5)', () => sn.ones([2, 3]).transpose(0, 5), /transpose: dim 5 is out of range for shape \[2, 3\]/],
  ['t.index(5)', () => sn.ones([2, 3]).index(5), /index: 5 is out of range for dim 0 of size 2 in \[2, 3\]/],
  ["t.reshape('a')", () => sn.ones([2]).reshape('a'), /reshape/],
  ["sn.manualSeed('x')", () => sn.manualSeed('x'), /manualSeed: seed must be an integer/],
  ["sn.init({ kernels: 'fast' })", () => sn.init({ kernels: 'fast' }), /kernels must be one of 'auto', 'workgroup', 'direct', got the string "fast"/],
  // PyTorch-style modules and optimizers.
  ['new Adam([1, 2])', () => new sn.optim.Adam([1, 2]), /Adam: params must be an iterable of Tensors or of parameter groups, got number 1/],
  ['new SGD(params, { lr: -1 })', () => new sn.optim.SGD([sn.ones([2], { requiresGrad: true })], { lr: -1 }), /learning rate|lr/i],
  ["new Adam(params, { lr: 'a' })", () => new sn.optim.Adam([sn.ones([2], { requiresGrad: true })], { lr: 'a' }), /Adam: lr must be a number, got the string "a"/],
  ['Linear.forward(nested array)', () => new sn.nn.Linear(2, 3).forward([[1, 2]]), /linear: input must be a Tensor, got an Array/],
  ['new Linear(-1, 3)', () => new sn.nn.Linear(-1, 3), /Linear: inFeatures must be a non-negative integer, got number -1/],
  ["new Linear('a', 3)", () => new sn.nn.Linear('a', 3), /Linear: inFeatures must be a non-negative integer, got the string "a"/],
  ['new Linear(2.5, 3)', () => new sn.nn.Linear(2.5, 3), /Linear: inFeatures must be a non-negative integer, got number 2.5/],
  ['new Embedding(10, -4)', () => new sn.nn.Embedding(10, -4), /Embedding: embeddingDim must be a non-negative integer, got number -4/],
  // Keras-style models.
  ['predict batchSize 0', () => smallModel().predict(sn.ones([4, 3]), { batchSize: 0 }), /predict: batchSize must be a positive integer, got number 0/],
  ['predict batchSize -1', () => smallModel().predict(sn.ones([4, 3]), { batchSize: -1 }), /predict: batchSize must be a positive integer, got number -1/],
  ['predict batchSize 1e-9', () => smallModel().predict(sn.ones([4, 3]), { batchSize: 1e-9 }), /predict: batchSize must be a positive integer, got number 1e-9/],
  ['evaluate batchSize 0', () => { const { x, y } = xy(); return smallModel().evaluate(x, y, { batchSize: 0 }); }, /evaluate: batchSize must be a positive integer, got number 0/],
  ['evaluate batchSize -1', () => { const { x, y } = xy(); return smallModel().evaluate(x, y, { batchSize: -1 }); }, /evaluate: batchSize must be a positive integer, got number -1/],
  ["fit epochs 'abc'", () => { const { x, y } = xy(); return smallModel().fit(x, y, { epochs: 'abc' }); }, /fit: epochs must be a non-negative integer, got the string "abc"/],
  ['fit epochs 2.5', () => { const { x, y } = xy(); return smallModel().fit(x, y, { epochs: 2.5 }); }, /fit: epochs must be a non-negative integer, got number 2.5/],
  ['fit batchSize 0', () => { const { x, y } = xy(); return smallModel().fit(x, y, { batchSize: 0 }); }, /fit: batchSize must be a positive integer, got number 0/],
  ['fit validationSplit 1.5', () => { const { x, y } = xy(); return smallModel().fit(x, y, { validationSplit: 1.5 }); }, /validationSplit must be in \(0, 1\)/],
  ['fit options not an object', () => { const { x, y } = xy(); return smallModel().fit(x, y, 5); }, /fit: options must be an options object, got number 5/],
  ["fit terminateOnNaN 'yes'", () => { const { x, y } = xy(); return smallModel().fit(x, y, { terminateOnNaN: 'yes' }); }, /fit: terminateOnNaN must be true or false, got the string "yes"/],
  ['fit on a NaN sample', () => smallModel().fit(sn.tensor([[1, 2, NaN], [0, 1, 2]]), sn.tensor([[1, 0], [0, 1]]), { batchSize: 1, shuffle: false }), /loss became NaN or infinite at epoch 0, batch 0/],
  ['fit x and y rows differ', () => smallModel().fit(sn.ones([5, 3]), sn.ones([4, 2])), /5.*4|4.*5/],
  ["compile optimizer 'foo'", () => sn.sequential([sn.layers.dense({ units: 2, inputShape: [3] })]).compile({ optimizer: 'foo', loss: 'mse' }), /foo/],
  ["compile loss 'foo'", () => sn.sequential([sn.layers.dense({ units: 2, inputShape: [3] })]).compile({ optimizer: 'sgd', loss: 'foo' }), /foo/],
  ['dense units 1.5', () => sn.layers.dense({ units: 1.5 }), /dense: units must be a positive integer, got 1.5/],
  ["dense activation 'foo'", () => sn.layers.dense({ units: 2, activation: 'foo' }), /foo/],
  ["modelFromJSON class '__proto__'", () => sn.modelFromJSON({ className: 'Sequential', config: { layers: [{ className: '__proto__', config: {} }] } }), /unknown layer class '__proto__'/],
  ['modelFromJSON without layers', () => sn.modelFromJSON({ className: 'Sequential', config: {} }), /config.layers must be a list of layer specs, got undefined/],
  ['modelFromJSON layer null', () => sn.modelFromJSON({ className: 'Sequential', config: { layers: [null] } }), /layer 0 must be \{ className: string, config: object \}, got null/],
  // Checkpoints.
  ['sn.save of a circular object', () => { const o = { a: 1 }; o.self = o; return sn.save(o, 'indexeddb://circular'); }, /sn.save: the object at 'self' refers back to itself/],
  ["sn.save to 'http://x'", () => sn.save({ a: sn.ones([1]) }, 'http://x'), /indexeddb:\/\//],
  ['sn.load of a missing name', () => sn.load('indexeddb://does-not-exist-here'), /does-not-exist-here/],
  ['DataLoader batchSize 0', () => new sn.data.DataLoader(new sn.data.TensorDataset(sn.ones([4, 2])), { batchSize: 0 }), /batchSize/],
];

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`bad inputs (${backend})`, () => {
    let survivor;
    before(async () => {
      await sn.init({ backend });
      survivor = sn.tensor([1, 2, 3]);
    });

    for (const [what, attempt, expected] of CASES) {
      it(what, async () => {
        let error = null;
        try {
          await attempt();
        } catch (e) {
          error = e;
        }
        expect(error, `${what}: no error`).to.be.instanceOf(Error);
        expect(error.message).to.match(expected);
        expect(error.message).not.to.match(INTERNAL);
        // The engine and other tensors are unharmed.
        expect(Array.from(await survivor.mul(2).data())).to.deep.equal([2, 4, 6]);
      });
    }

    it(`${CASES.length} bad inputs, ${CASES.length} clear errors: the engine still works`, async () => {
      await sn.sync();
      expect(await sn.ones([3, 3]).matmul(sn.ones([3, 1])).sum().item()).to.equal(9);
    });
  });
}
