// sn.autograd anomaly detection (PyTorch's torch.autograd.set_detect_anomaly /
// detect_anomaly): while on, the first op whose output or gradient is NaN or infinite
// is named by the next read or sync, with the line that called it; off, nothing is checked.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { mulberry32, rejection } from './util.js';

/** A 37x53 tensor of positive values but one negative, at a random place. */
function oneNegative(seed) {
  const rand = mulberry32(seed);
  const data = Array.from({ length: 37 * 53 }, () => 0.5 + rand());
  data[Math.floor(rand() * data.length)] = -1;
  return sn.tensor(data, [37, 53]);
}

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`sn.autograd.detectAnomaly (${backend})`, () => {
    before(() => sn.init({ backend }));
    afterEach(() => sn.autograd.setDetectAnomaly(false));

    it('names the first op with a non-finite output, log(-1) in a chain, and the line that called it', async () => {
      sn.autograd.setDetectAnomaly(true);
      expect(sn.autograd.isAnomalyEnabled()).to.equal(true);
      const x = oneNegative(1);
      const y = x.mul(2).add(1).log().exp().sum(); // log(-1) is NaN; exp and sum carry it on
      const err = await rejection(y.item());
      expect(err.message).to.match(/^detectAnomaly: op 'log' \(tensor #\d+\) produced NaN or infinite values\nThe op was called at:\n.*anomaly\.test\.js/);
      sn.autograd.setDetectAnomaly(false);
      // Reported once; the engine goes on.
      expect(await sn.tensor([1, Math.E]).log().sum().item()).to.be.closeTo(1, 1e-6);
    });

    it('names the backward op whose gradient is not finite: the gradient of sqrt at 0', async () => {
      const x = sn.tensor([[0, 1, 4], [9, 0, 2]], undefined, { requiresGrad: true });
      await sn.autograd.detectAnomaly(async () => {
        // Forward is finite everywhere (sqrt(0) = 0); backward gives 1 / (2 * sqrt(0)) = inf.
        const loss = x.sqrt().sum();
        loss.backward();
        const err = await rejection(sn.sync());
        expect(err.message).to.match(/^detectAnomaly: the backward of op 'sqrt' \(tensor #\d+\) returned NaN or infinite values in its gradient for input 0\nThe op was called at:\n.*anomaly\.test\.js/);
      });
      expect(sn.autograd.isAnomalyEnabled()).to.equal(false);
    });

    it('is silent when off (the default): NaN flows through, nothing rejects, no checking kernels run', async () => {
      expect(sn.autograd.isAnomalyEnabled()).to.equal(false);
      const run = async () => {
        const before = (await sn.memory()).kernels;
        const x = sn.tensor([[0, 1, 4], [9, 0, 2]], undefined, { requiresGrad: true });
        const y = oneNegative(2).log().sum();
        x.sqrt().sum().backward();
        const value = await y.item();
        await sn.sync();
        return { value, grad: Array.from(await x.grad.data()), kernels: (await sn.memory()).kernels - before };
      };
      const off = await run();
      expect(off.value).to.be.NaN;
      expect(off.grad.some((g) => !Number.isFinite(g))).to.equal(true);
      // The same work with detection on costs extra kernels: the checks that off skips.
      const on = await sn.autograd.detectAnomaly(() => run().then((r) => r, (e) => e));
      expect(on).to.be.an('error');
      sn.autograd.setDetectAnomaly(false);
      const offAgain = await run();
      expect(offAgain.kernels).to.equal(off.kernels);
      await sn.autograd.detectAnomaly(async () => {
        const before = (await sn.memory()).kernels;
        expect(await sn.tensor([1, 2]).exp().sum().item()).to.be.closeTo(Math.E + Math.E ** 2, 1e-5);
        expect((await sn.memory()).kernels - before).to.be.above(2);
      });
    });

    it('checks the ops of Keras fit steps too (fit runs op by op while on): a NaN that first appears in a later epoch is named', async function () {
      this.timeout(60000);
      const rand = mulberry32(4);
      const model = sn.sequential([sn.layers.dense({ units: 7, activation: 'relu', inputShape: [5] }), sn.layers.dense({ units: 1 })]);
      model.compile({ optimizer: 'sgd', loss: 'mse' });
      const xs = Array.from({ length: 37 * 5 }, () => rand() - 0.5);
      const x = sn.tensor(xs, [37, 5]);
      const y = sn.tensor(Array.from({ length: 37 }, () => rand()), [37, 1]);
      const poisoned = xs.slice();
      poisoned[29 * 5 + 2] = NaN; // a row of the fourth batch
      await sn.autograd.detectAnomaly(async () => {
        const err = await rejection(model.fit(x, y, {
          epochs: 3, batchSize: 8, shuffle: false, terminateOnNaN: false,
          // Between epochs 1 and 2 a NaN enters the data: as a step plan the steps would replay unchecked.
          callbacks: { onEpochEnd: async (epoch) => { if (epoch === 0) { x.copy_(sn.tensor(poisoned, [37, 5])); await sn.sync(); } } },
        }));
        expect(err.message).to.match(/^detectAnomaly: op '\w+' \(tensor #\d+\) produced NaN or infinite values/);
      });
      // Off again, fit runs as plans and NaN goes through unnamed.
      const history = await model.fit(x, y, { epochs: 1, batchSize: 8, shuffle: false, terminateOnNaN: false });
      expect(history.history.loss[0]).to.be.NaN;
      await sn.sync();
    });

    it('log and sqrt of negative numbers are NaN, as in PyTorch (WGSL leaves them indeterminate)', async () => {
      expect(Array.from(await sn.tensor([-1, 0, 1]).log().data())).to.deep.equal([NaN, -Infinity, 0]);
      expect(Array.from(await sn.tensor([-4, 0, 4]).sqrt().data())).to.deep.equal([NaN, 0, 2]);
    });

    it('takes only booleans and functions', () => {
      expect(() => sn.autograd.setDetectAnomaly('yes')).to.throw(TypeError, /setDetectAnomaly: mode must be true or false, got the string "yes"/);
      expect(() => sn.autograd.detectAnomaly(1)).to.throw(TypeError, /detectAnomaly: expected a function \(or true\/false\), got number 1/);
    });
  });
}
