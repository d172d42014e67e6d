// Out-of-range indices are errors on both backends, never silent results: the
// CPU backend throws where it reads them; WebGPU kernels flag them and the
// engine throws at the next readback (and at the end of each fit epoch),
// naming the op, the index and the bound. Negative indices are errors too.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { rejection } from './util.js';

const int = (v) => sn.tensor(v, undefined, { dtype: 'int32' });

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`index checks (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('CrossEntropyLoss with target 7 of 3 classes', async () => {
      const loss = new sn.nn.CrossEntropyLoss().forward(sn.randn([2, 3]), int([1, 7]));
      const err = await rejection(loss.item());
      expect(err.message).to.match(/^crossEntropy: target 7 is out of range for 3 classes/);
      const weighted = sn.nn.functional.crossEntropy(sn.randn([2, 3]), int([7, 1]), { weight: sn.ones([3]) });
      expect((await rejection(weighted.item())).message).to.match(/^crossEntropy: target 7 is out of range for 3 classes/);
    });

    it('NLLLoss with target -1 (not the ignore index)', async () => {
      const loss = new sn.nn.NLLLoss().forward(sn.randn([2, 3]).logSoftmax(1), int([-1, 0]));
      expect((await rejection(loss.item())).message).to.match(/^nllLoss: target -1 is out of range for 3 classes/);
    });

    it('Embedding(10, 4) with index 15 and with -1', async () => {
      const emb = new sn.nn.Embedding(10, 4);
      expect((await rejection(emb.forward(int([[1, 15]])).data())).message).to.match(/embedding: index 15 is out of range for dim 0 with size 10/);
      expect((await rejection(emb.forward(int([-1])).data())).message).to.match(/embedding: index -1 is out of range for dim 0 with size 10/);
    });

    it('gather and indexSelect', async () => {
      const t = sn.randn([3, 4]);
      expect((await rejection(t.gather(1, int([[0], [4], [1]])).data())).message).to.match(/gather: index 4 is out of range for dim 1 with size 4/);
      expect((await rejection(t.indexSelect(0, int([0, 3])).data())).message).to.match(/indexSelect: index 3 is out of range for dim 0 with size 3/);
    });

    it('sparse_categorical_crossentropy in fit rejects the fit', async () => {
      const model = sn.sequential([sn.layers.dense({ units: 3, inputShape: [2] })]);
      model.compile({ optimizer: 'sgd', loss: 'sparse_categorical_crossentropy' });
      const err = await rejection(model.fit(sn.randn([8, 2]), sn.tensor([0, 1, 2, 5, 0, 1, 2, 0], [8, 1]), { epochs: 2, batchSize: 4 }));
      expect(err.message).to.match(/sparseCategoricalCrossentropy: target 5 is out of range for 3 classes/);
    });

    it('after an index error the engine and the same ops work, and in-range indices are exact', async () => {
      await sn.sync();
      const emb = new sn.nn.Embedding(10, 4);
      const rows = await emb.forward(int([9, 0])).data();
      const w = await emb.weight.data();
      expect(Array.from(rows)).to.deep.equal([...w.slice(36, 40), ...w.slice(0, 4)]);
      const loss = new sn.nn.CrossEntropyLoss({ ignoreIndex: -1 }).forward(sn.zeros([2, 3]), int([-1, 2]));
      expect(await loss.item()).to.be.closeTo(Math.log(3), 1e-5);
    });
  });
}
