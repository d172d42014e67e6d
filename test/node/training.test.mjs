// Training under Node: a Keras fit and a PyTorch loop, on the TypeScript and
// WebAssembly CPU backends and, where Dawn finds a Vulkan driver, on WebGPU,
// which must agree with the TypeScript CPU backend step for step.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as sn from 'shadenet';
import { blobData, firstMismatch } from '../numeric.js';

const N = 240;
const { x, y } = blobData(N, 3);
const labels = Int32Array.from({ length: N }, (_, i) => [0, 1, 2].find((c) => y[i * 3 + c] === 1));

/** A Keras model fitted on the blob problem; returns its history and accuracy on the training data. */
async function kerasFit() {
  sn.manualSeed(7);
  const model = sn.sequential([
    sn.layers.dense({ units: 16, activation: 'relu', inputShape: [6] }),
    sn.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: new sn.optim.Adam(model.parameters(), { lr: 0.02 }), loss: 'categorical_crossentropy', metrics: ['accuracy'] });
  const epochs = [];
  const history = await model.fit(sn.tensor(x, [N, 6]), sn.tensor(y, [N, 3]), {
    epochs: 12, batchSize: 32, shuffle: false,
    callbacks: { onEpochEnd: (epoch, logs) => void epochs.push([epoch, logs.loss]) },
  });
  const { accuracy } = await model.evaluate(sn.tensor(x, [N, 6]), sn.tensor(y, [N, 3]));
  return { loss: history.history.loss, accuracy, epochs };
}

class Net extends sn.nn.Module {
  fc1 = new sn.nn.Linear(6, 16);
  relu = new sn.nn.ReLU();
  fc2 = new sn.nn.Linear(16, 3);
  forward(input) {
    return this.fc2.forward(this.relu.forward(this.fc1.forward(input)));
  }
}

/** A PyTorch-style loop over a DataLoader; returns the mean loss of each epoch. */
async function pytorchLoop() {
  sn.manualSeed(11);
  const model = new Net();
  const criterion = new sn.nn.CrossEntropyLoss();
  const optimizer = new sn.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const loader = new sn.data.DataLoader(new sn.data.TensorDataset(sn.tensor(x, [N, 6]), sn.tensor(labels, [N], { dtype: 'int32' })), { batchSize: 40 });
  const means = [];
  for (let epoch = 0; epoch < 8; epoch++) {
    const losses = [];
    for await (const [inputs, targets] of loader) {
      optimizer.zeroGrad();
      const loss = criterion.forward(model.forward(inputs), targets);
      loss.backward();
      optimizer.step();
      losses.push(loss);
    }
    means.push(await sn.stack(losses).mean().item());
  }
  return means;
}

for (const backend of ['cpu', 'wasm', 'webgpu']) {
  describe(`training on ${backend}`, { skip: backend === 'webgpu' && !process.env.VK_ICD_FILENAMES && 'no Vulkan ICD configured (VK_ICD_FILENAMES)' }, () => {
    const results = {};

    it('Keras fit learns the problem, with callbacks from the worker thread', async () => {
      await sn.init({ backend });
      assert.equal(sn.backend(), backend);
      const r = (results.keras = await kerasFit());
      assert.deepEqual(r.epochs.map(([e]) => e), [...Array(12).keys()]);
      assert.deepEqual(r.epochs.map(([, l]) => l), r.loss);
      assert.ok(r.loss[11] < r.loss[0] * 0.5, `loss ${r.loss[0]} -> ${r.loss[11]}`);
      assert.ok(r.accuracy > 0.9, `accuracy ${r.accuracy}`);
    });

    it('a PyTorch loop with a DataLoader, CrossEntropyLoss and SGD lowers the loss', async () => {
      await sn.init({ backend });
      const means = (results.pytorch = await pytorchLoop());
      assert.ok(means[7] < means[0] * 0.5, `mean loss ${means[0]} -> ${means[7]}`);
    });

    if (backend === 'webgpu') {
      it('WebGPU agrees with the CPU backend on both, step for step', async () => {
        await sn.init({ backend: 'cpu' });
        const keras = await kerasFit();
        const pytorch = await pytorchLoop();
        const tol = { atol: 1e-4, rtol: 1e-3 };
        assert.equal(firstMismatch(results.keras.loss, keras.loss, { ...tol, label: 'keras loss per epoch' }), null);
        assert.equal(firstMismatch(results.pytorch, pytorch, { ...tol, label: 'pytorch mean loss per epoch' }), null);
      });
    }
  });
}
