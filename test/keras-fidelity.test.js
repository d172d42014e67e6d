// Keras dialect fidelity: the same weights give TF.js's numbers. TF.js runs in
// this page on its cpu backend; our layers hand it their weights through
// getWeights() (Keras's layout), so predictions and a few Adam steps of fit
// must agree to float32 rounding.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, mulberry32, randomData } from './util.js';

// TF.js's ES module build pulls in CommonJS dependencies the test server does not convert; its UMD bundle defines window.tf.
await new Promise((resolve, reject) => {
  const script = Object.assign(document.createElement('script'), { src: '/node_modules/@tensorflow/tfjs/dist/tf.min.js', onload: resolve, onerror: reject });
  document.head.append(script);
});
const { tf } = window;

before(async () => {
  await tf.setBackend('cpu');
});

/** Our model's weights, as TF.js tensors. */
async function weightsForTf(model) {
  return Promise.all(model.getWeights().map(async (w) => tf.tensor(await w.array())));
}

/** Predictions of both models for x (a flat Float32Array with its shape). */
async function predictBoth(ours, theirs, data, shape) {
  const a = await ours.predict(sn.tensor(data, shape)).data();
  const b = await theirs.predict(tf.tensor(data, shape)).data();
  return [a, b];
}

/** Compiles both with Adam(lr) and MSE, fits `epochs` full-batch steps without shuffling, returns both predictions after. */
async function fitBoth(ours, theirs, x, xShape, y, yShape, epochs = 3, lr = 0.01) {
  ours.compile({ optimizer: new sn.optim.Adam(ours.parameters(), { lr, eps: 1e-7 }), loss: 'meanSquaredError' });
  theirs.compile({ optimizer: tf.train.adam(lr), loss: 'meanSquaredError' });
  const n = xShape[0];
  await ours.fit(sn.tensor(x, xShape), sn.tensor(y, yShape), { epochs, batchSize: n, shuffle: false });
  await theirs.fit(tf.tensor(x, xShape), tf.tensor(y, yShape), { epochs, batchSize: n, shuffle: false });
  return predictBoth(ours, theirs, x, xShape);
}

const RECURRENT = [
  ['lstm', {}, {}],
  ['lstm', { recurrentActivation: 'hardSigmoid', activation: 'relu' }, { recurrentActivation: 'hardSigmoid', activation: 'relu' }],
  ['gru', { resetAfter: false }, {}],
  ['simpleRNN', {}, {}],
  ['simpleRNN', { activation: 'relu' }, { activation: 'relu' }],
];

