// Device loss for real: the DevTools protocol's Browser.crashGpuProcess (sent by the
// 'crash-gpu-process' server command in web-test-runner.config.mjs) crashes Chromium's GPU
// process, and with it the engine's WebGPU device. The engine opens a new device and restores
// every tensor from its last host copy: nothing trains on wrong weights, nothing hangs.
import { expect } from '@esm-bundle/chai';
import { executeServerCommand } from '@web/test-runner-commands';
import * as sn from '../dist/index.js';
import { blobData, rejection } from './util.js';

const crashGpu = () => executeServerCommand('crash-gpu-process');

/** The device's loss reaches the worker a moment after the crash: syncs until one reports it. */
async function nextLossReport() {
  for (let i = 0; i < 200; i++) {
    const err = await sn.sync().then(() => null, (e) => e);
    if (err) return err;
    await new Promise((r) => setTimeout(r, 25));
  }
  return null;
}

const values = (ts) => Promise.all(ts.map((t) => t.data().then((d) => Array.from(d))));

describe('device loss (WebGPU, GPU process crashed through the DevTools protocol)', () => {
  it('a PyTorch-style loop: the loss is reported once; weights and optimizer state are the last host copy exactly; training goes on', async () => {
    await sn.init({ backend: 'webgpu', hostCopyEvery: 5 });
    sn.manualSeed(3);
    const x = sn.randn([64, 53]);
    const y = sn.randn([64, 3]);
    const model = new sn.nn.Sequential(new sn.nn.Linear(53, 37), new sn.nn.ReLU(), new sn.nn.Linear(37, 3));
    const params = model.parameters();
    const opt = new sn.optim.SGD(params, { lr: 0.02, momentum: 0.9 });
    const lossFn = new sn.nn.MSELoss();
    const step = async () => {
      opt.zeroGrad();
      const loss = lossFn.forward(model.forward(x), y);
      loss.backward();
      opt.step();
      await sn.sync(); // one step per batch: the host copy follows the batch of step 5
      return loss;
    };
    const early = await step();
    const earlyValue = await early.item();
    for (let i = 2; i <= 5; i++) await step();
    const atCopy = await values(params);
    await step();
    const afterStep6 = await values(params);
    const late = await step();
    expect(await late.item()).to.be.finite;

    await crashGpu();
    const report = await nextLossReport();
    expect(report?.message).to.match(/WebGPU device was lost \(.+\)\. The engine recovered on a new device: tensors were restored from the host copy taken after optimizer step 5, undoing work done since; \d+ tensors computed after it are lost/);
    expect(report.message).not.to.match(/^A valid external Instance/);
    // Reported once: the engine works again.
    await sn.sync();
    expect(await values(params)).to.deep.equal(atCopy);
    // The momentum buffers were restored too: the same step again gives the same weights.
    await step();
    expect(await values(params)).to.deep.equal(afterStep6);
    // A tensor computed after the copy is lost, clearly; one computed before it is intact.
    const lostRead = await late.item().then(() => null, (e) => e);
    expect(lostRead?.message).to.match(/tensor #\d+ was lost with the WebGPU device: it was computed after the last host copy \(taken after optimizer step 5\)/);
    expect(await early.item()).to.equal(earlyValue);
    let last = Infinity;
    for (let i = 0; i < 20; i++) last = await (await step()).item();
    expect(last).to.be.below(earlyValue);
  });

  it('a Keras fit resumes from the epoch it copied and ends with exactly the weights of a fit without the crash', async () => {
    await sn.init({ backend: 'webgpu' });
    const { x: xd, y: yd } = blobData(96);
    const x = sn.tensor(xd, [96, 6]);
    const y = sn.tensor(yd, [96, 3]);
    const train = async (crashAt) => {
      sn.manualSeed(11);
      const model = sn.sequential([
        sn.layers.dense({ units: 16, activation: 'relu', inputShape: [6] }),
        sn.layers.dropout({ rate: 0.2 }),
        sn.layers.dense({ units: 3, activation: 'softmax' }),
      ]);
      model.compile({ optimizer: 'adam', loss: 'categorical_crossentropy' });
      let epoch = -1;
      let crashed = false;
      const history = await model.fit(x, y, {
        epochs: 4, batchSize: 8,
        callbacks: {
          onEpochBegin: (e) => { epoch = e; },
          onBatchEnd: async () => {
            if (epoch === crashAt && !crashed) {
              crashed = true;
              await crashGpu();
            }
          },
        },
      });
      return { weights: await values(model.getWeights()), history, crashed };
    };
    const reference = await train(-1);
    const recovered = await train(2);
    expect(recovered.crashed).to.equal(true);
    expect((await sn.memory()).deviceLosses).to.equal(1);
    expect(recovered.history.epoch).to.deep.equal([0, 1, 2, 3]);
    expect(recovered.history.history.loss).to.deep.equal(reference.history.history.loss);
    expect(recovered.weights).to.deep.equal(reference.weights);
    expect(await sn.ones([3]).sum().item()).to.equal(3);
  });

  it('before any host copy, uploaded data is restored and computed tensors are lost, clearly', async () => {
    await sn.init({ backend: 'webgpu' });
    const uploaded = sn.tensor([1, 2, 3]);
    const computed = uploaded.mul(2);
    // Elementwise results are lazy until something needs them: the read computes this one into memory.
    expect(Array.from(await computed.data())).to.deep.equal([2, 4, 6]);
    await crashGpu();
    const report = await nextLossReport();
    expect(report?.message).to.match(/tensors were restored from the data uploaded from the page \(no host copy had been taken yet\), undoing work done since; \d+ tensors computed after it are lost \(#\d+/);
    expect(Array.from(await uploaded.data())).to.deep.equal([1, 2, 3]);
    expect((await rejection(computed.data())).message).to.match(/tensor #\d+ was lost with the WebGPU device: it was computed after the last host copy, so there was nothing to restore it from/);
    // Overwriting a lost tensor whole makes it usable again, as in-place ops on parameters do.
    sn.noGrad(() => computed.copy_(uploaded));
    expect(Array.from(await computed.data())).to.deep.equal([1, 2, 3]);
  });

  it('checkpoints are intact and load after a crash; with host copies off, what was lost is said clearly', async () => {
    await sn.init({ backend: 'webgpu', hostCopyEvery: 0 });
    sn.manualSeed(5);
    const model = new sn.nn.Linear(37, 5);
    const saved = await values(model.parameters());
    await sn.save(model, 'indexeddb://device-loss-linear');
    await crashGpu();
    const report = await nextLossReport();
    expect(report?.message).to.match(/tensors were restored from nothing \(host copies are off: hostCopyEvery is 0\), undoing work done since; \d+ tensors computed after it are lost/);
    // No copies: the weights are lost, and said so.
    const err = await model.weight.data().then(() => null, (e) => e);
    expect(err?.message).to.match(/was lost with the WebGPU device/);
    const use = await model.forward(sn.ones([2, 37])).data().then(() => null, (e) => e);
    expect(use?.message).to.match(/lost with the WebGPU device/);
    expect(await sn.tensor([1, 2, 3]).sum().item()).to.equal(6);
    const restored = new sn.nn.Linear(37, 5);
    restored.loadStateDict(await sn.load('indexeddb://device-loss-linear'));
    expect(await values(restored.parameters())).to.deep.equal(saved);
    await sn.checkpoints.delete('device-loss-linear');
  });
});
