// Keras's deferred build: a Sequential model whose first layer has no inputShape is built from the
// data it is first called on (fit, predict, evaluate, trainOnBatch, forward) or by
// model.build([null, ...shape]); compile() before that settles its optimizer at the build. Under
// the same seed it must be the same model, number for number, as one given the inputShape.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, mulberry32, randomData, rejection } from './util.js';

const [N, F, H, O] = [37, 5, 7, 3];
const rng = mulberry32(13);
const X = randomData(rng, N * F);
const Y = randomData(rng, N * O);
const data = () => ({ x: sn.tensor(X, [N, F]), y: sn.tensor(Y, [N, O]) });

/** The same two-layer model, with or without the first layer's inputShape, seeded the same. */
function mlp(deferred, compile = true) {
  sn.manualSeed(29);
  const model = sn.sequential();
  model.add(sn.layers.dense({ units: H, activation: 'tanh', ...(deferred ? {} : { inputShape: [F] }) }));
  model.add(sn.layers.dropout({ rate: 0.25 }));
  model.add(sn.layers.dense({ units: O }));
  if (compile) model.compile({ optimizer: 'adam', loss: 'meanSquaredError', metrics: ['mae'] });
  return model;
}

const valuesOf = (tensors) => Promise.all(tensors.map((t) => t.data()));

async function expectSameWeights(a, b, label) {
  const [wa, wb] = [await valuesOf(a.getWeights()), await valuesOf(b.getWeights())];
  expect(wa.map((w) => w.length)).to.deep.equal(wb.map((w) => w.length));
  wa.forEach((w, i) => expectClose(w, wb[i], { atol: 0, rtol: 0, label: `${label} weight ${i}` }));
}