for (const backend of ['webgpu', 'cpu']) {
  describe(`Keras recurrent layers match TF.js (${backend})`, () => {
    before(() => sn.init({ backend }));

    for (const [kind, ours, theirs] of RECURRENT) {
      for (const returnSequences of [false, true]) {
        it(`${kind} ${JSON.stringify(ours)}${returnSequences ? ' returnSequences' : ''}: Keras weight shapes, predictions and 3 Adam steps`, async () => {
          sn.manualSeed(21);
          const [B, T, F, H] = [4, 6, 3, 5];
          const model = sn.sequential([
            sn.layers[kind]({ units: H, inputShape: [T, F], returnSequences, ...ours }),
            sn.layers.dense({ units: 2 }),
          ]);
          const gates = { lstm: 4, gru: 3, simpleRNN: 1 }[kind];
          expect(model.layers[0].getWeights().map((w) => w.shape)).to.deep.equal([[F, gates * H], [H, gates * H], [gates * H]]);
          // TF.js's recurrent layers default to hardSigmoid gates; Keras's (and ours) to sigmoid.
          const tfModel = tf.sequential({
            layers: [
              tf.layers[kind]({ units: H, inputShape: [T, F], returnSequences, recurrentActivation: 'sigmoid', ...theirs }),
              tf.layers.dense({ units: 2 }),
            ],
          });
          tfModel.setWeights(await weightsForTf(model));
          const rng = mulberry32(5);
          const x = randomData(rng, B * T * F);
          const [a, b] = await predictBoth(model, tfModel, x, [B, T, F]);
          expectClose(a, b, { atol: 2e-6, rtol: 1e-5, label: 'predict' });
          const yShape = returnSequences ? [B, T, 2] : [B, 2];
          const y = randomData(rng, yShape.reduce((p, q) => p * q));
          const [c, d] = await fitBoth(model, tfModel, x, [B, T, F], y, yShape);
          expectClose(c, d, { atol: 1e-5, rtol: 1e-4, label: 'after 3 Adam steps' });
          // And the weights themselves moved alike (one bias, moving at Keras's pace).
          const ws = model.getWeights();
          const tws = tfModel.getWeights();
          for (let i = 0; i < ws.length; i++) expectClose(await ws[i].data(), await tws[i].data(), { atol: 1e-5, rtol: 1e-4, label: `weight ${i}` });
        });
      }
    }

    it('gru with resetAfter (Keras 2 default) matches a float64 reference of Keras\'s equations, bias [2, 3*units]', async () => {
      sn.manualSeed(22);
      const [B, T, F, H] = [3, 5, 4, 6];
      const layer = sn.layers.gru({ units: H, returnSequences: true, inputShape: [T, F] });
      const model = sn.sequential([layer]);
      const rng = mulberry32(9);
      const bias = randomData(rng, 2 * 3 * H);
      layer.setWeights([randomData(rng, F * 3 * H), randomData(rng, H * 3 * H).map((v) => v / 4), bias]);
      const [k, u, b] = await Promise.all(layer.getWeights().map((w) => w.data()));
      expect(layer.getWeights()[2].shape).to.deep.equal([2, 3 * H]);
      expectClose(b, bias, { atol: 0, rtol: 0, label: 'setWeights then getWeights' });
      const x = randomData(rng, B * T * F);
      const got = await model.predict(sn.tensor(x, [B, T, F])).data();
      const sig = (v) => 1 / (1 + Math.exp(-v));
      const want = new Float64Array(B * T * H);
      for (let n = 0; n < B; n++) {
        let h = new Float64Array(H);
        for (let t = 0; t < T; t++) {
          const xg = new Float64Array(3 * H);
          const hg = new Float64Array(3 * H);
          for (let j = 0; j < 3 * H; j++) {
            xg[j] = b[j];
            hg[j] = b[3 * H + j];
            for (let i = 0; i < F; i++) xg[j] += x[(n * T + t) * F + i] * k[i * 3 * H + j];
            for (let i = 0; i < H; i++) hg[j] += h[i] * u[i * 3 * H + j];
          }
          const next = new Float64Array(H);
          for (let j = 0; j < H; j++) {
            const z = sig(xg[j] + hg[j]);
            const r = sig(xg[H + j] + hg[H + j]);
            const hh = Math.tanh(xg[2 * H + j] + r * hg[2 * H + j]);
            next[j] = z * h[j] + (1 - z) * hh;
            want[(n * T + t) * H + j] = next[j];
          }
          h = next;
        }
      }
      expectClose(got, want, { atol: 2e-6, rtol: 1e-5, label: 'gru resetAfter' });
    });

    for (const goBackwards of [false, true]) {
      it(`embedding({ maskZero }) with pre-padding and zeros inside the sequence: lstm${goBackwards ? ' goBackwards' : ''} matches TF.js`, async () => {
        sn.manualSeed(23);
        const [B, T, V, D, H] = [5, 7, 10, 4, 6];
        const model = sn.sequential([
          sn.layers.embedding({ inputDim: V, outputDim: D, maskZero: true, inputShape: [T] }),
          sn.layers.lstm({ units: H, goBackwards }),
          sn.layers.dense({ units: 1, activation: 'sigmoid' }),
        ]);
        const tfModel = tf.sequential({
          layers: [
            tf.layers.embedding({ inputDim: V, outputDim: D, maskZero: true, inputShape: [T] }),
            tf.layers.lstm({ units: H, recurrentActivation: 'sigmoid', goBackwards }),
            tf.layers.dense({ units: 1, activation: 'sigmoid' }),
          ],
        });
        tfModel.setWeights(await weightsForTf(model));
        // pad_sequences' default: zeros in front; one row also has a zero inside and one is unpadded.
        const x = new Float32Array([
          0, 0, 0, 3, 1, 4, 1,
          0, 5, 9, 2, 6, 5, 3,
          0, 0, 0, 0, 0, 0, 8,
          2, 7, 0, 1, 8, 0, 2,
          8, 1, 8, 2, 8, 4, 5,
        ]);
        const [a, b] = await predictBoth(model, tfModel, x, [B, T]);
        expectClose(a, b, { atol: 2e-6, rtol: 1e-5, label: 'masked predict' });
        const y = new Float32Array([1, 0, 1, 0, 1]);
        const [c, d] = await fitBoth(model, tfModel, x, [B, T], y, [B, 1]);
        expectClose(c, d, { atol: 1e-5, rtol: 1e-4, label: 'masked, after 3 Adam steps' });
      });
    }
  });
}

