// Several Keras fits on one engine: they take turns batch by batch, each
// trains exactly as it would alone, and each stops on its own signal.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { blobData, expectClose, mulberry32, randomData, rejection } from './util.js';

/** A classifier (adam, cross-entropy) and a regressor (sgd, mse): different programs, sizes and batch counts. */
function twoModels() {
  const blobs = blobData(72, 5);
  const classifier = sn.sequential([
    sn.layers.dense({ units: 8, activation: 'relu', inputShape: [6] }),
    sn.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  classifier.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
  const rx = randomData(mulberry32(9), 53 * 4);
  const ry = new Float32Array(53).map((_, i) => rx[i * 4] - 2 * rx[i * 4 + 3] + 0.5);
  const regressor = sn.sequential([sn.layers.dense({ units: 5, activation: 'tanh', inputShape: [4] }), sn.layers.dense({ units: 1 })]);
  regressor.compile({ optimizer: 'sgd', loss: 'mse' });
  return [
    { model: classifier, x: sn.tensor(blobs.x, [72, 6]), y: sn.tensor(blobs.y, [72, 3]), opts: { epochs: 3, batchSize: 8 } },
    { model: regressor, x: sn.tensor(rx, [53, 4]), y: sn.tensor(ry, [53, 1]), opts: { epochs: 4, batchSize: 7 } },
  ];
}

const weights = (model) => Promise.all(model.parameters().map((p) => p.data()));

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`two fits on one engine (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('interleave, and each trains exactly as it would alone', async () => {
      // Alone: one after the other, from the same seed (init weights and shuffling draw in the same order).
      sn.manualSeed(11);
      const alone = twoModels();
      const aloneHistories = [];
      for (const { model, x, y, opts } of alone) aloneHistories.push(await model.fit(x, y, opts));

      sn.manualSeed(11);
      const together = twoModels();
      const epochEnds = [];
      const histories = await Promise.all(together.map(({ model, x, y, opts }, i) =>
        model.fit(x, y, { ...opts, callbacks: { onEpochEnd: (epoch) => epochEnds.push(`${i}:${epoch}`) } })));

      // Interleaved, not queued: the second model's first epoch ends before the first model's last one.
      expect(epochEnds.indexOf('1:0')).to.be.below(epochEnds.indexOf('0:2'));
      expect(epochEnds.indexOf('0:0')).to.be.below(epochEnds.indexOf('1:3'));
      for (let m = 0; m < 2; m++) {
        expectClose(histories[m].history.loss, aloneHistories[m].history.loss, { label: `model ${m} loss` });
        const [a, b] = [await weights(alone[m].model), await weights(together[m].model)];
        a.forEach((w, i) => expectClose(b[i], w, { label: `model ${m} parameter ${i}` }));
      }
      expect(histories[1].history.loss.at(-1)).to.be.below(histories[1].history.loss[0]);
    });

    it("an AbortSignal stops its own fit only", async () => {
      const [a, b] = twoModels();
      const controller = new AbortController();
      const [ha, hb] = await Promise.all([
        a.model.fit(a.x, a.y, { epochs: 30, batchSize: 8, signal: controller.signal, callbacks: { onEpochEnd: (e) => { if (e === 0) controller.abort(); } } }),
        b.model.fit(b.x, b.y, b.opts),
      ]);
      expect(ha.epoch.length).to.be.below(30);
      expect(hb.epoch).to.deep.equal([0, 1, 2, 3]);
    });

    it('one model cannot fit twice at once', async () => {
      const [a] = twoModels();
      const first = a.model.fit(a.x, a.y, a.opts);
      const err = await rejection(a.model.fit(a.x, a.y, a.opts));
      expect(err.message).to.match(/already fitting/);
      expect((await first).epoch).to.deep.equal([0, 1, 2]);
    });
  });
}