const NOT_BUILT = /the model is not built yet: call it on data or give the first layer an inputShape/;

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`Keras deferred input shape (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('fit builds the model from x: same initial weights, history, predictions and evaluation as the inputShape model', async () => {
      const { x, y } = data();
      // Each model is seeded, built and trained in turn, so both draw the same random streams (weights, shuffling, dropout).
      const given = mlp(false);
      const initial = await valuesOf(given.getWeights());
      const fits = [await given.fit(x, y, { epochs: 3, batchSize: 8, validationSplit: 0.2 })];
      const deferred = mlp(true);
      expect(deferred.optimizer).to.equal(null);
      fits.push(await deferred.fit(x, y, { epochs: 3, batchSize: 8, validationSplit: 0.2 }));
      expect(fits[1].history).to.deep.equal(fits[0].history);
      expect(deferred.inputShape).to.deep.equal([F]);
      expect(deferred.outputShape).to.deep.equal([O]);
      expect(deferred.optimizer).to.be.instanceOf(sn.optim.Adam);
      expect(deferred.optimizer.paramGroups[0].params).to.deep.equal(deferred.parameters());
      await expectSameWeights(deferred, given, 'after fit');
      // The test can tell: training moved the weights away from the shared start.
      expect((await given.getWeights()[0].data())[0]).to.not.equal(initial[0][0]);
      expectClose(await deferred.predict(x, { batchSize: 16 }).data(), await given.predict(x, { batchSize: 16 }).data(), { atol: 0, rtol: 0, label: 'predict' });
      expect(await deferred.evaluate(x, y)).to.deep.equal(await given.evaluate(x, y));
    });

    it('predict, evaluate, trainOnBatch and forward each build on the first call, with the weights the seed gives', async () => {
      const { x, y } = data();
      const given = mlp(false);
      const calls = {
        predict: (m) => m.predict(x).data(),
        evaluate: (m) => m.evaluate(x, y),
        forward: (m) => sn.noGrad(() => m.eval().forward(x)).data(),
      };
      for (const [name, call] of Object.entries(calls)) {
        const model = mlp(true);
        const got = await call(model);
        await expectSameWeights(model, given, name);
        expect(got, name).to.deep.equal(await call(given));
      }
      // trainOnBatch takes a real step: the same step as on a fresh inputShape model.
      const stepped = mlp(true);
      const steppedLogs = await stepped.trainOnBatch(x, y);
      const fresh = mlp(false);
      expect(steppedLogs).to.deep.equal(await fresh.trainOnBatch(x, y));
      await expectSameWeights(stepped, fresh, 'after trainOnBatch');
    });

    it('summary, countParams, getWeights, parameters and save throw a clear error before the build; model.build builds it', async () => {
      const model = mlp(true, false);
      expect(model.built).to.equal(false);
      for (const [what, call] of [
        ['summary', () => model.summary()],
        ['countParams', () => model.countParams()],
        ['getWeights', () => model.getWeights()],
        ['setWeights', () => model.setWeights([])],
        ['parameters', () => model.parameters()],
        ['stateDict', () => model.stateDict()],
        ['inputShape', () => model.inputShape],
        ['an optimizer over its parameters', () => new sn.optim.SGD(model.parameters(), { lr: 0.1 })],
      ]) {
        expect(call, what).to.throw(NOT_BUILT);
      }
      expect(String(model)).to.match(/^Model: "sequential\w*" \(not built yet\): dense\w* \(Dense\), dropout\w* \(Dropout\), dense\w* \(Dense\)$/);
      expect((await rejection(model.save(`indexeddb://keras-deferred-unbuilt-${backend}`))).message).to.match(NOT_BUILT);
      // Keras's build(input_shape): the batch dimension first.
      model.build([null, F]);
      expect(model.built).to.equal(true);
      const given = mlp(false, false);
      expect(model.countParams()).to.equal(F * H + H + H * O + O);
      expect(model.summary().replace(/\w+ \((Dense|Dropout)\)/g, '$1')).to.equal(given.summary().replace(/\w+ \((Dense|Dropout)\)/g, '$1'));
      await expectSameWeights(model, given, 'build([null, F])');
      // An sn.optim instance over the built parameters trains as the named optimizer does.
      model.compile({ optimizer: new sn.optim.Adam(model.parameters(), { lr: 0.001, eps: 1e-7 }), loss: 'meanSquaredError', metrics: ['mae'] });
      given.compile({ optimizer: 'adam', loss: 'meanSquaredError', metrics: ['mae'] });
      const { x, y } = data();
      sn.manualSeed(6);
      const a = await model.fit(x, y, { epochs: 2, batchSize: 16 });
      sn.manualSeed(6);
      const b = await given.fit(x, y, { epochs: 2, batchSize: 16 });
      expect(a.history).to.deep.equal(b.history);
      // Building again with the same shape changes nothing; another shape is refused.
      model.build([null, F]);
      expect(() => model.build([null, F + 1])).to.throw(sn.ShapeError, /\[batch, 5\].*\[batch, 6\]/);
      expect(() => mlp(true).build([F])).to.throw(/build: expected \[batch, \.\.\.inputShape\]/);
      expect(() => sn.sequential().build([null, F])).to.throw(/no layers/);
    });

    it('a second call with another feature size throws a ShapeError naming both shapes', async () => {
      const { x, y } = data();
      const model = mlp(true);
      await model.fit(x, y, { epochs: 1 });
      const wide = sn.tensor(randomData(rng, 4 * (F + 1)), [4, F + 1]);
      for (const call of [() => model.predict(wide), () => sn.noGrad(() => model.forward(wide))]) {
        expect(call).to.throw(sn.ShapeError, /expects x of shape \[batch, 5\] but got \[4, 6\]; the model took its input shape from the first data it was called on/);
      }
      const e = await rejection(model.fit(wide, sn.zeros([4, O])));
      expect(e).to.be.instanceOf(sn.ShapeError);
      expect(e.message).to.match(/\[batch, 5\] but got \[4, 6\]/);
      // The refusal changed nothing: the model still trains on its own shape.
      await model.fit(x, y, { epochs: 1 });
    });

    it('compile on an unbuilt model checks names at once; add after compile is refused; layers added after the build are built', async () => {
      const model = mlp(true, false);
      expect(() => model.compile({ optimizer: 'adamm', loss: 'mse' })).to.throw(/unknown optimizer 'adamm'/);
      expect(() => model.compile({ optimizer: 'adam', loss: 'mse', metrics: ['acuracy'] })).to.throw(/unknown metric 'acuracy'/);
      expect(() => model.compile({ optimizer: 'adam', loss: 'msee' })).to.throw(/unknown loss 'msee'/);
      model.compile({ optimizer: 'sgd', loss: 'mse' });
      expect(() => model.add(sn.layers.dense({ units: 2 }))).to.throw(/after compile/);

      const grown = sn.sequential([sn.layers.dense({ units: 4 })]);
      grown.build([null, 3]);
      grown.add(sn.layers.dense({ units: 2 }));
      expect(grown.outputShape).to.deep.equal([2]);
      expect(grown.countParams()).to.equal(3 * 4 + 4 + 4 * 2 + 2);
      expect(() => sn.sequential().compile({ optimizer: 'sgd', loss: 'mse' })).to.throw(/no layers/);
    });

    it('accuracy picks its kind from the output units, known only at the build', async () => {
      sn.manualSeed(4);
      const model = sn.sequential([sn.layers.dense({ units: O, activation: 'softmax' })]);
      // Under MSE, Keras's 'accuracy' is categorical for several units and binary (pred > 0.5 == y) for one.
      model.compile({ optimizer: 'adam', loss: 'meanSquaredError', metrics: ['accuracy'] });
      const { x, y } = data();
      const logs = await model.evaluate(x, y);
      const [predicted, truth] = [await model.predict(x).argmax(-1).data(), await y.argmax(-1).data()];
      const categorical = predicted.filter((c, i) => c === truth[i]).length / N;
      expect(categorical).to.be.above(0);
      expect(logs.accuracy).to.be.closeTo(categorical, 1e-6);
    });

    it('save / loadModel round-trips a deferred-built model: architecture, weights, optimizer state', async () => {
      const { x, y } = data();
      const model = mlp(true);
      await model.fit(x, y, { epochs: 2, batchSize: 8 });
      const url = `indexeddb://keras-deferred-${backend}`;
      await model.save(url);
      const loaded = await sn.loadModel(url);
      expect(loaded.built).to.equal(true);
      expect(loaded.inputShape).to.deep.equal([F]);
      expect(loaded.toJSON()).to.deep.equal(model.toJSON());
      expect(loaded.toJSON().config.buildInputShape).to.deep.equal([null, F]);
      await expectSameWeights(loaded, model, 'loaded');
      expectClose(await loaded.predict(x).data(), await model.predict(x).data(), { atol: 0, rtol: 0, label: 'predict' });
      // Optimizer state came along: one more epoch goes the same way on both.
      sn.manualSeed(8);
      const a = await model.fit(x, y, { epochs: 1, batchSize: 8 });
      sn.manualSeed(8);
      const b = await loaded.fit(x, y, { epochs: 1, batchSize: 8 });
      expect(b.history).to.deep.equal(a.history);
      // modelFromJSON of the unbuilt architecture stays unbuilt.
      expect(sn.modelFromJSON(mlp(true).toJSON()).built).to.equal(false);
      await sn.checkpoints.delete(url);
    });

    it('sequence models infer [time, features] and embeddings infer [time] from their first call', async () => {
      const make = (deferred) => {
        sn.manualSeed(17);
        const m = sn.sequential([
          sn.layers.embedding({ inputDim: 9, outputDim: 4, ...(deferred ? {} : { inputShape: [6] }) }),
          sn.layers.lstm({ units: 5 }),
          sn.layers.dense({ units: 1 }),
        ]);
        m.compile({ optimizer: 'rmsprop', loss: 'mse' });
        return m;
      };
      const tokens = sn.tensor(Int32Array.from(randomData(rng, 11 * 6, 'int:9')), [11, 6], { dtype: 'int32' });
      const target = sn.tensor(randomData(rng, 11), [11, 1]);
      const given = make(false);
      const fits = [await given.fit(tokens, target, { epochs: 2, batchSize: 4 })];
      const deferred = make(true);
      fits.push(await deferred.fit(tokens, target, { epochs: 2, batchSize: 4 }));
      expect(deferred.inputShape).to.deep.equal([6]);
      expect(fits[1].history).to.deep.equal(fits[0].history);
      await expectSameWeights(deferred, given, 'embedding + lstm');
    });

    it('a standalone layer builds from its first input, by apply or forward', async () => {
      const x = sn.tensor(randomData(rng, 4 * F), [4, F]);
      sn.manualSeed(3);
      const applied = sn.layers.dense({ units: 2 });
      const out = applied.apply(x);
      sn.manualSeed(3);
      const forwarded = sn.layers.dense({ units: 2 });
      const out2 = forwarded.forward(x);
      expect(out.shape).to.deep.equal([4, 2]);
      expectClose(await out2.data(), await out.data(), { atol: 0, rtol: 0, label: 'forward vs apply' });
      expect(applied.getWeights()[0].shape).to.deep.equal([F, 2]);
    });
  });
}