describe('Keras initializers and defaults', () => {
  before(() => sn.init({ backend: 'cpu' }));

  it('lstm defaults: glorotUniform kernel, orthogonal recurrent kernel, zero bias with the forget gate at 1', async () => {
    sn.manualSeed(31);
    const H = 8;
    const layer = sn.layers.lstm({ units: H, inputShape: [3, 5] });
    sn.sequential([layer]);
    const [k, u, b] = layer.getWeights();
    const limit = Math.sqrt(6 / (5 + 4 * H));
    const kd = await k.data();
    expect(Math.max(...kd.map(Math.abs))).to.be.at.most(limit);
    expect(Math.max(...kd.map(Math.abs))).to.be.above(limit * 0.8);
    // Orthogonal [H, 4H]: orthonormal rows.
    expectClose(await u.matmul(u.transpose(0, 1)).data(), await sn.tensor(Array.from({ length: H }, (_, i) => Array.from({ length: H }, (_, j) => +(i === j)))).data(), { atol: 1e-5, label: 'U U^T' });
    expect(Array.from(await b.data())).to.deep.equal([...Array(H).fill(0), ...Array(H).fill(1), ...Array(2 * H).fill(0)]);
    const plain = sn.layers.lstm({ units: H, unitForgetBias: false, inputShape: [3, 5] });
    sn.sequential([plain]);
    expect(Array.from(await plain.getWeights()[2].data()).every((v) => v === 0)).to.equal(true);
  });

  it('initializer arguments are honoured, in both spellings and as objects', async () => {
    sn.manualSeed(32);
    const layer = sn.layers.gru({ units: 4, inputShape: [2, 3], kernelInitializer: 'zeros', recurrentInitializer: 'ones', biasInitializer: { className: 'Constant', config: { value: 0.5 } } });
    sn.sequential([layer]);
    const [k, u, b] = await Promise.all(layer.getWeights().map((w) => w.data()));
    expect(k.every((v) => v === 0) && u.every((v) => v === 1) && b.every((v) => v === 0.5)).to.equal(true);
    const stats = async (init, shape) => {
      const d = sn.layers.dense({ units: shape[1], kernelInitializer: init, inputShape: [shape[0]] });
      sn.sequential([d]);
      const v = await d.getWeights()[0].data();
      const mean = v.reduce((s, a) => s + a, 0) / v.length;
      const std = Math.sqrt(v.reduce((s, a) => s + (a - mean) ** 2, 0) / v.length);
      return { mean, std, max: Math.max(...v.map(Math.abs)) };
    };
    const he = await stats('he_normal', [200, 300]);
    expect(he.std).to.be.closeTo(Math.sqrt(2 / 200), 0.004);
    expect(he.max).to.be.at.most(2 * Math.sqrt(2 / 200) / 0.8796256610342398 + 1e-6);
    const rn = await stats('randomNormal', [200, 300]);
    expect(rn.std).to.be.closeTo(0.05, 0.001);
    const lu = await stats(sn.initializers.leCunUniform(), [100, 300]);
    expect(lu.max).to.be.at.most(Math.sqrt(3 / 100));
    expect(lu.std).to.be.closeTo(Math.sqrt(1 / 100), 0.003);
    const gn = await stats('glorotNormal', [200, 300]);
    expect(gn.std).to.be.closeTo(Math.sqrt(2 / 500), 0.003);
    const tall = sn.layers.dense({ units: 3, kernelInitializer: sn.initializers.orthogonal({ gain: 2 }), inputShape: [7] });
    sn.sequential([tall]);
    const w = tall.getWeights()[0];
    expectClose(await w.transpose(0, 1).matmul(w).data(), [4, 0, 0, 0, 4, 0, 0, 0, 4], { atol: 1e-5, label: 'W^T W of a tall orthogonal kernel' });
    expect(() => sn.sequential([sn.layers.dense({ units: 2, kernelInitializer: 'glorotUniformish', inputShape: [2] })])).to.throw(/unknown initializer 'glorotUniformish'.*glorotUniform/);
    expect(() => sn.sequential([sn.layers.dense({ units: 2, kernelInitializer: sn.initializers.heNormal({ seed: 3 }), inputShape: [2] })])).to.throw(/sn.manualSeed/);
  });
});

