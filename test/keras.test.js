// Keras-style API: the seed program on real digits, fit options, callbacks,
// early stopping, abort, summary, JSON round trip, and agreement with the
// PyTorch-style forward of the same weights.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { split } from './mnist.js';
import { blobData, expectClose, forceGC, mulberry32 } from './util.js';

/** A small separable problem: class = argmax of the first 3 features. */
function blobs(n, seed = 1) {
  const { x, y } = blobData(n, seed);
  return { x: sn.tensor(x, [n, 6]), y: sn.tensor(y, [n, 3]) };
}

const smallModel = () => {
  const model = sn.sequential([
    sn.layers.dense({ units: 16, activation: 'relu', inputShape: [6] }),
    sn.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: new sn.optim.Adam(model.parameters(), { lr: 0.01 }), loss: 'categorical_crossentropy', metrics: ['accuracy'] });
  return model;
};

for (const backend of ['webgpu', 'wasm']) describe(`Keras: the seed program on real mnist digits (${backend})`, () => {
  before(() => sn.init({ backend }));
  it('reaches TF.js-level held-out accuracy', async () => {
    const { train, test } = await split(8000, 2000);
    sn.manualSeed(1);
    const x = sn.tensor(train.x, [train.n, 784]);
    const y = sn.tensor(train.oneHot, [train.n, 10]);
    // Verbatim from the seed:
    const model = sn.sequential([
      sn.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }),
      sn.layers.dense({ units: 10, activation: 'softmax' }),
    ]);
    model.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
    const history = await model.fit(x, y, { epochs: 2 });
    console.log(JSON.stringify(history.history));
    expect(history.epoch).to.deep.equal([0, 1]);
    expect(history.history.loss[1]).to.be.below(history.history.loss[0]);
    const { accuracy, loss } = await model.evaluate(sn.tensor(test.x, [test.n, 784]), sn.tensor(test.oneHot, [test.n, 10]));
    console.log(`mnist 8000 train / 2000 held out, 2 epochs at the default batch size 32: held-out accuracy ${accuracy.toFixed(4)}, loss ${loss.toFixed(4)}`);
    const p = await model.predict(sn.tensor(test.x, [test.n, 784])).argmax(-1).data();
    console.log('page-side accuracy', p.filter((c, i) => c === test.labels[i]).length / test.n);
    expect(accuracy).to.be.above(0.9);
  });
});

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`Keras API (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('learns a small problem; predict matches the PyTorch-style forward of the same weights', async () => {
      sn.manualSeed(3);
      const { x, y } = blobs(256);
      const model = smallModel();
      const h = await model.fit(x, y, { epochs: 20, batchSize: 16 });
      expect(h.history.accuracy.at(-1)).to.be.above(0.85);
      const [d1, d2] = model.layers;
      const torchLike = new sn.nn.Sequential(new sn.nn.Linear(6, 16), new sn.nn.ReLU(), new sn.nn.Linear(16, 3), new sn.nn.Softmax(1));
      torchLike.loadStateDict({ '0.weight': d1.kernel.T, '0.bias': d1.bias, '2.weight': d2.kernel.T, '2.bias': d2.bias });
      const probe = x.slice(0, 0, 40);
      expectClose(await model.predict(probe, { batchSize: 16 }).data(), await sn.noGrad(() => torchLike.forward(probe)).data(), { atol: 1e-5, label: 'predict' });
    });

    it('fit replays exactly what trainOnBatch does, remainder batches and Adam step counts included', async () => {
      const { x, y } = blobs(8, 21);
      const make = () => {
        sn.manualSeed(21);
        const m = sn.sequential([sn.layers.dense({ units: 5, activation: 'tanh', inputShape: [6] }), sn.layers.dense({ units: 3, activation: 'softmax' })]);
        m.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
        return m;
      };
      const fitted = make();
      const stepped = make();
      // Batches of 3, 3 and 2: two recorded programs, replayed in turn for two epochs.
      const h = await fitted.fit(x, y, { epochs: 2, batchSize: 3, shuffle: false });
      const losses = [];
      for (let epoch = 0; epoch < 2; epoch++) {
        for (const [s, e] of [[0, 3], [3, 6], [6, 8]]) losses.push((await stepped.trainOnBatch(x.slice(0, s, e), y.slice(0, s, e))).loss);
      }
      const a = await Promise.all(fitted.parameters().map((p) => p.data()));
      const b = await Promise.all(stepped.parameters().map((p) => p.data()));
      a.forEach((v, i) => expectClose(v, b[i], { atol: 1e-6, rtol: 1e-5, label: `param ${i}` }));
      // Epoch loss is the sample-weighted mean of the batch losses.
      const epoch0 = (losses[0] * 3 + losses[1] * 3 + losses[2] * 2) / 8;
      expect(h.history.loss[0]).to.be.closeTo(epoch0, 1e-5);
    });

    it('fit leaves no tensors behind in the worker', async () => {
      const { x, y } = blobs(50, 4);
      const model = smallModel();
      await model.fit(x, y, { epochs: 1, batchSize: 8, validationSplit: 0.2 });
      await forceGC();
      const before = await sn.memory();
      await model.fit(x, y, { epochs: 3, batchSize: 8, validationSplit: 0.2 });
      // Finalizers run some time after a collection: give them a few rounds.
      let after;
      for (let round = 0; round < 10; round++) {
        await forceGC();
        after = await sn.memory();
        if (after.liveTensors <= before.liveTensors) break;
      }
      expect(after.liveTensors).to.equal(before.liveTensors);
    });

    it('sparse labels, nested arrays, typed arrays with a shape, validationSplit', async () => {
      sn.manualSeed(4);
      const model = sn.sequential([sn.layers.dense({ units: 3, inputShape: [2], activation: 'softmax' })]);
      model.compile({ optimizer: 'sgd', loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] });
      const xs = [[0, 1], [1, 0], [1, 1], [0, 0], [2, 1], [1, 2], [0.5, 0.5], [2, 2], [3, 1], [1, 3]];
      const labels = { data: new Int32Array([0, 1, 2, 0, 1, 0, 2, 2, 1, 0]), shape: [10] };
      const h = await model.fit(xs, labels, { epochs: 2, batchSize: 4, validationSplit: 0.2 });
      expect(Object.keys(h.history).sort()).to.deep.equal(['acc', 'accuracy', 'loss', 'val_acc', 'val_accuracy', 'val_loss']);
      expect(h.history.val_loss).to.have.length(2);
      const ev = await model.evaluate(xs, labels, { batchSize: 3 });
      expect(ev.loss).to.be.a('number').and.not.NaN;
    });

    it('callbacks run in order with Keras-style logs', async () => {
      const { x, y } = blobs(40);
      const model = smallModel();
      const events = [];
      await model.fit(x, y, {
        epochs: 2, batchSize: 8, validationData: [x, y],
        callbacks: {
          onTrainBegin: () => events.push('trainBegin'),
          onEpochBegin: (e) => events.push(`epochBegin ${e}`),
          onEpochEnd: (e, logs) => events.push(`epochEnd ${e} ${Object.keys(logs).sort().join(',')}`),
          onTrainEnd: () => events.push('trainEnd'),
        },
      });
      expect(events).to.deep.equal([
        'trainBegin', 'epochBegin 0', 'epochEnd 0 acc,accuracy,loss,val_acc,val_accuracy,val_loss',
        'epochBegin 1', 'epochEnd 1 acc,accuracy,loss,val_acc,val_accuracy,val_loss', 'trainEnd',
      ]);
    });

    it('batch-end events arrive throttled, with running logs', async () => {
      const { x, y } = blobs(400);
      const model = smallModel();
      const seen = [];
      await model.fit(x, y, { epochs: 1, batchSize: 2, callbacks: { onBatchEnd: (batch, logs) => seen.push([batch, logs.loss, logs.accuracy]) } });
      expect(seen.length).to.be.at.least(1);
      // 200 batches; events are at most one per 100 ms, so far fewer than one per batch.
      expect(seen.length).to.be.below(200);
      for (const [batch, loss, accuracy] of seen) {
        expect(batch).to.be.within(0, 199);
        expect(loss).to.be.a('number').and.above(0);
        expect(accuracy).to.be.within(0, 1);
      }
    });

    it('earlyStopping stops and restores the best weights', async () => {
      const { x, y } = blobs(64);
      const model = smallModel();
      // A learning rate this large makes the loss climb after the first epochs.
      model.compile({ optimizer: new sn.optim.SGD(model.parameters(), { lr: 40 }), loss: 'categorical_crossentropy' });
      const stop = sn.callbacks.earlyStopping({ monitor: 'val_loss', patience: 1, restoreBestWeights: true });
      // val_loss is measured after each epoch's updates: the restored weights must reproduce the best one.
      const h = await model.fit(x, y, { epochs: 30, batchSize: 16, shuffle: false, validationData: [x, y], callbacks: [stop] });
      expect(h.epoch.length).to.be.below(30);
      expect(stop.stoppedEpoch).to.equal(h.epoch.at(-1));
      const best = Math.min(...h.history.val_loss);
      expect(h.history.val_loss[stop.bestEpoch]).to.equal(best);
      expect(h.history.val_loss.at(-1)).to.be.above(best);
      const after = await model.evaluate(x, y, { batchSize: 16 });
      expect(after.loss).to.be.closeTo(best, 1e-5 * Math.max(1, best));
    });

    it('an AbortSignal stops after the current batch and resolves with the history so far', async () => {
      const { x, y } = blobs(512);
      const model = smallModel();
      const controller = new AbortController();
      const h = await model.fit(x, y, {
        epochs: 50, batchSize: 8,
        callbacks: { onEpochEnd: (e) => { if (e === 1) controller.abort(); } },
        signal: controller.signal,
      });
      expect(h.epoch).to.deep.equal([0, 1]);
      const again = await model.fit(x, y, { epochs: 1, batchSize: 64 });
      expect(again.epoch).to.deep.equal([0]);
    });

    it('bad input is rejected before training, naming the layer and both shapes', async () => {
      const model = smallModel();
      const err = async (fn) => { try { await fn(); } catch (e) { return e.message; } return 'no error'; };
      expect(await err(() => model.fit(sn.zeros([10, 5]), sn.zeros([10, 3])))).to.match(/dense.*\[batch, 6\].*\[10, 5\]/);
      expect(await err(() => model.fit(sn.zeros([10, 6]), sn.zeros([9, 3])))).to.match(/10 samples.*9/);
      expect(await err(() => model.fit(sn.zeros([10, 6]), sn.zeros([10, 4])))).to.match(/\[batch, 3\].*\[10, 4\]/);
      expect(await err(() => model.fit(sn.zeros([10, 6, 1]), sn.zeros([10, 3])))).to.match(/\[10, 6, 1\]/);
      expect(() => model.compile({ optimizer: 'adam', loss: 'categorical_crossentropyy' })).to.throw(/unknown loss.*categorical_crossentropy/);
      expect(() => model.compile({ optimizer: 'adamm', loss: 'mse' })).to.throw(/unknown optimizer.*adam/);
    });

    it('trainOnBatch, predictOnBatch and a custom loss function', async () => {
      const { x, y } = blobs(32);
      const model = sn.sequential([sn.layers.dense({ units: 3, inputShape: [6] })]);
      model.compile({ optimizer: 'sgd', loss: (yTrue, yPred) => yPred.sub(yTrue).square().mean(), metrics: ['mse'] });
      const first = await model.trainOnBatch(x, y);
      const second = await model.trainOnBatch(x, y);
      expect(second.loss).to.be.below(first.loss);
      expect(first.mse).to.be.closeTo(first.loss, 1e-5);
      expect(model.predictOnBatch(x).shape).to.deep.equal([32, 3]);
    });
  });
}

/** Token sequences of lengths 2..8, zero-padded; label 1 when the sequence contains token 5. */
function sequences(n, padTo, seed = 9) {
  const rng = mulberry32(seed);
  const x = new Float32Array(n * padTo);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const len = 2 + Math.floor(rng() * 7);
    for (let t = 0; t < len; t++) x[i * padTo + t] = 1 + Math.floor(rng() * 9);
    if (rng() < 0.5) x[i * padTo + Math.floor(rng() * len)] = 5;
    y[i] = x.slice(i * padTo, i * padTo + len).includes(5) ? 1 : 0;
  }
  return { x, y };
}

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`Keras recurrent, masking and conv layers (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('an LSTM classifier on variable-length sequences learns, and padding does not change its output', async () => {
      sn.manualSeed(11);
      const model = sn.sequential([
        sn.layers.embedding({ inputDim: 10, outputDim: 8, maskZero: true, inputShape: [null] }),
        sn.layers.lstm({ units: 12 }),
        sn.layers.dense({ units: 1, activation: 'sigmoid' }),
      ]);
      model.compile({ optimizer: new sn.optim.Adam(model.parameters(), { lr: 0.02 }), loss: 'binary_crossentropy', metrics: ['accuracy'] });
      const train = sequences(256, 8);
      const h = await model.fit(sn.tensor(train.x, [256, 8]), sn.tensor(train.y, [256, 1]), { epochs: 12, batchSize: 32 });
      expect(h.history.accuracy.at(-1)).to.be.above(0.9);
      // The same sequences padded further: the mask must make the extra zeros invisible.
      const short = sequences(16, 8, 3);
      const long = new Float32Array(16 * 12);
      for (let i = 0; i < 16; i++) long.set(short.x.slice(i * 8, i * 8 + 8), i * 12);
      const a = await model.predict(sn.tensor(short.x, [16, 8])).data();
      const b = await model.predict(sn.tensor(long, [16, 12])).data();
      expectClose(b, a, { atol: 1e-5, label: 'padded further' });
    });

    it('masking() and gru/simpleRNN with goBackwards and returnSequences build and run', async () => {
      sn.manualSeed(12);
      const model = sn.sequential([
        sn.layers.masking({ maskValue: 0, inputShape: [null, 3] }),
        sn.layers.gru({ units: 4, returnSequences: true, goBackwards: true }),
        sn.layers.simpleRNN({ units: 5 }),
        sn.layers.layerNormalization(),
        sn.layers.dense({ units: 2, activation: 'softmax' }),
      ]);
      model.compile({ optimizer: 'rmsprop', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
      const x = sn.randn([6, 7, 3]);
      const h = await model.fit(x, sn.tensor([[1, 0], [0, 1], [1, 0], [0, 1], [1, 0], [0, 1]]), { epochs: 2, batchSize: 4 });
      expect(h.history.loss.every(Number.isFinite)).to.equal(true);
      expect(model.predict(x).shape).to.deep.equal([6, 2]);
    });

    it('conv2d, maxPooling2d and batchNormalization (NHWC) train on a small image problem', async () => {
      sn.manualSeed(13);
      const n = 64;
      const rng = mulberry32(5);
      const x = new Float32Array(n * 8 * 8);
      const y = new Float32Array(n * 2);
      for (let i = 0; i < n; i++) {
        // Class 1: a bright bar in the top half; class 0: in the bottom half.
        const cls = i % 2;
        const row = cls ? 1 + Math.floor(rng() * 2) : 5 + Math.floor(rng() * 2);
        for (let c = 0; c < 8; c++) x[i * 64 + row * 8 + c] = 1;
        y[i * 2 + cls] = 1;
      }
      const model = sn.sequential([
        sn.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [8, 8, 1] }),
        sn.layers.batchNormalization(),
        sn.layers.maxPooling2d({ poolSize: 2 }),
        sn.layers.flatten(),
        sn.layers.dense({ units: 2, activation: 'softmax' }),
      ]);
      expect(model.summary()).to.match(/\(None, 8, 8, 4\)/).and.match(/\(None, 4, 4, 4\)/).and.match(/\(None, 64\)/);
      model.compile({ optimizer: new sn.optim.Adam(model.parameters(), { lr: 0.05 }), loss: 'categorical_crossentropy', metrics: ['accuracy'] });
      const h = await model.fit(sn.tensor(x, [n, 8, 8, 1]), sn.tensor(y, [n, 2]), { epochs: 8, batchSize: 16 });
      expect(h.history.accuracy.at(-1)).to.be.above(0.9);
    });
  });
}