describe('Keras deferred input shape: TF.js parity', () => {
  before(async () => {
    // TF.js's UMD bundle (its ES module build pulls in CommonJS the test server does not convert).
    await new Promise((resolve, reject) => {
      const script = Object.assign(document.createElement('script'), { src: '/node_modules/@tensorflow/tfjs/dist/tf.min.js', onload: resolve, onerror: reject });
      document.head.append(script);
    });
    await window.tf.setBackend('cpu');
    await sn.init({ backend: 'webgpu' });
  });

  it('a model built by its first fit trains as TF.js does from the same initial weights (TF.js itself needs the inputShape)', async () => {
    const { tf } = window;
    const initial = mlp(false, false).getWeights();
    const theirs = tf.sequential({
      layers: [tf.layers.dense({ units: H, activation: 'tanh', inputShape: [F] }), tf.layers.dense({ units: O })],
    });
    theirs.setWeights(await Promise.all(initial.map(async (w) => tf.tensor(await w.array()))));
    sn.manualSeed(29);
    const ours = sn.sequential([sn.layers.dense({ units: H, activation: 'tanh' }), sn.layers.dense({ units: O })]);
    ours.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
    theirs.compile({ optimizer: tf.train.adam(0.001, 0.9, 0.999, 1e-7), loss: 'meanSquaredError' });
    const { x, y } = data();
    await ours.fit(x, y, { epochs: 3, batchSize: N, shuffle: false });
    await theirs.fit(tf.tensor(X, [N, F]), tf.tensor(Y, [N, O]), { epochs: 3, batchSize: N, shuffle: false });
    const [a, b] = [await ours.predict(x).data(), await theirs.predict(tf.tensor(X, [N, F])).data()];
    expectClose(a, b, { atol: 1e-5, rtol: 1e-4, label: 'predictions after 3 Adam steps' });
  });
});