describe('Keras getWeights / setWeights and TF.js spellings', () => {
  before(() => sn.init({ backend: 'cpu' }));

  it('conv2d, batchNormalization, embedding and dense weights travel in Keras\'s layout and give TF.js\'s outputs', async () => {
    sn.manualSeed(41);
    const model = sn.sequential({
      layers: [
        sn.layers.conv2d({ filters: 3, kernelSize: [3, 2], activation: 'relu', inputShape: [6, 5, 2] }),
        sn.layers.batchNormalization(),
        sn.layers.flatten(),
        sn.layers.dense({ units: 4, activation: 'softmax' }),
      ],
    });
    expect(model.getWeights().map((w) => w.shape)).to.deep.equal([[3, 2, 2, 3], [3], [3], [3], [48, 4], [4], [3], [3]]);
    const tfModel = tf.sequential({
      layers: [
        tf.layers.conv2d({ filters: 3, kernelSize: [3, 2], activation: 'relu', inputShape: [6, 5, 2] }),
        tf.layers.batchNormalization(),
        tf.layers.flatten(),
        tf.layers.dense({ units: 4, activation: 'softmax' }),
      ],
    });
    const rng = mulberry32(3);
    // Non-trivial moving statistics, so inference exercises every weight.
    const values = model.getWeights().map((w) => randomData(rng, w.size, 'positive'));
    model.setWeights(values);
    tfModel.setWeights(values.map((v, i) => tf.tensor(v, model.getWeights()[i].shape)));
    const x = randomData(rng, 2 * 6 * 5 * 2);
    const [a, b] = await predictBoth(model, tfModel, x, [2, 6, 5, 2]);
    expectClose(a, b, { atol: 1e-6, rtol: 1e-5, label: 'conv/bn/dense predict' });
    const got = await Promise.all(model.getWeights().map((w) => w.data()));
    got.forEach((g, i) => expectClose(g, values[i], { atol: 0, rtol: 0, label: `weight ${i} round trip` }));
  });

  it('setWeights takes Tensors, nested arrays and flat arrays, and refuses a wrong count or shape naming both', async () => {
    const d = sn.layers.dense({ units: 2, inputShape: [3], name: 'probe' });
    const model = sn.sequential([d]);
    d.setWeights([[[1, 2], [3, 4], [5, 6]], sn.tensor([0.5, -0.5])]);
    expect(await d.getWeights()[0].array()).to.deep.equal([[1, 2], [3, 4], [5, 6]]);
    d.setWeights([new Float32Array([6, 5, 4, 3, 2, 1]), [1, 1]]);
    expect(await model.predict(sn.tensor([[1, 0, 0]])).array()).to.deep.equal([[7, 6]]);
    expect(() => d.setWeights([[[1, 2], [3, 4]], [0, 0]])).to.throw(/layer 'probe': weight 0 \(kernel\) has shape \[3, 2\] but got \[2, 2\]/);
    expect(() => d.setWeights([[0, 0]])).to.throw(/expects 2 weights \(kernel \[3, 2\], bias \[2\]\) but got 1/);
    // Nothing changed by the refused calls.
    expect(await d.getWeights()[0].array()).to.deep.equal([[6, 5], [4, 3], [2, 1]]);
  });

  it('history and evaluate carry acc and val_acc as well as accuracy and val_accuracy', async () => {
    sn.manualSeed(42);
    const model = sn.sequential({ layers: [sn.layers.dense({ units: 2, activation: 'softmax', inputShape: [3] })] });
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['acc'] });
    const x = sn.randn([20, 3]);
    const y = sn.tensor(Array.from({ length: 20 }, (_, i) => (i % 2 ? [0, 1] : [1, 0])));
    const seen = [];
    const h = await model.fit(x, y, { epochs: 2, batchSize: 8, validationSplit: 0.25, callbacks: { onEpochEnd: (e, logs) => seen.push(Object.keys(logs).sort()) } });
    expect(seen[0]).to.deep.equal(['acc', 'accuracy', 'loss', 'val_acc', 'val_accuracy', 'val_loss']);
    expect(h.history.acc).to.deep.equal(h.history.accuracy);
    expect(h.history.val_acc).to.deep.equal(h.history.val_accuracy);
    const ev = await model.evaluate(x, y);
    expect(ev.acc).to.equal(ev.accuracy);
  });
});

/** Builds the same stack in both libraries from one list of [name, args] pairs, and gives TF.js our weights. */
async function twin(spec, inputShape) {
  const build = (lib) => spec.map(([name, args], i) => {
    const a = { ...args, ...(i === 0 ? { inputShape } : {}) };
    if (a.layer) a.layer = lib.layers[a.layer[0]](a.layer[1]);
    return lib.layers[name](a);
  });
  const model = sn.sequential({ layers: build(sn) });
  const tfModel = tf.sequential({ layers: build(tf) });
  tfModel.setWeights(await weightsForTf(model));
  return [model, tfModel];
}

