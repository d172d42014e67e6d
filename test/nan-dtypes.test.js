// NaN is visible and mixed dtypes compute right: relu/max/min propagate NaN
// like PyTorch on both backends, fit stops on a non-finite loss naming epoch
// and batch, saving non-finite weights warns, int32 operands of matmul and
// Linear are promoted instead of read as raw bits.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { blobData, rejection } from './util.js';

const model6to3 = () => {
  const model = sn.sequential([sn.layers.dense({ units: 8, activation: 'relu', inputShape: [6] }), sn.layers.dense({ units: 3, activation: 'softmax' })]);
  model.compile({ optimizer: 'sgd', loss: 'categorical_crossentropy' });
  return model;
};

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`NaN propagation (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('relu, maximum, minimum, clamp and leaky paths keep NaN as PyTorch does', async () => {
      const t = sn.tensor([NaN, -1, 2]);
      expect(Array.from(await t.relu().data())).to.deep.equal([NaN, 0, 2]);
      expect(Array.from(await t.maximum(1).data())).to.deep.equal([NaN, 1, 2]);
      expect(Array.from(await t.minimum(1).data())).to.deep.equal([NaN, -1, 1]);
      expect(Array.from(await sn.tensor([1, 1, 1]).maximum(t).data())).to.deep.equal([NaN, 1, 2]);
      expect(Array.from(await t.clamp(0, 1).data())).to.deep.equal([NaN, 0, 1]);
      expect(Array.from(await new sn.nn.ReLU().forward(t).data())).to.deep.equal([NaN, 0, 2]);
    });

    it('max, min and argmax reductions see NaN', async () => {
      expect(await sn.tensor([1, NaN]).max().item()).to.be.NaN;
      expect(await sn.tensor([1, NaN, -3]).min().item()).to.be.NaN;
      expect(Array.from(await sn.tensor([[1, NaN, 3], [4, 5, 6]]).max(1).data())).to.deep.equal([NaN, 6]);
      expect(Array.from(await sn.tensor([[1, NaN, 3], [4, 5, 6]]).argmax(1).data())).to.deep.equal([1, 2]);
    });

    it('a fused Linear + relu passes NaN through', async () => {
      const lin = new sn.nn.Linear(2, 2);
      const out = await sn.noGrad(() => lin.forward(sn.tensor([[NaN, 1]])).relu()).data();
      expect(Array.from(out).every(Number.isNaN)).to.equal(true);
      const dense = sn.sequential([sn.layers.dense({ units: 2, activation: 'relu', inputShape: [2] })]);
      expect(Array.from(await dense.predict(sn.tensor([[NaN, 1]])).data()).every(Number.isNaN)).to.equal(true);
    });
  });

  describe(`fit stops on a non-finite loss (${backend})`, () => {
    before(() => sn.init({ backend }));
    const data = () => {
      const { x, y } = blobData(32);
      x[10 * 6 + 2] = NaN; // sample 10 sits in batch 2 of size 4 without shuffling
      return { x: sn.tensor(x, [32, 6]), y: sn.tensor(y, [32, 3]) };
    };

    it('by default, naming epoch and batch', async () => {
      const { x, y } = data();
      const err = await rejection(model6to3().fit(x, y, { epochs: 3, batchSize: 4, shuffle: false }));
      expect(err.message).to.match(/fit: the loss became NaN or infinite at epoch 0, batch 2; training stopped/);
    });

    it('goes on when turned off, and sn.callbacks.terminateOnNaN() turns it back on', async () => {
      const { x, y } = data();
      const epochs = [];
      const h = await model6to3().fit(x, y, { epochs: 2, batchSize: 4, shuffle: false, terminateOnNaN: false, callbacks: { onEpochEnd: (e) => epochs.push(e) } });
      expect(epochs).to.deep.equal([0, 1]);
      expect(h.history.loss[0]).to.be.NaN;
      const err = await rejection(model6to3().fit(x, y, { epochs: 2, batchSize: 4, shuffle: false, terminateOnNaN: false, callbacks: [sn.callbacks.terminateOnNaN()] }));
      expect(err.message).to.match(/epoch 0, batch 2/);
    });

    it('a finite fit is untouched', async () => {
      const { x, y } = blobData(32);
      const h = await model6to3().fit(sn.tensor(x, [32, 6]), sn.tensor(y, [32, 3]), { epochs: 2, batchSize: 4 });
      expect(h.history.loss.every(Number.isFinite)).to.equal(true);
    });

    it('saving non-finite weights warns, naming them, and still saves', async () => {
      const state = { weight: sn.ones([2, 2]), bias: sn.tensor([NaN, 0]) };
      const warnings = [];
      const warn = console.warn;
      console.warn = (m) => warnings.push(String(m));
      try {
        await sn.save(state, 'indexeddb://nan-weights');
      } finally {
        console.warn = warn;
      }
      expect(warnings.join('\n')).to.match(/sn.save: saved "nan-weights", but 'bias' hold NaN or Infinity/);
      const back = await sn.load('indexeddb://nan-weights');
      expect((await back.bias.data())[0]).to.be.NaN;
      await sn.checkpoints.delete('nan-weights');
    });
  });

  describe(`mixed dtypes (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('matmul promotes int32 operands to float32 instead of reading their bits', async () => {
      const ints = sn.tensor([[1], [1], [1]], undefined, { dtype: 'int32' });
      const out = sn.ones([2, 3]).matmul(ints);
      expect(out.dtype).to.equal('float32');
      expect(Array.from(await out.data())).to.deep.equal([3, 3]);
      const both = sn.tensor([[1, 2], [3, 4]], undefined, { dtype: 'int32' }).matmul(sn.tensor([[5], [6]], undefined, { dtype: 'int32' }));
      expect(Array.from(await both.data())).to.deep.equal([17, 39]);
    });

    it('Linear on int32 input equals Linear on the same values as float32', async () => {
      const lin = new sn.nn.Linear(3, 4);
      const values = [[1, -2, 3], [7, 0, -5]];
      const a = await sn.noGrad(() => lin.forward(sn.tensor(values, undefined, { dtype: 'int32' }))).data();
      const b = await sn.noGrad(() => lin.forward(sn.tensor(values))).data();
      expect(Array.from(a)).to.deep.equal(Array.from(b));
    });

    it('elementwise int32 with float32 gives float32 values', async () => {
      const out = sn.tensor([1, 2], undefined, { dtype: 'int32' }).add(sn.tensor([0.5, 0.25]));
      expect(out.dtype).to.equal('float32');
      expect(Array.from(await out.data())).to.deep.equal([1.5, 2.25]);
    });
  });
}