describe('Keras model description', () => {
  it('summary() is a Keras-like table', () => {
    const model = sn.sequential([
      sn.layers.dense({ units: 128, activation: 'relu', inputShape: [784], name: 'hidden' }),
      sn.layers.dropout({ rate: 0.2, name: 'drop' }),
      sn.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
    ]);
    const text = model.summary();
    expect(text).to.include('Layer (type)').and.include('Output Shape').and.include('Param #');
    expect(text).to.match(/hidden \(Dense\)\s+\(None, 128\)\s+100480/);
    expect(text).to.match(/drop \(Dropout\)\s+\(None, 128\)\s+0/);
    expect(text).to.match(/out \(Dense\)\s+\(None, 10\)\s+1290/);
    expect(text).to.include('Total params: 101770');
  });

  it('toJSON / modelFromJSON round trip the architecture', () => {
    const model = sn.sequential([
      sn.layers.dense({ units: 8, activation: 'tanh', inputShape: [4] }),
      sn.layers.reshape({ targetShape: [2, 4] }),
      sn.layers.flatten(),
      sn.layers.activation({ activation: 'relu' }),
      sn.layers.dense({ units: 2, useBias: false }),
    ]);
    const json = JSON.stringify(model.toJSON());
    const back = sn.modelFromJSON(json);
    expect(JSON.stringify(back.toJSON())).to.equal(json);
    expect(back.summary().replace(/\s+/g, ' ')).to.equal(model.summary().replace(/\s+/g, ' '));
  });
});