const SMALL_LAYERS = [
  ['conv1d same and strided, then globalAveragePooling1d', [6, 3], [
    ['conv1d', { filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }],
    ['conv1d', { filters: 5, kernelSize: 2, strides: 2 }],
    ['globalAveragePooling1d', {}],
    ['dense', { units: 2 }],
  ]],
  // TF.js cannot differentiate dilated convolutions: predictions only.
  ['conv1d dilated, same padding', [7, 2], [['conv1d', { filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same' }]], { fit: false }],
  ["conv2d 'same' with an even kernel and stride 2, maxPooling2d 'same', averagePooling2d, globalAveragePooling2d", [7, 6, 2], [
    ['conv2d', { filters: 3, kernelSize: [2, 4], strides: 2, padding: 'same', activation: 'tanh' }],
    ['maxPooling2d', { poolSize: [2, 3], padding: 'same' }],
    ['averagePooling2d', { poolSize: 1 }],
    ['globalAveragePooling2d', {}],
    ['dense', { units: 2 }],
  ]],
  // TF.js 4.22's gradients of upSampling2d and of 'same' average pooling disagree with the arithmetic
  // (tests below check ours directly), so only predictions are compared.
  ["upSampling2d and averagePooling2d 'same'", [5, 4, 2], [
    ['maxPooling2d', { poolSize: [2, 3], padding: 'same' }],
    ['upSampling2d', { size: [2, 3] }],
    ['averagePooling2d', { poolSize: 3, strides: 2, padding: 'same' }],
  ], { fit: false }],
  ['globalMaxPooling2d after a valid conv2d', [5, 5, 1], [
    ['conv2d', { filters: 2, kernelSize: 2 }],
    ['globalMaxPooling2d', {}],
  ]],
  ['repeatVector, lstm returnSequences, timeDistributed(dense)', [3], [
    ['dense', { units: 4, activation: 'relu' }],
    ['repeatVector', { n: 5 }],
    ['lstm', { units: 3, returnSequences: true, recurrentActivation: 'sigmoid' }],
    ['timeDistributed', { layer: ['dense', { units: 2 }] }],
  ]],
  ['bidirectional lstm (concat, returnSequences) then bidirectional gru (ave)', [5, 3], [
    ['bidirectional', { layer: ['lstm', { units: 3, returnSequences: true, recurrentActivation: 'sigmoid' }] }],
    ['bidirectional', { layer: ['gru', { units: 2, resetAfter: false, recurrentActivation: 'sigmoid' }], mergeMode: 'ave' }],
    ['dense', { units: 2 }],
  ]],
];

for (const backend of ['webgpu', 'cpu']) {
  describe(`Keras layers that TF.js users reach for match TF.js (${backend})`, () => {
    before(() => sn.init({ backend }));
    for (const [title, inputShape, spec, { fit = true } = {}] of SMALL_LAYERS) {
      it(`${title}: predictions${fit ? ' and 3 Adam steps' : ''}`, async () => {
        sn.manualSeed(51);
        const [model, tfModel] = await twin(spec, inputShape);
        const B = 3;
        const rng = mulberry32(7);
        const xShape = [B, ...inputShape];
        const x = randomData(rng, xShape.reduce((p, q) => p * q));
        const [a, b] = await predictBoth(model, tfModel, x, xShape);
        expect(model.outputShape).to.deep.equal(tfModel.outputShape.slice(1));
        expectClose(a, b, { atol: 2e-6, rtol: 1e-5, label: 'predict' });
        if (!fit) return;
        const yShape = [B, ...model.outputShape];
        const y = randomData(rng, yShape.reduce((p, q) => p * q));
        const [c, d] = await fitBoth(model, tfModel, x, xShape, y, yShape);
        expectClose(c, d, { atol: 1e-5, rtol: 1e-4, label: 'after 3 Adam steps' });
      });
    }

    it('upSampling2d then globalAveragePooling2d trains exactly like globalAveragePooling2d alone (nearest copies do not move the mean)', async () => {
      const rng = mulberry32(8);
      const x = sn.tensor(randomData(rng, 3 * 7 * 6 * 2), [3, 7, 6, 2]);
      const y = sn.tensor(randomData(rng, 9), [3, 3]);
      const kernel = randomData(rng, 6);
      const after = [];
      for (const up of [false, true]) {
        const m = sn.sequential([
          sn.layers.conv2d({ filters: 3, kernelSize: 1, inputShape: [7, 6, 2] }),
          ...(up ? [sn.layers.upSampling2d({ size: [2, 3] })] : []),
          sn.layers.globalAveragePooling2d(),
        ]);
        m.setWeights([kernel, [0, 0, 0]]);
        m.compile({ optimizer: new sn.optim.Adam(m.parameters(), { lr: 0.01 }), loss: 'meanSquaredError' });
        await m.fit(x, y, { epochs: 3, batchSize: 3, shuffle: false });
        after.push(await m.getWeights()[0].data());
      }
      expectClose(after[1], after[0], { atol: 1e-6, label: 'kernel after 3 Adam steps' });
    });

    it("averagePooling2d 'same': each window averages its real pixels, and the gradient spreads back 1/count to each", async () => {
      const [H, W, k, s] = [5, 4, 3, 2];
      const layer = sn.layers.averagePooling2d({ poolSize: k, strides: s, padding: 'same', inputShape: [H, W, 1] });
      sn.sequential([layer]);
      const rng = mulberry32(12);
      const xd = randomData(rng, H * W);
      const x = sn.tensor(xd, [1, H, W, 1], { requiresGrad: true });
      const out = layer.call(x, { training: false, mask: null });
      const [OH, OW] = [Math.ceil(H / s), Math.ceil(W / s)];
      expect(out.shape).to.deep.equal([1, OH, OW, 1]);
      const wd = randomData(rng, OH * OW);
      out.mul(sn.tensor(wd, out.shape)).sum().backward();
      // Keras's 'same': total padding (out - 1) * s + k - in, the odd one after.
      const [padTop, padLeft] = [((OH - 1) * s + k - H) >> 1, ((OW - 1) * s + k - W) >> 1];
      const want = new Float64Array(OH * OW);
      const grad = new Float64Array(H * W);
      for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
        const cells = [];
        for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
          const [r, c] = [i * s + a - padTop, j * s + b - padLeft];
          if (r >= 0 && r < H && c >= 0 && c < W) cells.push(r * W + c);
        }
        want[i * OW + j] = cells.reduce((acc, p) => acc + xd[p], 0) / cells.length;
        for (const p of cells) grad[p] += wd[i * OW + j] / cells.length;
      }
      expectClose(await out.data(), want, { atol: 1e-6, label: 'forward' });
      expectClose(await x.grad.data(), grad, { atol: 1e-6, label: 'gradient' });
    });

    it("conv1d padding 'causal' is a valid convolution of the sequence with (k - 1) * dilation zero steps in front (TF.js has no causal padding)", async () => {
      sn.manualSeed(53);
      const [T, C, k, d] = [6, 2, 3, 2];
      const model = sn.sequential([sn.layers.conv1d({ filters: 3, kernelSize: k, dilationRate: d, padding: 'causal', inputShape: [T, C] })]);
      const front = (k - 1) * d;
      const tfModel = tf.sequential({ layers: [tf.layers.conv1d({ filters: 3, kernelSize: k, dilationRate: d, inputShape: [T + front, C] })] });
      tfModel.setWeights(await weightsForTf(model));
      const x = randomData(mulberry32(4), 2 * T * C);
      const padded = new Float32Array(2 * (T + front) * C);
      for (let n = 0; n < 2; n++) padded.set(x.subarray(n * T * C, (n + 1) * T * C), (n * (T + front) + front) * C);
      const a = await model.predict(sn.tensor(x, [2, T, C])).data();
      const b = await tfModel.predict(tf.tensor(padded, [2, T + front, C])).data();
      expect(model.outputShape).to.deep.equal([T, 3]);
      expectClose(a, b, { atol: 2e-6, rtol: 1e-5, label: 'causal' });
    });

    it('globalAveragePooling1d leaves masked steps out of the mean, as Keras does', async () => {
      sn.manualSeed(52);
      const model = sn.sequential([
        sn.layers.embedding({ inputDim: 5, outputDim: 3, maskZero: true, inputShape: [4] }),
        sn.layers.globalAveragePooling1d(),
      ]);
      const table = await model.layers[0].getWeights()[0].array();
      const ids = [[0, 0, 2, 3], [1, 4, 4, 0]];
      const got = await model.predict(sn.tensor(ids)).array();
      const want = ids.map((row) => {
        const kept = row.filter((i) => i !== 0);
        return [0, 1, 2].map((j) => kept.reduce((s, i) => s + table[i][j], 0) / kept.length);
      });
      expectClose(got.flat(), want.flat(), { atol: 1e-6, label: 'masked mean' });
    });
  });
}

describe('Keras wrappers serialise', () => {
  it('toJSON / modelFromJSON round trip bidirectional, timeDistributed and the new layers', () => {
    const model = sn.sequential([
      sn.layers.conv1d({ filters: 4, kernelSize: 3, padding: 'causal', inputShape: [8, 2] }),
      sn.layers.bidirectional({ layer: sn.layers.gru({ units: 3, returnSequences: true }), mergeMode: 'sum' }),
      sn.layers.timeDistributed({ layer: sn.layers.dense({ units: 2 }) }),
      sn.layers.globalMaxPooling1d(),
      sn.layers.repeatVector({ n: 2 }),
    ]);
    const json = JSON.stringify(model.toJSON());
    const back = sn.modelFromJSON(json);
    expect(back.summary().replace(/\s+/g, ' ')).to.equal(model.summary().replace(/\s+/g, ' '));
    expect(back.getWeights().map((w) => w.shape)).to.deep.equal(model.getWeights().map((w) => w.shape));
    expect(model.outputShape).to.deep.equal([2, 2]);
  });
});

describe('Keras layer arguments that are refused say what to write', () => {
  it('returnState in a sequential model, bilinear upsampling, bad padding', () => {
    expect(() => sn.sequential([sn.layers.lstm({ units: 2, returnState: true, inputShape: [3, 2] })])).to.throw(/returnState.*sn\.model\(\{ inputs, outputs \}\)/);
    expect(() => sn.layers.upSampling2d({ interpolation: 'bilinear' })).to.throw(/use 'nearest'/);
    expect(() => sn.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'causal' })).to.throw(/padding must be 'valid' or 'same'/);
    expect(() => sn.layers.bidirectional({ layer: sn.layers.dense({ units: 2 }) })).to.throw(/lstm, gru or simpleRNN/);
  });
});

for (const backend of ['webgpu', 'cpu']) {
  describe(`Keras functional API matches TF.js (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('two inputs, lstm returnState, concatenate and add, two outputs: predict, 3 Adam steps, evaluate, logs per output', async () => {
      sn.manualSeed(61);
      const build = (lib, names) => {
        const a = lib.input({ shape: [4], name: `a${names}` });
        const b = lib.input({ shape: [5, 2], name: `b${names}` });
        const da = lib.layers.dense({ units: 3, activation: 'tanh', name: 'da' }).apply(a);
        const [seq, h, c] = lib.layers.lstm({ units: 3, returnSequences: true, returnState: true, recurrentActivation: 'sigmoid', name: 'rnn' }).apply(b);
        const pooled = lib.layers.globalAveragePooling1d({ name: 'pool' }).apply(seq);
        const joined = lib.layers.concatenate({ name: 'join' }).apply([da, h, pooled]);
        const out1 = lib.layers.dense({ units: 2, activation: 'softmax', name: 'out1' }).apply(joined);
        const summed = lib.layers.add({ name: 'sum' }).apply([c, da]);
        const out2 = lib.layers.dense({ units: 1, name: 'out2' }).apply(summed);
        return lib.model({ inputs: [a, b], outputs: [out1, out2] });
      };
      const model = build(sn, '');
      const tfModel = build(tf, '');
      for (const layer of model.layers) {
        const w = layer.getWeights();
        if (w.length) tfModel.getLayer(layer.name).setWeights(await Promise.all(w.map(async (t) => tf.tensor(await t.array()))));
      }
      expect(model.outputShapes).to.deep.equal([[2], [1]]);
      const rng = mulberry32(13);
      const B = 4;
      const xa = randomData(rng, B * 4);
      const xb = randomData(rng, B * 10);
      const ours = model.predict([sn.tensor(xa, [B, 4]), sn.tensor(xb, [B, 5, 2])]);
      const theirs = tfModel.predict([tf.tensor(xa, [B, 4]), tf.tensor(xb, [B, 5, 2])]);
      for (let i = 0; i < 2; i++) expectClose(await ours[i].data(), await theirs[i].data(), { atol: 2e-6, rtol: 1e-5, label: `output ${i}` });
      const y1 = Array.from({ length: B }, (_, i) => (i % 2 ? [0, 1] : [1, 0]));
      const y2 = randomData(rng, B);
      model.compile({ optimizer: new sn.optim.Adam(model.parameters(), { lr: 0.01, eps: 1e-7 }), loss: ['categoricalCrossentropy', 'meanSquaredError'], metrics: { out1: ['accuracy'] } });
      tfModel.compile({ optimizer: tf.train.adam(0.01), loss: ['categoricalCrossentropy', 'meanSquaredError'] });
      const h = await model.fit([xa, xb].map((d, i) => sn.tensor(d, i ? [B, 5, 2] : [B, 4])), [sn.tensor(y1), sn.tensor(y2, [B, 1])], { epochs: 3, batchSize: B, shuffle: false });
      await tfModel.fit([tf.tensor(xa, [B, 4]), tf.tensor(xb, [B, 5, 2])], [tf.tensor(y1), tf.tensor(y2, [B, 1])], { epochs: 3, batchSize: B, shuffle: false });
      expect(Object.keys(h.history).sort()).to.deep.equal(['loss', 'out1_acc', 'out1_accuracy', 'out1_loss', 'out2_loss']);
      expect(h.history.loss[0]).to.be.closeTo(h.history.out1_loss[0] + h.history.out2_loss[0], 1e-5);
      const after = model.predict([sn.tensor(xa, [B, 4]), sn.tensor(xb, [B, 5, 2])]);
      const tfAfter = tfModel.predict([tf.tensor(xa, [B, 4]), tf.tensor(xb, [B, 5, 2])]);
      for (let i = 0; i < 2; i++) expectClose(await after[i].data(), await tfAfter[i].data(), { atol: 1e-5, rtol: 1e-4, label: `output ${i} after 3 Adam steps` });
      const ev = await model.evaluate([sn.tensor(xa, [B, 4]), sn.tensor(xb, [B, 5, 2])], [sn.tensor(y1), sn.tensor(y2, [B, 1])]);
      const tfEv = tfModel.evaluate([tf.tensor(xa, [B, 4]), tf.tensor(xb, [B, 5, 2])], [tf.tensor(y1), tf.tensor(y2, [B, 1])]);
      // TF.js 4.22 lists [out1 metric, total loss, out1 loss, out2 loss] here.
      const [, total, loss1, loss2] = await Promise.all(tfEv.map(async (t) => (await t.data())[0]));
      expectClose([ev.loss, ev.out1_loss, ev.out2_loss], [total, loss1, loss2], { atol: 1e-5, rtol: 1e-4, label: 'evaluate' });
    });
  });
}

describe('Keras functional models: summary, save and load, errors', () => {
  before(() => sn.init({ backend: 'cpu' }));

  it('a functional model saves to IndexedDB and loads back with the same predictions; summary lists connections', async () => {
    sn.manualSeed(62);
    const inp = sn.input({ shape: [6], name: 'features' });
    const x = sn.layers.dense({ units: 4, activation: 'relu', name: 'hidden' }).apply(inp);
    const skip = sn.layers.dense({ units: 4, name: 'skip' }).apply(inp);
    const out = sn.layers.dense({ units: 2, activation: 'softmax', name: 'probs' }).apply(sn.layers.add({ name: 'merge' }).apply([x, skip]));
    const model = sn.model({ inputs: inp, outputs: out, name: 'residual' });
    expect(model.summary()).to.match(/merge \(Add\)\s+\(None, 4\)\s+0\s+hidden, skip/).and.include('Total params: 66');
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const xs = sn.randn([10, 6]);
    const ys = sn.tensor(Array.from({ length: 10 }, (_, i) => (i % 3 ? [0, 1] : [1, 0])));
    await model.fit(xs, ys, { epochs: 2, batchSize: 4 });
    await model.save('indexeddb://functional-roundtrip');
    const back = await sn.loadModel('indexeddb://functional-roundtrip');
    expect(back).to.be.instanceOf(sn.FunctionalModel);
    expectClose(await back.predict(xs).data(), await model.predict(xs).data(), { atol: 0, rtol: 0, label: 'loaded model' });
    expect(back.summary()).to.equal(model.summary());
    await sn.checkpoints.delete('functional-roundtrip');
  });

  it('an output that needs an input not given, a merge of mismatched shapes, and fit with too few inputs are refused clearly', () => {
    const a = sn.input({ shape: [3] });
    const b = sn.input({ shape: [4] });
    const y = sn.layers.concatenate().apply([a, b]);
    expect(y.shape).to.deep.equal([null, 7]);
    expect(() => sn.model({ inputs: a, outputs: y })).to.throw(/depend on input .* not in inputs/);
    expect(() => sn.layers.add({ name: 'bad' }).apply([a, b])).to.throw(/'bad' \(Add\) cannot merge shapes \[batch, 3\] and \[batch, 4\]/);
    const m = sn.model({ inputs: [a, b], outputs: y });
    expect(() => m.predict(sn.zeros([2, 3]))).to.throw(/2 inputs, so pass a list of 2/);
    expect(() => sn.layers.concatenate().apply(sn.zeros([2, 3]))).to.throw(/at least 2 inputs/);
  });

  it('layer.apply on Tensors runs the layer eagerly, building it from the first call', async () => {
    const d = sn.layers.dense({ units: 2, kernelInitializer: 'ones' });
    const out = d.apply(sn.tensor([[1, 2, 3]]));
    expect(await out.array()).to.deep.equal([[6, 6]]);
  });
});

describe('Keras activations match TF.js, in both spellings', () => {
  before(() => sn.init({ backend: 'cpu' }));

  // Every name the table takes (TF.js's camelCase and Keras's snake_case), against TF.js's activation of the same name.
  const NAMES = ['linear', 'relu', 'sigmoid', 'tanh', 'gelu', 'softmax', 'logSoftmax', 'elu', 'softplus', 'hardSigmoid', 'selu', 'softsign', 'swish', 'mish', 'gelu_new'];
  const KERAS = { log_softmax: 'logSoftmax', hard_sigmoid: 'hardSigmoid' };

  for (const [ours, theirs] of [...NAMES.map((n) => [n, n]), ...Object.entries(KERAS)]) {
    it(`'${ours}' in a dense layer and an activation layer`, async () => {
      sn.manualSeed(3);
      const [B, F, U] = [7, 5, 6];
      const model = sn.sequential([sn.layers.dense({ units: U, activation: ours, inputShape: [F] }), sn.layers.activation({ activation: ours })]);
      const tfModel = tf.sequential({ layers: [tf.layers.dense({ units: U, activation: theirs, inputShape: [F] }), tf.layers.activation({ activation: theirs })] });
      tfModel.setWeights(await weightsForTf(model));
      // Inputs of both signs and beyond the hard sigmoid's knees.
      const x = randomData(mulberry32(8), B * F).map((v) => 4 * v);
      const [a, b] = await predictBoth(model, tfModel, x, [B, F]);
      expectClose(a, b, { atol: 2e-6, rtol: 1e-5, label: ours });
    });
  }

  it('an unknown name throws, listing the valid ones', () => {
    expect(() => sn.layers.dense({ units: 2, activation: 'relu7' })).to.throw(/unknown activation 'relu7'; valid: linear, relu, .*hard_sigmoid/);
  });
});
